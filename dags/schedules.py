"""A DAG's cron as a django-celery-beat row (`dag-schedule:<dag id>`), kept in line with the
DAG's `cron_schedule`, `schedule_active` and `timezone` by every service that changes them, in
the same transaction. Row writing rules: config/periodic_tasks.py.

Beat calls the task `goals.dag_schedule_tick` (goals/tasks.py): each tick is recorded as a
goals `ScheduleTick`, so the task lives with that record and is named here, not imported
(goals sits above dags).
"""

from __future__ import annotations

from django.db import transaction
from django.utils.timezone import now
from django_celery_beat.models import PeriodicTask

from config.periodic_tasks import periodic_task_remove, periodic_task_sync
from dags.models import Dag

DAG_TICK_TASK = "goals.dag_schedule_tick"
DAG_PREFIX = "dag-schedule:"


def dag_task_name(dag_id: str) -> str:
    return f"{DAG_PREFIX}{dag_id}"


@transaction.atomic
def dag_schedule_sync(*, dag: Dag) -> PeriodicTask | None:
    """Create, update or remove the beat row of a DAG from its `cron_schedule`,
    `schedule_active` and `timezone`. A DAG without a cron has no row; an inactive one keeps a
    disabled row."""
    cron = (dag.cron_schedule or "").strip()
    if not cron:
        periodic_task_remove(dag_task_name(dag.id))
        return None
    return periodic_task_sync(
        name=dag_task_name(dag.id),
        task=DAG_TICK_TASK,
        kwargs={"dag_id": dag.id},
        expression=cron,
        tz_name=dag.timezone or "UTC",
        enabled=bool(dag.schedule_active) and not dag.schedule_error,
        description=f"DAG {dag.id}: {(dag.dag_title or '')[:120]}",
        record_error=lambda error: dag_schedule_error_set(dag=dag, error=error),
    )


@transaction.atomic
def dag_schedule_remove(*, dag_id: str) -> None:
    periodic_task_remove(dag_task_name(dag_id))


def dag_schedule_error_set(*, dag: Dag, error: str) -> None:
    """Keep why beat cannot run the DAG's cron where the API, the admin and the UI show it;
    changing the cron or the time zone clears it."""
    dag.schedule_error, dag.schedule_error_at = error[:2000], now()
    Dag.objects.filter(pk=dag.pk).update(
        schedule_error=dag.schedule_error, schedule_error_at=dag.schedule_error_at
    )


@transaction.atomic
def dag_schedules_sync_all() -> set[str]:
    """Rebuild the beat row of every DAG with a cron; returns the names of those rows."""
    dags = list(Dag.objects.exclude(cron_schedule__isnull=True).exclude(cron_schedule=""))
    for dag in dags:
        dag_schedule_sync(dag=dag)
    return {dag_task_name(dag.id) for dag in dags}
