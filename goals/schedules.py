"""Goal schedules as django-celery-beat rows (`goal-schedule:<schedule id>`): every service that
changes goals or schedules calls in here, in the same transaction. Row writing rules:
config/periodic_tasks.py. Also what beat reports (failures, heartbeat) and the repair that
rebuilds every beat row of goals and DAGs (dags/schedules.py).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils.timezone import now
from django_celery_beat.models import PeriodicTask

from config.list_cache import lists_changed
from config.periodic_tasks import periodic_task_remove, periodic_task_sync
from dags.models import Dag
from dags.schedules import (
    DAG_PREFIX,
    DAG_TICK_TASK,
    dag_schedule_error_set,
    dag_schedules_sync_all,
)
from goals.models import Goal, Schedule, SchedulerHeartbeat

logger = logging.getLogger(__name__)

GOAL_TICK_TASK = "goals.goal_schedule_tick"
GOAL_PREFIX = "goal-schedule:"


def goal_task_name(schedule_id: str) -> str:
    return f"{GOAL_PREFIX}{schedule_id}"


# --- goals --------------------------------------------------------------------------------------
@transaction.atomic
def goal_schedule_sync(*, schedule: Schedule) -> PeriodicTask | None:
    """Create or update the beat row of one goal schedule: enabled only while both the schedule
    and its goal are active."""
    goal = schedule.goal
    # A schedule beat could not compute stays off until its cron or time zone is changed.
    enabled = schedule.active and goal.status == Goal.Status.ACTIVE and not schedule.error
    return periodic_task_sync(
        name=goal_task_name(schedule.id),
        task=GOAL_TICK_TASK,
        kwargs={"schedule_id": schedule.id},
        expression=schedule.cron_expr,
        tz_name=schedule.timezone,
        enabled=enabled,
        description=f"Goal {goal.id}: {goal.objective[:120]}",
        record_error=lambda error: _goal_schedule_error_set(schedule, error),
    )


@transaction.atomic
def goal_schedules_sync(*, goal: Goal) -> None:
    """Bring the beat rows of every schedule of the goal in line with the goal and schedules."""
    for schedule in Schedule.objects.filter(goal=goal).select_related("goal"):
        goal_schedule_sync(schedule=schedule)


@transaction.atomic
def goal_schedule_remove(*, schedule_id: str) -> None:
    periodic_task_remove(goal_task_name(schedule_id))


@transaction.atomic
def goal_schedules_remove(*, goal: Goal) -> None:
    for schedule_id in Schedule.objects.filter(goal=goal).values_list("id", flat=True):
        periodic_task_remove(goal_task_name(schedule_id))


# --- failures beat reports -------------------------------------------------------------------
def _goal_schedule_error_set(schedule: Schedule, error: str) -> None:
    schedule.error, schedule.error_at = error[:2000], now()
    Schedule.objects.filter(pk=schedule.pk).update(error=schedule.error, error_at=schedule.error_at)
    lists_changed()


@transaction.atomic
def schedule_failure_record(*, task_name: str, error: str) -> None:
    """Beat could not compute when a row is next due: disable the row (beat reloads and the
    other schedules go on) and keep the reason on the goal schedule or DAG it belongs to, where
    the API, the admin and the UI show it. Changing the cron or time zone clears it."""
    periodic = PeriodicTask.objects.filter(name=task_name).first()
    if periodic is not None and periodic.enabled:
        periodic.enabled = False
        periodic.save()  # through the model, so beat is told to reload
    logger.error("schedule %s disabled: its next time cannot be computed: %s", task_name, error)
    if task_name.startswith(GOAL_PREFIX):
        schedule = Schedule.objects.filter(pk=task_name[len(GOAL_PREFIX) :]).first()
        if schedule is not None:
            _goal_schedule_error_set(schedule, error)
    elif task_name.startswith(DAG_PREFIX):
        dag = Dag.objects.filter(pk=task_name[len(DAG_PREFIX) :]).first()
        if dag is not None:
            dag_schedule_error_set(dag=dag, error=error)


@transaction.atomic
def scheduler_heartbeat_record(*, name: str, started_at, hostname: str, pid: int) -> None:
    """Beat's tick, kept in the database so every web process can tell whether it runs."""
    SchedulerHeartbeat.objects.update_or_create(
        name=name,
        defaults={"ticked_at": now(), "started_at": started_at, "hostname": hostname, "pid": pid},
    )


# --- repair -------------------------------------------------------------------------------------
@transaction.atomic
def schedules_sync_all() -> dict[str, int]:
    """Rebuild every goal and DAG beat row from the database and drop rows whose goal schedule
    or DAG is gone (after a restore or an import that bypassed the services)."""
    schedules = list(Schedule.objects.select_related("goal"))
    for schedule in schedules:
        goal_schedule_sync(schedule=schedule)
    dag_rows = dag_schedules_sync_all()
    wanted = {goal_task_name(s.id) for s in schedules} | dag_rows
    stale = [
        name
        for name in PeriodicTask.objects.filter(task__in=[GOAL_TICK_TASK, DAG_TICK_TASK])
        .values_list("name", flat=True)
        .iterator()
        if name not in wanted
    ]
    for name in stale:
        periodic_task_remove(name)
    return {"goalSchedules": len(schedules), "dagSchedules": len(dag_rows), "removed": len(stale)}
