from __future__ import annotations

from django.db.models import F, QuerySet

from config.errors import NotFound
from dags.models import Dag, DagExecution, SubStep


def dag_not_found(dag_id: str) -> NotFound:
    return NotFound(f"DAG with id '{dag_id}' not found")


def execution_not_found(execution_id: str) -> NotFound:
    return NotFound(f"DAG execution with id '{execution_id}' not found")


def dag_list(*, status: str | None = None) -> QuerySet[Dag]:
    dags = Dag.objects.all()
    if status is not None:
        dags = dags.filter(status=status)
    return dags.order_by("-created_at", "-pk")


def dag_get(*, dag_id: str) -> Dag:
    dag = Dag.objects.filter(pk=dag_id).first()
    if dag is None:
        raise dag_not_found(dag_id)
    return dag


def dag_list_scheduled() -> QuerySet[Dag]:
    return (
        Dag.objects.filter(cron_schedule__isnull=False)
        .only(
            "id",
            "dag_title",
            "cron_schedule",
            "schedule_active",
            "timezone",
            "schedule_error",
            "updated_at",
        )
        .order_by("-updated_at")
    )


def dag_execution_count(*, dag: Dag) -> int:
    return DagExecution.objects.filter(dag=dag).count()


def executions_with_title() -> QuerySet[DagExecution]:
    """Executions annotated with their DAG's title (the original's `executions` view)."""
    return DagExecution.objects.annotate(dag_title=F("dag__dag_title"))


def execution_list(*, status: str | None = None) -> QuerySet[DagExecution]:
    executions = executions_with_title()
    if status is not None:
        executions = executions.filter(status=status)
    return executions.order_by("-updated_at", "-pk")


def execution_list_for_dag(*, dag: Dag, status: str | None = None) -> QuerySet[DagExecution]:
    executions = DagExecution.objects.filter(dag=dag)
    if status is not None:
        executions = executions.filter(status=status)
    return executions.order_by("-created_at", "-pk")


def execution_get(*, execution_id: str, with_title: bool = False) -> DagExecution:
    executions = executions_with_title() if with_title else DagExecution.objects.all()
    execution = executions.filter(pk=execution_id).first()
    if execution is None:
        raise execution_not_found(execution_id)
    return execution


def execution_sub_steps(*, execution: DagExecution) -> QuerySet[SubStep]:
    return SubStep.objects.filter(execution=execution).order_by("task_id")
