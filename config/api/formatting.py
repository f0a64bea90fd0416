"""The one place that decides how values look on the wire."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast, overload

from rest_framework import serializers


@overload
def iso(value: datetime | str) -> str: ...
@overload
def iso(value: None) -> None: ...
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
    amounts: frozenset[str] = frozenset()  # USD columns, through `money()`

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.columns.values())

    def of_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        times, amounts = self.timestamps, self.amounts
        return {
            key: iso(row[column])
            if column in times
            else money(row[column])
            if column in amounts
            else row[column]
            for key, column in self.columns.items()
        }

    def of(self, instance: Any) -> dict[str, Any]:
        return self.of_row({column: getattr(instance, column) for column in self.fields})


class MoneyField(serializers.CharField):
    """A USD amount on the wire: a decimal string (`money()`)."""


_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")


def wire_shape(serializer: type[serializers.Serializer]) -> WireShape:
    """The shape a response serializer documents, to present rows and instances with: its
    fields in order, each read from the column named by `source=` or else by the field's name
    in snake_case (`goalId` -> `goal_id`); DateTimeFields go through `iso()`, MoneyFields
    through `money()`, everything else (nested usage objects too) as stored. The serializer is
    the one declaration: the OpenAPI schema and the responses both come from it."""
    columns: dict[str, str] = {}
    timestamps: set[str] = set()
    amounts: set[str] = set()
    for name, field in serializer().fields.items():
        # A bound field always has a source (its own name unless `source=` says otherwise).
        source = cast(str, field.source)
        column = source if source != name else _CAMEL_HUMP.sub("_", name).lower()
        columns[name] = column
        if isinstance(field, serializers.DateTimeField):
            timestamps.add(column)
        elif isinstance(field, MoneyField):
            amounts.add(column)
    return WireShape(columns, timestamps=frozenset(timestamps), amounts=frozenset(amounts))
