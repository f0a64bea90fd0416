from __future__ import annotations

from typing import Any

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery

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


# What starting an execution reads of its DAG (`execution_launch`): the plan, its parameters
# and the owner; not the planning record (attempts, usage), which can be large.
LAUNCH_FIELDS = ("id", "result", "params", "owner")


def dag_for_launch(*, dag_id: str, viewer: Any) -> Dag:
    """`dag_get` reading only what a start needs (LAUNCH_FIELDS; the rest loads if read)."""
    dags = visible_to(Dag.objects.only(*LAUNCH_FIELDS), viewer).filter(pk=dag_id).order_by()
    dag = next(iter(dags[:1]), None)
    if dag is None:
        raise dag_not_found(dag_id)
    return dag


def dag_list_scheduled(*, viewer: Any) -> QuerySet[Dag]:
    return (
        visible_to(Dag.objects.filter(cron_schedule__isnull=False), viewer)
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
    """All executions of the DAG, whoever ran them (a DAG with any cannot be deleted)."""
    return DagExecution.objects.filter(dag=dag).count()


def executions_with_title(*, viewer: Any) -> QuerySet[DagExecution]:
    """Executions `viewer` may see, annotated with their DAG's title (the shape of
    the execution list)."""
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


def execution_status_counts(*, executions: QuerySet[DagExecution]) -> dict[str, int]:
    """How many of `executions` (a list from a selector, so already limited to what the viewer
    may see) are in each status, every status present (zero if none); one query."""
    rows = executions.order_by()
    counts = dict.fromkeys(DagExecution.Status.values, 0)
    for status, count in rows.values_list("status").annotate(count=Count("pk")):
        counts[status] = count
    return counts


# Orderings the DAG list page offers: key → (label, ORM ordering).
DAG_SORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "-created": ("Newest first", ("-created_at", "-pk")),
    "created": ("Oldest first", ("created_at", "pk")),
    "-updated": ("Recently updated", ("-updated_at", "-pk")),
    "title": ("Title A to Z", ("dag_title", "pk")),
    "-title": ("Title Z to A", ("-dag_title", "-pk")),
}
# Schedule filter of the DAG list page.
DAG_SCHEDULE_FILTERS = {
    "scheduled": "Scheduled (active)",
    "paused": "Scheduled (paused)",
    "unscheduled": "Not scheduled",
}
NEVER_EXECUTED = "never"


def dag_search(
    *,
    dags: QuerySet[Dag],
    text: str = "",
    schedule: str = "",
    last_status: str = "",
    sort: str = "-created",
) -> QuerySet[Dag]:
    """DAGs matching a search over title and request text, a schedule filter and the status of
    their latest execution, each annotated with `execution_count` and `last_status`, in the
    chosen order. `dags` comes from `dag_list`, so it holds only what the viewer may see; the
    counts cover all of a DAG's executions, as deleting it does. One query, however many rows."""
    rows = dags
    text = text.strip()
    if text:
        rows = rows.filter(Q(dag_title__icontains=text) | Q(params__goalText__icontains=text))
    if schedule == "scheduled":
        rows = rows.filter(cron_schedule__isnull=False, schedule_active=True)
    elif schedule == "paused":
        rows = rows.filter(cron_schedule__isnull=False, schedule_active=False)
    elif schedule == "unscheduled":
        rows = rows.filter(cron_schedule__isnull=True)
    latest = DagExecution.objects.filter(dag=OuterRef("pk")).order_by("-created_at", "-pk")
    rows = rows.annotate(
        last_status=Subquery(latest.values("status")[:1]),
        execution_count=Subquery(
            DagExecution.objects.filter(dag=OuterRef("pk"))
            .order_by()
            .values("dag")
            .annotate(count=Count("pk"))
            .values("count")[:1]
        ),
    )
    if last_status == NEVER_EXECUTED:
        rows = rows.filter(last_status__isnull=True)
    elif last_status:
        rows = rows.filter(last_status=last_status)
    ordering = DAG_SORTS.get(sort, DAG_SORTS["-created"])[1]
    return rows.order_by(*ordering)


# Orderings the execution list page offers: key → (label, ORM ordering).
EXECUTION_SORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "-created": ("Newest first", ("-created_at", "-pk")),
    "created": ("Oldest first", ("created_at", "pk")),
    "-updated": ("Recently updated", ("-updated_at", "-pk")),
    "-duration": ("Longest first", ("-duration_ms", "-created_at", "-pk")),
    "-cost": ("Most expensive first", ("-total_cost_usd", "-created_at", "-pk")),
    "title": ("Title A to Z", ("dag__dag_title", "-created_at", "pk")),
}


def execution_search(
    *,
    viewer: Any,
    text: str = "",
    status: str = "",
    sort: str = "-created",
) -> QuerySet[DagExecution]:
    """Executions `viewer` may see (annotated with `dag_title`) whose DAG title, request or id
    contains `text`, in one status or all, in the chosen order. One query, however many rows."""
    rows = executions_with_title(viewer=viewer)
    text = text.strip()
    if text:
        rows = rows.filter(
            Q(dag__dag_title__icontains=text)
            | Q(original_request__icontains=text)
            | Q(pk__iexact=text)
        )
    if status:
        rows = rows.filter(status=status)
    ordering = EXECUTION_SORTS.get(sort, EXECUTION_SORTS["-created"])[1]
    # The list shows neither the request text in full, the plan context nor results: leave the
    # large columns out of the query.
    return rows.defer(
        "plan_context", "final_result", "synthesis_result", "total_usage", "original_request"
    ).order_by(*ordering)
