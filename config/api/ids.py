"""Identifiers as the API's clients expect them: `prefix_` + 16 characters of `[A-Za-z0-9_-]`
(docs/api-differences.md)."""

from __future__ import annotations

import re
import secrets

_RANDOM_PART = r"[A-Za-z0-9_-]{16}"


def new_id(prefix: str | None = None) -> str:
    """A fresh id; 12 random bytes are exactly 16 URL-safe base64 characters. A bare id never
    starts with `-`: the management commands take ids as arguments, where one that did would
    read as an option (one DAG in 64)."""
    token = secrets.token_urlsafe(12)
    if prefix:
        return f"{prefix}_{token}"
    while token.startswith("-"):
        token = secrets.token_urlsafe(12)
    return token


def id_pattern(prefix: str | None = None) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(prefix)}_{_RANDOM_PART}$" if prefix else rf"^{_RANDOM_PART}$")
