"""Changes to stored DAGs and executions made from the API."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import ProtectedError, QuerySet
from django.utils.timezone import now

from config.access import visible_to
from config.errors import Conflict, InvalidInput
from dags.models import Dag, DagExecution, ExecutionEvent, SubStep
from dags.plan import PlanError, parse_job, plan_issues
from dags.schedules import dag_schedule_remove, dag_schedule_sync

logger = logging.getLogger(__name__)


INVALID_PLAN = "Invalid parameters"


def dag_result_issues(result: Any) -> list[dict[str, Any]]:
    """What the planner's own checks find wrong with a plan given by hand: its schema, then
    (unless it asks for clarification) unknown tools or agents, bad tool params, unknown
    dependencies and cycles. Paths start with `result`."""
    try:
        job = parse_job(result)
    except PlanError as error:
        issues = error.issues
    else:
        issues = [] if job.clarification_needed else plan_issues(job)
    return [{"path": ["result", *issue["path"]], "message": issue["message"]} for issue in issues]


@transaction.atomic
def dag_update(*, dag: Dag, changes: dict[str, Any]) -> Dag:
    """Write the given model-field changes and bump `updated_at`.

    A new plan (`result`) is checked as the planner checks its own plans, so a hand-edited
    plan cannot run tools or agents a planned one could not (InvalidInput lists the issues).
    Callers pass a DAG fetched through a selector with their viewer: only its owner or staff
    get here.
    """
    if changes.get("result") is not None:
        issues = dag_result_issues(changes["result"])
        if issues:
            raise InvalidInput(INVALID_PLAN, validation_errors=issues)
    if {"cron_schedule", "timezone"} & set(changes):
        # A new cron or zone is a fresh start for a schedule beat had to disable.
        changes = {**changes, "schedule_error": None, "schedule_error_at": None}
    for field, value in changes.items():
        setattr(dag, field, value)
    dag.updated_at = now()
    dag.save(update_fields=[*changes, "updated_at"])
    # Keeps the beat row in line with cron_schedule / schedule_active / timezone.
    dag_schedule_sync(dag=dag)
    return dag


def _has_executions_error(dag_id: str, count: int) -> Conflict:
    return Conflict(
        f"Cannot delete DAG: {count} execution(s) exist for this DAG",
        dagId=dag_id,
        executionCount=count,
    )


def dag_delete(*, dag: Dag) -> None:
    """Delete a DAG that has no executions (409 otherwise: they keep their history)."""
    dag_id = dag.id
    try:
        with transaction.atomic():
            count = DagExecution.objects.filter(dag=dag).count()
            if count:
                raise _has_executions_error(dag_id, count)
            dag_schedule_remove(dag_id=dag_id)
            dag.delete()
    except ProtectedError as error:  # an execution was created concurrently
        raise _has_executions_error(
            dag_id, DagExecution.objects.filter(dag_id=dag_id).count()
        ) from error
    logger.info("dag deleted id=%s", dag_id)


@transaction.atomic
def execution_delete(*, execution: DagExecution) -> int:
    """Delete an execution with its sub-steps and events; returns the sub-steps deleted."""
    deleted = SubStep.objects.filter(execution=execution).count()
    execution_id = execution.id
    execution.delete()
    logger.info("execution deleted id=%s sub_steps=%d", execution_id, deleted)
    return deleted


def dag_delete_with_executions(*, dag: Dag) -> int:
    """Delete a DAG together with its executions (their sub-steps and events go with them);
    returns how many executions were deleted. One transaction: all or nothing."""
    dag_id = dag.id
    try:
        with transaction.atomic():
            executions = DagExecution.objects.filter(dag_id=dag_id)
            count = executions.count()
            # The ORM's delete collects each execution's sub-steps and events first.
            executions.delete()
            dag_schedule_remove(dag_id=dag_id)
            dag.delete()
    except ProtectedError as error:  # an execution was started meanwhile
        raise Conflict(
            "Cannot delete DAG: an execution started while deleting; try again", dagId=dag_id
        ) from error
    logger.info("dag deleted with its executions id=%s executions=%d", dag_id, count)
    return count


SETTLED_STATUSES = (
    DagExecution.Status.COMPLETED,
    DagExecution.Status.FAILED,
    DagExecution.Status.PARTIAL,
    DagExecution.Status.SUSPENDED,
    DagExecution.Status.CANCELLED,
)


def executions_prunable(*, older_than: datetime, viewer: Any) -> QuerySet[DagExecution]:
    """Settled executions `viewer` may see whose last change is older than `older_than`
    (pending, running and waiting ones are never pruned)."""
    return visible_to(
        DagExecution.objects.filter(status__in=SETTLED_STATUSES, updated_at__lt=older_than),
        viewer,
    ).order_by("updated_at", "pk")


def executions_count_owned(*, execution_ids: list[str]) -> dict[str, int]:
    """What deleting these executions takes with it."""
    return {
        "executions": len(execution_ids),
        "subSteps": SubStep.objects.filter(execution_id__in=execution_ids).count(),
        "events": ExecutionEvent.objects.filter(execution_id__in=execution_ids).count(),
    }


@transaction.atomic
def executions_delete(*, execution_ids: list[str]) -> dict[str, int]:
    """Delete executions with their sub-steps and events (one batch, one transaction)."""
    counts = executions_count_owned(execution_ids=execution_ids)
    ExecutionEvent.objects.filter(execution_id__in=execution_ids).delete()
    SubStep.objects.filter(execution_id__in=execution_ids).delete()
    DagExecution.objects.filter(pk__in=execution_ids).delete()
    logger.info("executions pruned count=%d", counts["executions"])
    return counts
