"""Token authentication that accepts both `Token <key>` and `Bearer <key>`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
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


class TokenOrBearerScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema (and so Swagger UI) describes the token: a bearer scheme, so a
    user pastes only the key and the UI sends `Authorization: Bearer <key>`."""

    target_class = TokenOrBearerAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "Paste only the API token (the key `./scripts/start` prints, or "
                "`./scripts/manage drf_create_token <username>`). It is sent as "
                "`Authorization: Bearer <key>`; `Authorization: Token <key>` works as well."
            ),
        }
