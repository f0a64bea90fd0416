"""The one place that decides how values look on the wire."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class WireShape:
    """A resource's wire keys, in wire order, and the columns they come from. Timestamp columns
    go through `iso()`, the rest as stored. One shape serves `.values()` rows (the hot list
    paths) and model instances alike, and says which columns a row needs (`fields`)."""

    columns: Mapping[str, str]  # wire key -> column
    timestamps: frozenset[str] = frozenset()

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.columns.values())

    def of_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        times = self.timestamps
        return {
            key: iso(row[column]) if column in times else row[column]
            for key, column in self.columns.items()
        }

    def of(self, instance: Any) -> dict[str, Any]:
        return self.of_row({column: getattr(instance, column) for column in self.fields})
