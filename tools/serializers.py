"""Tool definitions on the wire, and their OpenAPI description."""

from __future__ import annotations

from rest_framework import serializers


class ToolListQuery(serializers.Serializer):
    name = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Return only this tool's definition (a single object).",
    )


# One tool in the OpenAI function-calling format. `GET /tools` answers a list of these, or one
# of them for `?name=`: a raw schema, since a serializer cannot say "a list or one object".
TOOL_DEFINITION = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["function"]},
        "function": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "parameters": {
                    "type": "object",
                    "description": "JSON Schema of the tool's parameters.",
                },
            },
            "required": ["name", "description", "parameters"],
        },
    },
    "required": ["type", "function"],
}
