"""Token authentication that accepts both `Token <key>` and `Bearer <key>`, with the answer of
the token lookup kept in Redis.

Every API request looks its token up, which costs more CPU than the rest of a cached read. So
the user a token names is kept in Redis (under a digest of the key, never the key), checked
against one version number that every change to any token or user retires (signals on save and
delete of both models, at once and again at commit, as the list pages are: `config.list_cache`).
A revoked or rotated token, a deactivated or deleted user is refused by the very next request,
in every process. Redis away: every request reads the database, as before. Only an entry Redis
could not be told about (Redis unreachable at the moment of the change) lives on, for at most
TOKEN_CACHE_SECONDS. Writes that bypass signals (`QuerySet.update()` on users or tokens) must
call `tokens_changed()`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.request import Request

from config.list_cache import version_changed, versioned_get, versioned_put

_KEYWORDS = (b"token", b"bearer")

TOKENS_VERSION = "tokens-version"
# Bounds only how long an entry outlives a change Redis never heard of (see the docstring).
# Short, because what it bounds is a revoked token still accepted; a lookup every 10 s per active
# token costs next to nothing.
TOKEN_CACHE_SECONDS = 10
# What a token's entry keeps of its user: the fields requests read (who, and the flags of
# `config.access`); the others (the password hash among them) load from the database if read.
USER_FIELDS = ("username", "first_name", "last_name", "email", "is_active", "is_staff")
SUPERUSER_FIELD = "is_superuser"


def tokens_changed(*, using: str = "default") -> None:
    """Refuse every cached token lookup from now on (each is read again from the database)."""
    version_changed(TOKENS_VERSION, using=using)


def _changed(sender: Any, using: str = "default", update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # a login: nothing a token's entry keeps
    tokens_changed(using=using)


def token_cache_connect() -> None:
    """Retire the cached token lookups on every save and delete of a token or a user (called
    once at start-up by an app's `ready`)."""
    from rest_framework.authtoken.models import Token

    for model in (Token, get_user_model()):
        label = model._meta.label
        post_save.connect(_changed, sender=model, dispatch_uid=f"tokens-save-{label}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"tokens-delete-{label}")


def _entry_key(key: str) -> str:
    return "token:" + hashlib.sha256(key.encode()).hexdigest()


def _cached_fields(model: Any) -> list[str]:
    """The user fields an entry keeps, in the model's field order (as `Model.from_db` wants)."""
    wanted = {model._meta.pk.attname, *USER_FIELDS, SUPERUSER_FIELD}
    return [field.attname for field in model._meta.concrete_fields if field.attname in wanted]


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

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        """(user, token) for `key`, from the token cache when nothing changed since it was
        stored, else from the database (and stored); AuthenticationFailed as DRF's."""
        entry_key = _entry_key(key)
        version, stored = versioned_get(TOKENS_VERSION, entry_key)
        if stored is not None:
            return self._from_entry(key, stored)
        user, token = super().authenticate_credentials(key)
        if version is not None:
            fields = _cached_fields(type(user))
            values = [getattr(user, name) for name in fields]
            versioned_put(
                entry_key,
                version,
                orjson.dumps([token.user_id, fields, values]),
                seconds=TOKEN_CACHE_SECONDS,
            )
        return user, token

    def _from_entry(self, key: str, stored: bytes) -> tuple[Any, Any]:
        user_id, fields, values = orjson.loads(stored)
        # Model.from_db: the documented way to make an instance from loaded values; fields not
        # kept are deferred (loaded from the database when read).
        user = get_user_model().from_db("default", fields, values)
        token = self.get_model()(key=key, user_id=user_id)
        token.user = user  # type: ignore[attr-defined]
        return user, token


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
