"""django-celery-beat rows, written by name: one `PeriodicTask` per schedule with a shared
`CrontabSchedule` in the stored IANA time zone. Beat (DatabaseScheduler) reads them; saving or
deleting a row through the model tells beat to reload. Apps keep the rows of what they schedule
in line through these two functions (goals/schedules.py, dags/schedules.py); nothing else
writes beat rows.

Timing rules:
* Catch-up after downtime: beat compares the row's `last_run_at` with the cron, so a tick
  missed while beat was down fires once when beat is back, not once per missed tick.
* A new, changed or re-enabled row starts counting from now (`last_run_at` = now): changing
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

from django.utils.timezone import now
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from config.cron import CronError, cron_fields, validate_timezone

logger = logging.getLogger(__name__)


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


def periodic_task_sync(
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
    """Create or update the row `name` to call `task` with `kwargs` on the cron `expression` in
    the zone `tz_name`. An invalid cron removes the row and hands the reason to `record_error`
    (returns None). A new row, a changed cron or a re-enabled row counts from now."""
    try:
        crontab = _crontab(expression, tz_name)
    except CronError as error:
        # Stored before validation existed, or written around the services: never fire it, and
        # say why where the schedule is shown.
        logger.warning("schedule %s has an invalid cron and is not registered: %s", name, error)
        periodic_task_remove(name)
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


def periodic_task_remove(name: str) -> None:
    """Delete the row `name` (if any) and its crontab once no other row uses it."""
    periodic = PeriodicTask.objects.filter(name=name).first()
    if periodic is None:
        return
    crontab_id = periodic.crontab_id
    periodic.delete()  # through the model, so beat is told to reload
    _drop_unused_crontab(crontab_id)
