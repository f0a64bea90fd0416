"""DAG, execution and sub-step wire shapes, query validation and OpenAPI description."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from agents.serializers import UsageOut
from config.api.formatting import MoneyField, wire_shape
from config.api.validation import (
    OFFSET_MAX,
    BoundedJSONObjectField,
    PageQuery,
    StrictCharField,
)
from config.cron import CronError, normalize_cron, validate_timezone
from dags.execution.recovery import execution_awaiting_broker
from dags.models import Dag, DagExecution, SubStep

EXECUTION_STATUSES = DagExecution.Status.values


class DagListQuery(PageQuery):
    status = serializers.CharField(required=False, allow_blank=True)


class ExecutionListQuery(PageQuery):
    status = serializers.ChoiceField(choices=EXECUTION_STATUSES, required=False, allow_blank=True)


class DagExecutionsQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=OFFSET_MAX, default=0)
    status = serializers.ChoiceField(choices=EXECUTION_STATUSES, required=False, allow_blank=True)


class DagUpdateIn(serializers.Serializer):
    status = StrictCharField(max_length=64, required=False)
    result = BoundedJSONObjectField(
        required=False, allow_null=True, max_bytes=1024 * 1024, help_text="The DecomposerJob."
    )
    params = BoundedJSONObjectField(required=False, allow_null=True)
    dagTitle = StrictCharField(max_length=500, required=False, allow_null=True, allow_blank=True)
    cronSchedule = StrictCharField(
        max_length=200, required=False, allow_null=True, allow_blank=True
    )
    scheduleActive = serializers.BooleanField(required=False)
    timezone = StrictCharField(max_length=64, required=False)

    def validate_cronSchedule(self, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
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

    def validate_dagTitle(self, value: str | None) -> str | None:
        return (value or "").strip() or None


class DagOut(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    result = serializers.JSONField(allow_null=True, help_text="The DecomposerJob (snake_case).")
    usage = UsageOut(allow_null=True)
    generationStats = serializers.JSONField(allow_null=True)
    attempts = serializers.IntegerField()
    params = serializers.JSONField(allow_null=True)
    agentName = serializers.CharField(allow_null=True)
    dagTitle = serializers.CharField(allow_null=True)
    cronSchedule = serializers.CharField(allow_null=True)
    scheduleActive = serializers.BooleanField()
    lastRunAt = serializers.DateTimeField(allow_null=True)
    timezone = serializers.CharField()
    scheduleError = serializers.CharField(
        allow_null=True,
        help_text="Why the scheduler disabled this cron (its next time could not be computed); "
        "cleared when the cron or time zone changes.",
    )
    scheduleErrorAt = serializers.DateTimeField(allow_null=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    planningTotalUsage = UsageOut(allow_null=True)
    planningTotalCostUsd = MoneyField(allow_null=True)
    planningAttempts = serializers.JSONField(allow_null=True)


class PaginationOut(serializers.Serializer):
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    count = serializers.IntegerField(help_text="Items in this page.")


class DagListOut(serializers.Serializer):
    dags = DagOut(many=True)
    pagination = PaginationOut()


class ScheduledDagOut(serializers.Serializer):
    id = serializers.CharField()
    dag_title = serializers.CharField(allow_null=True)
    cron_schedule = serializers.CharField()
    schedule_description = serializers.CharField()
    schedule_active = serializers.BooleanField()
    timezone = serializers.CharField()
    schedule_error = serializers.CharField(allow_null=True)


class DagDeletedOut(serializers.Serializer):
    message = serializers.CharField()
    dagId = serializers.CharField()


class ExecutionOut(serializers.Serializer):
    id = serializers.CharField()
    dagId = serializers.CharField(allow_null=True)
    originalRequest = serializers.CharField()
    primaryIntent = serializers.CharField()
    status = serializers.ChoiceField(choices=EXECUTION_STATUSES)
    startedAt = serializers.DateTimeField(allow_null=True)
    completedAt = serializers.DateTimeField(allow_null=True)
    durationMs = serializers.IntegerField(allow_null=True)
    totalTasks = serializers.IntegerField()
    completedTasks = serializers.IntegerField()
    failedTasks = serializers.IntegerField()
    waitingTasks = serializers.IntegerField()
    finalResult = serializers.CharField(allow_null=True)
    synthesisResult = serializers.CharField(allow_null=True)
    suspendedReason = serializers.CharField(allow_null=True)
    suspendedAt = serializers.DateTimeField(allow_null=True)
    retryCount = serializers.IntegerField()
    lastRetryAt = serializers.DateTimeField(allow_null=True)
    totalUsage = UsageOut(allow_null=True)
    totalCostUsd = MoneyField(allow_null=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


class ExecutionWithTitleOut(ExecutionOut):
    dagTitle = serializers.CharField(allow_null=True)


class SubStepOut(serializers.Serializer):
    id = serializers.CharField()
    executionId = serializers.CharField()
    taskId = serializers.CharField()
    description = serializers.CharField()
    thought = serializers.CharField()
    actionType = serializers.ChoiceField(choices=SubStep.ActionType.values)
    toolOrPromptName = serializers.CharField()
    toolOrPromptParams = serializers.JSONField(allow_null=True)
    dependencies = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=SubStep.Status.values)
    startedAt = serializers.DateTimeField(allow_null=True)
    completedAt = serializers.DateTimeField(allow_null=True)
    durationMs = serializers.IntegerField(allow_null=True)
    result = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    usage = UsageOut(allow_null=True)
    costUsd = MoneyField(allow_null=True)
    generationStats = serializers.JSONField(allow_null=True)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


class ExecutionDetailOut(ExecutionWithTitleOut):
    subSteps = SubStepOut(many=True)


class ExecutionListOut(serializers.Serializer):
    executions = ExecutionWithTitleOut(many=True)
    pagination = PaginationOut()


class DagExecutionListOut(serializers.Serializer):
    executions = ExecutionOut(many=True)
    total = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()


class SubStepListOut(serializers.Serializer):
    executionId = serializers.CharField()
    subSteps = SubStepOut(many=True)


class CascadeInfoOut(serializers.Serializer):
    relatedSubStepsDeleted = serializers.IntegerField()


class ExecutionDeletedOut(serializers.Serializer):
    message = serializers.CharField()
    executionId = serializers.CharField()
    cascadeInfo = CascadeInfoOut()


DAG_SHAPE = wire_shape(DagOut)
EXECUTION_SHAPE = wire_shape(ExecutionOut)
SUB_STEP_SHAPE = wire_shape(SubStepOut)


def dag_payload(dag: Dag) -> dict[str, Any]:
    return DAG_SHAPE.of(dag)


def execution_payload(execution: DagExecution, *, with_title: bool = False) -> dict[str, Any]:
    """The execution row; `with_title` gives the list view's shape (`dagTitle` first).

    The title comes from the `dag_title` annotation of `selectors.executions_with_title()`.
    """
    payload = EXECUTION_SHAPE.of(execution)
    title = getattr(execution, "dag_title", None)  # the annotation, when present
    return {"dagTitle": title, **payload} if with_title else payload


def sub_step_payload(sub_step: SubStep) -> dict[str, Any]:
    return SUB_STEP_SHAPE.of(sub_step)


# When the task queue is away, the ready tasks stay in the database and every worker's
# dispatcher sends them as soon as the queue is back: the 202 is still a promise kept.
AWAITING_QUEUE_NOTE = (
    " The task queue is unreachable right now; the tasks are kept in the database and sent to "
    "the workers as soon as it is back."
)
QUEUE_NOTE_DOC = (
    " If the task queue (Redis) is unreachable, the answer is still 202: the execution is stored "
    "as running and its ready tasks are sent to the workers as soon as the queue is back; the "
    "`message` then says so."
)


def with_queue_note(message: str, execution_id: str) -> str:
    if execution_awaiting_broker(execution_id=execution_id):
        return message + AWAITING_QUEUE_NOTE
    return message
