from __future__ import annotations

from typing import Any

from rest_framework import serializers

from config.api.exceptions import INPUT_LABEL, QUERY_LABEL, ApiValidationError


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


def validated_query(serializer_class: type[serializers.Serializer], query: Any) -> dict[str, Any]:
    return validated(
        serializer_class, query.dict() if hasattr(query, "dict") else query, label=QUERY_LABEL
    )


class PageQuery(serializers.Serializer):
    """`limit` 1..100 (default 50) and `offset` >= 0 (default 0)."""

    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)
    offset = serializers.IntegerField(min_value=0, default=0)


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers and booleans instead of converting them."""

    default_error_messages = {"not_a_string": "Expected a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)
