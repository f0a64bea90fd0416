"""Agent input validation, wire shape (presenter) and its OpenAPI description."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from agents.models import Agent, Provider
from config.api.formatting import wire_shape
from config.api.validation import BoundedJSONObjectField, StrictCharField

PROMPT_MAX_LENGTH = 200_000


class AgentIn(serializers.Serializer):
    name = StrictCharField(min_length=1, max_length=200)
    version = StrictCharField(min_length=1, max_length=100)
    promptTemplate = StrictCharField(
        min_length=1, max_length=PROMPT_MAX_LENGTH, trim_whitespace=False
    )
    provider = serializers.ChoiceField(choices=Provider.values, required=False, allow_null=True)
    model = StrictCharField(max_length=200, required=False, allow_null=True)
    metadata = BoundedJSONObjectField(required=False, allow_null=True)


class AgentListQuery(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True)
    active = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="`true` lists active agents; any other value inactive ones.",
    )


class UsageOut(serializers.Serializer):
    """Token usage of LLM calls, as every endpoint reports it."""

    promptTokens = serializers.IntegerField()
    completionTokens = serializers.IntegerField()
    totalTokens = serializers.IntegerField()


class AgentOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    version = serializers.CharField()
    promptTemplate = serializers.CharField()
    provider = serializers.CharField(allow_null=True)
    model = serializers.CharField(allow_null=True)
    active = serializers.BooleanField()
    metadata = serializers.JSONField(allow_null=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


AGENT_SHAPE = wire_shape(AgentOut)


def agent_payload(agent: Agent) -> dict[str, Any]:
    return AGENT_SHAPE.of(agent)


# Input keys → model fields.
AGENT_FIELDS = {
    "name": "name",
    "version": "version",
    "promptTemplate": "prompt_template",
    "provider": "provider",
    "model": "model",
    "metadata": "metadata",
}
