from __future__ import annotations

from typing import Any

from rest_framework import serializers

from agents.serializers import UsageOut
from config.api.formatting import MoneyField, wire_shape
from config.api.validation import PageQuery
from goals.serializers import GoalOut, goal_payload
from runs.models import Output, Run, Step


class RunListQuery(PageQuery):
    goalId = serializers.CharField(required=False, allow_blank=True)
    status = serializers.CharField(required=False, allow_blank=True)


class RunOut(serializers.Serializer):
    id = serializers.CharField()
    goalId = serializers.CharField()
    status = serializers.ChoiceField(choices=Run.Status.values)
    startedAt = serializers.DateTimeField(allow_null=True)
    endedAt = serializers.DateTimeField(allow_null=True)
    workingMemory = serializers.JSONField()
    stepBudget = serializers.IntegerField()
    stepsExecuted = serializers.IntegerField()
    error = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()
    trigger = serializers.ChoiceField(
        choices=Run.Trigger.values, help_text="manual (API, admin, command) or schedule (cron)."
    )
    usage = UsageOut(allow_null=True, help_text="Tokens of every LLM call of the run.")
    costUsd = MoneyField(allow_null=True, help_text="USD, as a decimal string.")


class RunWithGoalOut(RunOut):
    goal = GoalOut()


class ToolCallOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    arguments = serializers.JSONField()
    status = serializers.ChoiceField(
        choices=["ok", "error", "refused"],
        help_text="refused: the goal's allowedTools do not include this tool.",
    )
    error = serializers.CharField(allow_null=True)
    durationMs = serializers.IntegerField()


class StepOut(serializers.Serializer):
    id = serializers.CharField()
    runId = serializers.CharField()
    stepNo = serializers.IntegerField()
    thought = serializers.CharField()
    toolName = serializers.CharField(allow_null=True)
    toolInput = serializers.JSONField(allow_null=True)
    observation = serializers.CharField(allow_null=True)
    durationMs = serializers.IntegerField()
    error = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()
    toolCalls = ToolCallOut(many=True, help_text="Every tool call of the step, in order.")
    usage = UsageOut(allow_null=True)
    costUsd = MoneyField(allow_null=True)


class OutputOut(serializers.Serializer):
    id = serializers.CharField()
    runId = serializers.CharField()
    kind = serializers.ChoiceField(choices=Output.Kind.values)
    pathOrPayload = serializers.CharField(
        help_text="The summary text, the file path, or a JSON record of the webhook or e-mail."
    )
    createdAt = serializers.DateTimeField()


RUN_SHAPE = wire_shape(RunOut)
STEP_SHAPE = wire_shape(StepOut)
OUTPUT_SHAPE = wire_shape(OutputOut)


def run_payload(run: Run, *, with_goal: bool = False) -> dict[str, Any]:
    payload = RUN_SHAPE.of(run)
    if with_goal:
        payload["goal"] = goal_payload(run.goal)
    return payload


def step_payload(step: Step) -> dict[str, Any]:
    payload = STEP_SHAPE.of(step)
    payload["toolCalls"] = step.tool_calls or []
    return payload


def output_payload(output: Output) -> dict[str, Any]:
    return OUTPUT_SHAPE.of(output)
