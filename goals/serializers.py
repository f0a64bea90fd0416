"""Goal and schedule input validation, wire shapes and their OpenAPI description."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.serializers import AGENT_SHAPE, AgentOut
from config.api.formatting import wire_shape
from config.api.validation import BoundedJSONField, PageQuery, StrictCharField
from config.cron import CronError, normalize_cron, validate_timezone
from goals.models import Goal, Schedule


class HttpUrlField(serializers.URLField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 2048)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("Enter an http:// or https:// URL.")
        return value


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": True},
        ]
    }
)
class ConstraintsField(BoundedJSONField):
    """Constraints for the agent: a string, a list of strings, or an object."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str | dict) or (
            isinstance(data, list) and all(isinstance(item, str) for item in data)
        ):
            return super().to_internal_value(data)
        raise serializers.ValidationError("Expected a string, a list of strings, or an object.")


class GoalParamsIn(serializers.Serializer):
    """Unknown keys are dropped, not refused: existing clients send extra ones."""

    stepBudget = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    allowedTools = serializers.ListField(
        child=StrictCharField(max_length=100), required=False, max_length=100
    )
    constraints = ConstraintsField(required=False)


class ScheduleIn(serializers.Serializer):
    cronExpr = StrictCharField(max_length=200)
    timezone = StrictCharField(max_length=64, default="UTC")

    def validate_cronExpr(self, value: str) -> str:
        try:
            normalize_cron(value)
        except CronError as error:
            raise serializers.ValidationError(str(error)) from None
        return value.strip()

    def validate_timezone(self, value: str) -> str:
        try:
            return validate_timezone(value)
        except CronError as error:
            raise serializers.ValidationError(str(error)) from None


class ObjectiveField(StrictCharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_length=10, **kwargs)

    def run_validation(self, data: Any = serializers.empty) -> Any:
        value = super().run_validation(data)
        limit = settings.MAX_MESSAGE_LENGTH
        if isinstance(value, str) and len(value) > limit:
            raise serializers.ValidationError(
                f"Ensure this field has no more than {limit} characters."
            )
        return value


class GoalCreateIn(serializers.Serializer):
    objective = ObjectiveField()
    params = GoalParamsIn(required=False)
    webhookUrl = HttpUrlField(required=False, allow_null=True)
    agentName = StrictCharField(required=False, allow_blank=True, max_length=200)
    agentId = StrictCharField(required=False, allow_blank=True, max_length=40)
    schedule = ScheduleIn(required=False)


class GoalUpdateIn(serializers.Serializer):
    objective = ObjectiveField(required=False)
    params = GoalParamsIn(required=False)
    webhookUrl = HttpUrlField(required=False, allow_null=True)
    status = serializers.ChoiceField(choices=Goal.Status.values, required=False)


class GoalListQuery(PageQuery):
    # Larger pages than other lists: clients of the first version read every goal in one call.
    limit = serializers.IntegerField(min_value=1, max_value=500, default=100)
    status = serializers.CharField(required=False, allow_blank=True)


class ScheduleOut(serializers.Serializer):
    id = serializers.CharField()
    goalId = serializers.CharField()
    cronExpr = serializers.CharField()
    timezone = serializers.CharField()
    active = serializers.BooleanField()
    lastRunAt = serializers.DateTimeField(allow_null=True)
    createdAt = serializers.DateTimeField()
    error = serializers.CharField(
        allow_null=True,
        help_text="Why the scheduler disabled this schedule (its next time could not be "
        "computed); cleared when the cron or time zone changes.",
    )
    errorAt = serializers.DateTimeField(allow_null=True)


class GoalOut(serializers.Serializer):
    id = serializers.CharField()
    objective = serializers.CharField()
    params = serializers.JSONField()
    webhookUrl = serializers.CharField(allow_null=True)
    agentId = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=Goal.Status.values)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


class GoalWithSchedulesOut(GoalOut):
    schedules = ScheduleOut(many=True)


class GoalListItemOut(GoalWithSchedulesOut):
    agent = AgentOut(allow_null=True)


class MessageOut(serializers.Serializer):
    message = serializers.CharField()


class RunTriggeredOut(serializers.Serializer):
    runId = serializers.CharField()
    message = serializers.CharField()


SCHEDULE_SHAPE = wire_shape(ScheduleOut)
GOAL_SHAPE = wire_shape(GoalOut)


def schedule_payload(schedule: Schedule) -> dict[str, Any]:
    return SCHEDULE_SHAPE.of(schedule)


def goal_payload(
    goal: Goal, *, with_schedules: bool = False, with_agent: bool = False
) -> dict[str, Any]:
    payload = GOAL_SHAPE.of(goal)
    if with_schedules:
        # `schedule_list` is attached by the goal selectors in one query for all goals.
        listed = getattr(goal, "schedule_list", None)
        if listed is None:
            listed = goal.schedules.order_by("created_at")
        payload["schedules"] = [SCHEDULE_SHAPE.of(schedule) for schedule in listed]
    if with_agent:
        payload["agent"] = AGENT_SHAPE.of(goal.agent) if goal.agent is not None else None
    return payload
