"""Identifiers as the API's clients expect them: `prefix_` + 16 characters of `[A-Za-z0-9_-]`
(docs/api-differences.md)."""

from __future__ import annotations

import re
import secrets

_RANDOM_PART = r"[A-Za-z0-9_-]{16}"


def new_id(prefix: str | None = None) -> str:
    """A fresh id; 12 random bytes are exactly 16 URL-safe base64 characters."""
    token = secrets.token_urlsafe(12)
    return f"{prefix}_{token}" if prefix else token


def id_pattern(prefix: str | None = None) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(prefix)}_{_RANDOM_PART}$" if prefix else rf"^{_RANDOM_PART}$")
