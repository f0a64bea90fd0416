"""Request bodies of the planning endpoints and the documented shapes of their replies."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from config.api.validation import StrictCharField, StrictIntegerField
from config.cron import CronError, validate_timezone
from dags.planning.experiments import MAX_EXPERIMENTS
from dags.planning.services import PlanRequest
from dags.serializers import UsageOut

GOAL_TEXT = "goal-text"
MAX_GOAL_CHARS = 50_000
MAX_TOKENS_LIMIT = 1_000_000


class StrictNumberField(serializers.FloatField):
    """A JSON number (not a string, not a boolean)."""

    default_error_messages = {"not_a_number": "Expected a number."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("not_a_number")
        return super().to_internal_value(data)


def _goal_text_field() -> serializers.Field:
    return StrictCharField(
        min_length=1,
        max_length=MAX_GOAL_CHARS,
        trim_whitespace=False,
        help_text="The request to plan, in natural language.",
    )


class _GoalTextSerializer(serializers.Serializer):
    """Adds the hyphenated `goal-text` key (not a Python name), first in the body."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        return {GOAL_TEXT: _goal_text_field(), **fields}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get(GOAL_TEXT, "").strip():
            raise serializers.ValidationError({GOAL_TEXT: ["Must not be blank."]})
        return attrs


class CreateDagIn(_GoalTextSerializer):
    """A request to plan (and optionally schedule) as a DAG."""

    agentName = StrictCharField(
        min_length=1, max_length=200, help_text="The planner agent, e.g. DecomposerV8."
    )
    provider = StrictCharField(
        required=False, max_length=32, help_text="openai, openrouter, openrouter-fetch or ollama."
    )
    model = StrictCharField(required=False, min_length=1, max_length=200)
    max_tokens = StrictIntegerField(required=False, min_value=1, max_value=MAX_TOKENS_LIMIT)
    temperature = StrictNumberField(required=False, min_value=0, max_value=2)
    seed = StrictIntegerField(required=False)
    cronSchedule = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Five-field cron or an @daily-style macro: the DAG then runs on schedule.",
    )
    scheduleActive = serializers.BooleanField(
        required=False, help_text="Defaults to true when cronSchedule is given."
    )
    timezone = StrictCharField(
        required=False, max_length=64, help_text="IANA time zone of the schedule (default UTC)."
    )

    def validate_timezone(self, value: str) -> str:
        try:
            return validate_timezone(value)
        except CronError as error:
            raise serializers.ValidationError(str(error)) from None


def plan_request(data: dict[str, Any]) -> PlanRequest:
    """The planning request of a validated CreateDagIn body, defaults applied."""
    return PlanRequest(
        goal_text=data[GOAL_TEXT],
        agent_name=data["agentName"],
        provider=data.get("provider") or None,
        model=data.get("model") or None,
        temperature=data.get("temperature", 0.7),
        max_tokens=data.get("max_tokens", 10000),
        seed=data.get("seed"),
        cron_schedule=data.get("cronSchedule") or None,
        schedule_active=data.get("scheduleActive"),
        timezone=data.get("timezone") or "UTC",
    )


class DagExperimentsIn(_GoalTextSerializer):
    """One request planned with each model and temperature listed."""

    agentName = StrictCharField(min_length=1, max_length=200)
    provider = StrictCharField(min_length=1, max_length=32)
    models = serializers.ListField(
        child=StrictCharField(min_length=1, max_length=200), min_length=1
    )
    temperatures = serializers.ListField(
        child=StrictNumberField(min_value=0, max_value=2), min_length=1
    )
    seed = StrictIntegerField(required=False, allow_null=True)
    max_tokens = StrictIntegerField(required=False, min_value=1, max_value=MAX_TOKENS_LIMIT)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        count = len(attrs["models"]) * len(attrs["temperatures"])
        if count > MAX_EXPERIMENTS:
            raise serializers.ValidationError(
                {
                    "models": [
                        f"At most {MAX_EXPERIMENTS} model/temperature combinations per "
                        f"request (got {count})."
                    ]
                }
            )
        return attrs


def experiment_base(data: dict[str, Any]) -> PlanRequest:
    return PlanRequest(
        goal_text=data[GOAL_TEXT],
        agent_name=data["agentName"],
        provider=data["provider"],
        seed=data.get("seed"),
        max_tokens=data.get("max_tokens", 10000),
    )


# --- documented replies --------------------------------------------------------------------------
class DagCreatedOut(serializers.Serializer):
    status = serializers.CharField(help_text='"success"')
    dagId = serializers.CharField()


class ClarificationOut(serializers.Serializer):
    status = serializers.CharField(help_text='"clarification_required"')
    clarification_query = serializers.CharField()
    result = serializers.JSONField(help_text="The planner's DecomposerJob (nothing is stored).")
    usage = UsageOut(allow_null=True)
    generation_stats = serializers.JSONField(allow_null=True)


class DagExecutingOut(serializers.Serializer):
    status = serializers.CharField(help_text='"executing"')
    dagId = serializers.CharField()
    executionId = serializers.CharField()
    originalRequest = serializers.CharField()
    totalTasks = serializers.IntegerField()
    usage = UsageOut(allow_null=True)
    generation_stats = serializers.JSONField(allow_null=True)
    message = serializers.CharField()


class ExperimentResultOut(serializers.Serializer):
    dagId = serializers.CharField(allow_null=True)
    model = serializers.CharField()
    temperature = serializers.FloatField()
    success = serializers.BooleanField()
    error = serializers.CharField(required=False)


class DagExperimentsOut(serializers.Serializer):
    status = serializers.CharField(help_text='"completed"')
    totalExperiments = serializers.IntegerField()
    successCount = serializers.IntegerField()
    failureCount = serializers.IntegerField()
    results = ExperimentResultOut(many=True)
