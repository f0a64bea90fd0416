"""Domain errors raised by services and selectors; the API maps each to its HTTP status."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class InvalidInput(DomainError):
    status = 400


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class FieldInvalid(DomainError):
    """A single field failed a domain check (cron, time zone, ...): a validation error."""

    status = 400

    def __init__(self, path: list[str | int], message: str, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.path = path
