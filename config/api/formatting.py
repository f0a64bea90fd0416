"""The one place that decides how values look on the wire."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def iso(value: datetime | str | None) -> str | None:
    """ISO-8601 in UTC with milliseconds and `Z`, e.g. `2026-11-23T19:45:17.123Z`.

    Text is passed through: it was formatted so by the database (`config.db.IsoTimestampText`).
    """
    if value is None or isinstance(value, str):
        return value
    text = value.isoformat(timespec="milliseconds")
    if text.endswith("+00:00"):
        return text[:-6] + "Z"
    return value.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def money(value: Decimal | None) -> str | None:
    """A USD amount as a plain decimal string without exponent or trailing zeros."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def fields_of(instance: Any, names: Iterable[str]) -> dict[str, Any]:
    """A model instance as the row `.values(*names)` would give, for presenters that take rows
    (so one presenter serves model instances and the row-based hot list paths)."""
    return {name: getattr(instance, name) for name in names}
