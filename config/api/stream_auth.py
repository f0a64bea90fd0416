"""Authentication for the event streams (SSE views and WebSocket consumers).

These run outside DRF's APIView, so they call the same DRF authentication classes the API uses
(token, `Bearer` token, session) and add `?token=<key>`, because a browser's EventSource and
WebSocket cannot send an Authorization header. `API_AUTH_REQUIRED=false` lets anonymous
clients in, as on the rest of the API. Call these from synchronous code (`sync_to_async`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.settings import api_settings

from config.api.authentication import TokenOrBearerAuthentication

NOT_AUTHENTICATED = "Authentication credentials were not provided."


class StreamAuthError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _user_for_token(key: str) -> Any:
    try:
        user, _token = TokenOrBearerAuthentication().authenticate_credentials(key)
    except exceptions.AuthenticationFailed as error:
        raise StreamAuthError(str(error.detail)) from error
    return user


def _require(user: Any) -> Any:
    if user is not None and user.is_authenticated:
        return user
    if settings.API_AUTH_REQUIRED:
        raise StreamAuthError(NOT_AUTHENTICATED)
    return user or AnonymousUser()


def authenticate_http(request: HttpRequest) -> Any:
    """The user of an HTTP request to a stream, or StreamAuthError."""
    drf_request = Request(
        request,
        # api_settings imports the classes the settings name (the stubs type them as names).
        authenticators=[
            auth()
            for auth in cast(
                Sequence[type[BaseAuthentication]], api_settings.DEFAULT_AUTHENTICATION_CLASSES
            )
        ],
    )
    try:
        user = drf_request.user
    except exceptions.AuthenticationFailed as error:
        raise StreamAuthError(str(error.detail)) from error
    if not user.is_authenticated:
        key = request.GET.get("token", "").strip()
        if key:
            user = _user_for_token(key)
    return _require(user)


def authenticate_scope(scope: Mapping[str, Any]) -> Any:
    """The user of a WebSocket connection (scope from AuthMiddlewareStack), or StreamAuthError."""
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    key = (query.get("token") or [""])[0].strip()
    if not key:
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                parts = value.decode("latin1").split()
                if len(parts) == 2 and parts[0].lower() in ("token", "bearer"):
                    key = parts[1]
                elif parts:
                    raise StreamAuthError(
                        "Invalid Authorization header: expected 'Token <key>' or 'Bearer <key>'."
                    )
    if key:
        return _require(_user_for_token(key))
    return _require(scope.get("user"))
