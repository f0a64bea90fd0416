"""Tool definitions on the wire, and their OpenAPI description."""

from __future__ import annotations

from rest_framework import serializers


class ToolListQuery(serializers.Serializer):
    name = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Return only this tool's definition (a single object).",
    )


class ToolFunctionOut(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    parameters = serializers.JSONField(help_text="JSON Schema of the tool's parameters.")


class ToolDefinitionOut(serializers.Serializer):
    type = serializers.ChoiceField(choices=["function"])
    function = ToolFunctionOut()
