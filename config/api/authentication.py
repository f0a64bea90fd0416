"""Token authentication that accepts both `Token <key>` and `Bearer <key>`."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.request import Request

_KEYWORDS = (b"token", b"bearer")


class TokenOrBearerAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in _KEYWORDS:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: expected 'Token <key>' or 'Bearer <key>'."
            )
        try:
            key = parts[1].decode()
        except UnicodeError as error:
            raise exceptions.AuthenticationFailed("Invalid token.") from error
        return self.authenticate_credentials(key)
