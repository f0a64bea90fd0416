from __future__ import annotations

from typing import Any

from django.db.models import F, QuerySet

from config.access import visible_to
from config.errors import NotFound
from dags.models import Dag, DagExecution, SubStep


def dag_not_found(dag_id: str) -> NotFound:
    return NotFound(f"DAG with id '{dag_id}' not found")


def execution_not_found(execution_id: str) -> NotFound:
    return NotFound(f"DAG execution with id '{execution_id}' not found")


def dag_list(*, viewer: Any, status: str | None = None) -> QuerySet[Dag]:
    dags = visible_to(Dag.objects.all(), viewer)
    if status is not None:
        dags = dags.filter(status=status)
    return dags.order_by("-created_at", "-pk")


def dag_get(*, dag_id: str, viewer: Any) -> Dag:
    """The DAG, or NotFound when it does not exist or `viewer` may not see it."""
    dag = visible_to(Dag.objects.all(), viewer).filter(pk=dag_id).first()
    if dag is None:
        raise dag_not_found(dag_id)
    return dag


def dag_list_scheduled(*, viewer: Any) -> QuerySet[Dag]:
    return (
        visible_to(Dag.objects.filter(cron_schedule__isnull=False), viewer)
        .only("id", "dag_title", "cron_schedule", "schedule_active", "timezone", "updated_at")
        .order_by("-updated_at")
    )


def dag_execution_count(*, dag: Dag) -> int:
    """All executions of the DAG, whoever ran them (a DAG with any cannot be deleted)."""
    return DagExecution.objects.filter(dag=dag).count()


def executions_with_title(*, viewer: Any) -> QuerySet[DagExecution]:
    """Executions `viewer` may see, annotated with their DAG's title (the original's
    `executions` view)."""
    return visible_to(DagExecution.objects.all(), viewer).annotate(dag_title=F("dag__dag_title"))


def execution_list(*, viewer: Any, status: str | None = None) -> QuerySet[DagExecution]:
    executions = executions_with_title(viewer=viewer)
    if status is not None:
        executions = executions.filter(status=status)
    return executions.order_by("-updated_at", "-pk")


def execution_list_for_dag(
    *, dag: Dag, viewer: Any, status: str | None = None
) -> QuerySet[DagExecution]:
    executions = visible_to(DagExecution.objects.filter(dag=dag), viewer)
    if status is not None:
        executions = executions.filter(status=status)
    return executions.order_by("-created_at", "-pk")


def execution_get(*, execution_id: str, viewer: Any, with_title: bool = False) -> DagExecution:
    """The execution, or NotFound when it does not exist or `viewer` may not see it."""
    executions = (
        executions_with_title(viewer=viewer)
        if with_title
        else visible_to(DagExecution.objects.all(), viewer)
    )
    execution = executions.filter(pk=execution_id).first()
    if execution is None:
        raise execution_not_found(execution_id)
    return execution


def execution_sub_steps(*, execution: DagExecution) -> QuerySet[SubStep]:
    return SubStep.objects.filter(execution=execution).order_by("task_id")
