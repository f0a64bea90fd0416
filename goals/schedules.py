"""Goal and DAG schedules as django-celery-beat rows. The only writer of
`PeriodicTask` / `CrontabSchedule` rows for them.

Each active goal schedule and each DAG with a cron gets one `PeriodicTask` with a deterministic
name (`goal-schedule:<schedule id>`, `dag-schedule:<dag id>`) and a `CrontabSchedule` in the
stored IANA time zone. Beat (one process, DatabaseScheduler) reads them; saving a row tells beat
to reload. Every service that changes goals, schedules or DAG cron settings calls in here, in
the same transaction.

Timing rules:
* Catch-up after downtime: beat compares the row's `last_run_at` with the cron, so a tick
  missed while beat was down fires once when beat is back, not once per missed tick.
* A new, changed or resumed schedule starts counting from now (`last_run_at` = now): changing
  the cron or resuming after a pause never fires a burst of "missed" ticks.
* Wall-clock times in the stored zone: `0 9 * * *` in America/New_York is 09:00 local before
  and after a DST change. A time skipped by a spring-forward change fires once, an hour later
  by the clock; a time repeated by a fall-back change fires once (the first time).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils.timezone import now
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from config.cron import CronError, cron_fields, validate_timezone
from goals.models import Goal, Schedule, SchedulerHeartbeat

logger = logging.getLogger(__name__)

GOAL_TICK_TASK = "goals.goal_schedule_tick"
DAG_TICK_TASK = "goals.dag_schedule_tick"
GOAL_PREFIX = "goal-schedule:"
DAG_PREFIX = "dag-schedule:"


def goal_task_name(schedule_id: str) -> str:
    return f"{GOAL_PREFIX}{schedule_id}"


def dag_task_name(dag_id: str) -> str:
    return f"{DAG_PREFIX}{dag_id}"


# --- rows ---------------------------------------------------------------------------------------
def _crontab(expression: str, tz_name: str) -> CrontabSchedule:
    """The CrontabSchedule for a valid expression and zone (CronError otherwise), shared."""
    fields = cron_fields(expression)
    zone = ZoneInfo(validate_timezone(tz_name))
    existing = CrontabSchedule.objects.filter(**fields, timezone=zone).order_by("id").first()
    if existing is not None:
        return existing
    return CrontabSchedule.objects.create(**fields, timezone=zone)


def _drop_unused_crontab(crontab_id: int | None) -> None:
    if crontab_id is None:
        return
    if not PeriodicTask.objects.filter(crontab_id=crontab_id).exists():
        CrontabSchedule.objects.filter(pk=crontab_id).delete()


def _upsert(
    *,
    name: str,
    task: str,
    kwargs: dict[str, str],
    expression: str,
    tz_name: str,
    enabled: bool,
    description: str,
    record_error: Callable[[str], None],
) -> PeriodicTask | None:
    try:
        crontab = _crontab(expression, tz_name)
    except CronError as error:
        # Stored before validation existed, or written around the services: never fire it, and
        # say why where the schedule is shown.
        logger.warning("schedule %s has an invalid cron and is not registered: %s", name, error)
        _remove(name)
        record_error(str(error))
        return None
    encoded = json.dumps(kwargs)
    periodic = PeriodicTask.objects.filter(name=name).first()
    if periodic is None:
        periodic = PeriodicTask(name=name, last_run_at=now())
        old_crontab_id = None
        restart = False
    else:
        old_crontab_id = periodic.crontab_id
        restart = periodic.crontab_id != crontab.id or (enabled and not periodic.enabled)
    unchanged = (
        periodic.pk is not None
        and not restart
        and periodic.task == task
        and periodic.kwargs == encoded
        and periodic.enabled == enabled
        and periodic.description == description
    )
    if unchanged:
        return periodic
    periodic.task = task
    periodic.kwargs = encoded
    periodic.args = "[]"
    periodic.crontab = crontab
    periodic.interval = periodic.solar = periodic.clocked = None
    periodic.enabled = enabled
    periodic.description = description
    if restart:
        # Count from now: no burst of "missed" ticks after a pause or a cron change.
        periodic.last_run_at = now()
    periodic.save()
    if old_crontab_id != crontab.id:
        _drop_unused_crontab(old_crontab_id)
    return periodic


def _remove(name: str) -> None:
    periodic = PeriodicTask.objects.filter(name=name).first()
    if periodic is None:
        return
    crontab_id = periodic.crontab_id
    periodic.delete()  # through the model, so beat is told to reload
    _drop_unused_crontab(crontab_id)


# --- goals --------------------------------------------------------------------------------------
@transaction.atomic
def goal_schedule_sync(*, schedule: Schedule) -> PeriodicTask | None:
    """Create or update the beat row of one goal schedule: enabled only while both the schedule
    and its goal are active."""
    goal = schedule.goal
    # A schedule beat could not compute stays off until its cron or time zone is changed.
    enabled = schedule.active and goal.status == Goal.Status.ACTIVE and not schedule.error
    return _upsert(
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
    _remove(goal_task_name(schedule_id))


@transaction.atomic
def goal_schedules_remove(*, goal: Goal) -> None:
    for schedule_id in Schedule.objects.filter(goal=goal).values_list("id", flat=True):
        _remove(goal_task_name(schedule_id))


# --- DAGs ---------------------------------------------------------------------------------------
@transaction.atomic
def dag_schedule_sync(*, dag) -> PeriodicTask | None:
    """Create, update or remove the beat row of a DAG from its `cron_schedule`,
    `schedule_active` and `timezone`. A DAG without a cron has no row; an inactive one keeps a
    disabled row."""
    cron = (dag.cron_schedule or "").strip()
    if not cron:
        _remove(dag_task_name(dag.id))
        return None
    return _upsert(
        name=dag_task_name(dag.id),
        task=DAG_TICK_TASK,
        kwargs={"dag_id": dag.id},
        expression=cron,
        tz_name=dag.timezone or "UTC",
        enabled=bool(dag.schedule_active) and not dag.schedule_error,
        description=f"DAG {dag.id}: {(dag.dag_title or '')[:120]}",
        record_error=lambda error: _dag_schedule_error_set(dag, error),
    )


@transaction.atomic
def dag_schedule_remove(*, dag_id: str) -> None:
    _remove(dag_task_name(dag_id))


# --- failures beat reports -------------------------------------------------------------------
def _goal_schedule_error_set(schedule: Schedule, error: str) -> None:
    schedule.error, schedule.error_at = error[:2000], now()
    Schedule.objects.filter(pk=schedule.pk).update(error=schedule.error, error_at=schedule.error_at)


def _dag_schedule_error_set(dag, error: str) -> None:
    from dags.models import Dag

    dag.schedule_error, dag.schedule_error_at = error[:2000], now()
    Dag.objects.filter(pk=dag.pk).update(
        schedule_error=dag.schedule_error, schedule_error_at=dag.schedule_error_at
    )


@transaction.atomic
def schedule_failure_record(*, task_name: str, error: str) -> None:
    """Beat could not compute when a row is next due: disable the row (beat reloads and the
    other schedules go on) and keep the reason on the goal schedule or DAG it belongs to, where
    the API, the admin and the UI show it. Changing the cron or time zone clears it."""
    from dags.models import Dag

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
            _dag_schedule_error_set(dag, error)


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
    from dags.models import Dag

    schedules = list(Schedule.objects.select_related("goal"))
    for schedule in schedules:
        goal_schedule_sync(schedule=schedule)
    dags = list(Dag.objects.exclude(cron_schedule__isnull=True).exclude(cron_schedule=""))
    for dag in dags:
        dag_schedule_sync(dag=dag)
    wanted = {goal_task_name(s.id) for s in schedules} | {dag_task_name(d.id) for d in dags}
    stale = [
        name
        for name in PeriodicTask.objects.filter(task__in=[GOAL_TICK_TASK, DAG_TICK_TASK])
        .values_list("name", flat=True)
        .iterator()
        if name not in wanted
    ]
    for name in stale:
        _remove(name)
    return {"goalSchedules": len(schedules), "dagSchedules": len(dags), "removed": len(stale)}
