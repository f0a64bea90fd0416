from __future__ import annotations

from typing import Any

from rest_framework import serializers

from config.api.formatting import iso
from goals.serializers import GoalOut, goal_payload
from runs.models import Run, Step


class RunListQuery(serializers.Serializer):
    goalId = serializers.CharField(required=False)
    status = serializers.CharField(required=False)


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


class RunWithGoalOut(RunOut):
    goal = GoalOut()


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


def run_payload(run: Run, *, with_goal: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": run.id,
        "goalId": run.goal_id,
        "status": run.status,
        "startedAt": iso(run.started_at),
        "endedAt": iso(run.ended_at),
        "workingMemory": run.working_memory,
        "stepBudget": run.step_budget,
        "stepsExecuted": run.steps_executed,
        "error": run.error,
        "createdAt": iso(run.created_at),
    }
    if with_goal:
        payload["goal"] = goal_payload(run.goal)
    return payload


def step_payload(step: Step) -> dict[str, Any]:
    return {
        "id": step.id,
        "runId": step.run_id,
        "stepNo": step.step_no,
        "thought": step.thought,
        "toolName": step.tool_name,
        "toolInput": step.tool_input,
        "observation": step.observation,
        "durationMs": step.duration_ms,
        "error": step.error,
        "createdAt": iso(step.created_at),
    }
