from __future__ import annotations

from typing import Any

import orjson
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from config.api.exceptions import INPUT_LABEL, QUERY_LABEL, ApiValidationError

# --- bounds shared by every input -----------------------------------------------------------
# Integers the database (signed 64-bit columns, SQLite's INTEGER) and the JSON renderer can hold.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Offsets into lists: far beyond any real table, and small enough that `offset + limit` still
# fits a 64-bit SQL LIMIT/OFFSET.
OFFSET_MAX = 2**53 - 1
# Free-form JSON values (agent metadata, goal constraints, DAG params): how deep they may nest
# and how large they may be once encoded. Stored values are rendered in every list, so a value
# that cannot be rendered must never be stored.
JSON_MAX_DEPTH = 32
JSON_MAX_BYTES = 256 * 1024


def validated(
    serializer_class: type[serializers.Serializer],
    data: Any,
    *,
    label: str = INPUT_LABEL,
    partial: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """Validate `data` with the serializer or raise a 400 with `validation_errors`."""
    serializer = serializer_class(data=data, partial=partial)
    if not serializer.is_valid():
        raise ApiValidationError(serializer.errors, label, **extra)
    return dict(serializer.validated_data)


def validated_query(
    serializer_class: type[serializers.Serializer], query: Any, *, label: str = QUERY_LABEL
) -> dict[str, Any]:
    """Validate query parameters; a blank one (`?status=`) counts as absent, because existing
    clients send empty filters."""
    if hasattr(query, "lists"):
        repeated = [key for key, values in query.lists() if len(values) > 1]
        if repeated:
            raise ApiValidationError(
                {key: ["Give this parameter once."] for key in repeated}, label
            )
    values = query.dict() if hasattr(query, "dict") else dict(query)
    present = {
        key: value
        for key, value in values.items()
        if not (isinstance(value, str) and not value.strip())
    }
    if not present:
        return dict(query_defaults(serializer_class))
    return validated(serializer_class, present, label=label)


_DEFAULTS: dict[type, dict[str, Any]] = {}


def query_defaults(serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
    """What `validated_query` makes of no parameters at all (most list requests): built once
    per serializer, where each fixed default stands (a callable default is asked every time)."""
    defaults = _DEFAULTS.get(serializer_class)
    if defaults is None:
        defaults = validated(serializer_class, {}, label=QUERY_LABEL)
        fields = serializer_class().fields.values()
        if any(field.default is not empty and callable(field.default) for field in fields):
            return defaults
        _DEFAULTS[serializer_class] = defaults
    return defaults


class PageQuery(serializers.Serializer):
    """`limit` 1..100 (default 50) and `offset` >= 0 (default 0)."""

    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=OFFSET_MAX, default=0)


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers and booleans instead of converting them."""

    default_error_messages = {"not_a_string": "Expected a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


def json_value_problem(
    value: Any, *, max_depth: int = JSON_MAX_DEPTH, max_bytes: int = JSON_MAX_BYTES
) -> str | None:
    """Why `value` (decoded JSON) may not be stored, or None when it may.

    Walks the value without recursion, so any nesting is measured safely.
    """
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                return f"Nested more than {max_depth} levels deep."
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                return "Integers must fit in 64 bits (between -2^63 and 2^63-1)."
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return "Numbers must be finite."
        else:
            return f"Unsupported value of type {type(item).__name__}."
    size = len(orjson.dumps(value))
    if size > max_bytes:
        return f"Too large: {size} bytes encoded (limit {max_bytes})."
    return None


class BoundedJSONField(serializers.JSONField):
    """Any JSON value, within the depth, integer and size bounds of `json_value_problem`."""

    def __init__(
        self, *, max_depth: int = JSON_MAX_DEPTH, max_bytes: int = JSON_MAX_BYTES, **kwargs: Any
    ) -> None:
        self.max_depth = max_depth
        self.max_bytes = max_bytes
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        # Measured before DRF's own check, which encodes the value recursively.
        problem = json_value_problem(data, max_depth=self.max_depth, max_bytes=self.max_bytes)
        if problem:
            raise serializers.ValidationError(problem)
        return super().to_internal_value(data)


@extend_schema_field({"type": "object", "additionalProperties": True})
class BoundedJSONObjectField(BoundedJSONField):
    """A JSON object, within the bounds of `BoundedJSONField`."""

    default_error_messages = {"not_an_object": "Expected a JSON object."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            self.fail("not_an_object")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer (a whole float such as 5.0 is accepted; strings and booleans are not),
    within 64 bits unless narrower bounds are given."""

    default_error_messages = {"not_an_integer": "Expected an integer."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", INT64_MIN)
        kwargs.setdefault("max_value", INT64_MAX)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("not_an_integer")
        if isinstance(data, float) and not data.is_integer():
            self.fail("not_an_integer")
        return super().to_internal_value(int(data))
