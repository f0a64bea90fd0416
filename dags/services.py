"""Changes to stored DAGs and executions made from the API."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import ProtectedError, QuerySet
from django.utils.timezone import now

from config.access import visible_to
from config.errors import Conflict
from dags.models import Dag, DagExecution, ExecutionEvent, SubStep
from goals.schedules import dag_schedule_remove, dag_schedule_sync

logger = logging.getLogger(__name__)


@transaction.atomic
def dag_update(*, dag: Dag, changes: dict[str, Any]) -> Dag:
    """Write the given model-field changes (already validated) and bump `updated_at`."""
    for field, value in changes.items():
        setattr(dag, field, value)
    dag.updated_at = now()
    dag.save(update_fields=[*changes, "updated_at"])
    # Keeps the beat row in line with cron_schedule / schedule_active / timezone (SPEC D16).
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
