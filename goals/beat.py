"""The beat scheduler: django-celery-beat's DatabaseScheduler, made safe against bad rows and
leaving a heartbeat in the database.

* A row whose next time cannot be computed (a cron no date matches, a schedule that cannot be
  built) would raise out of beat's tick and stop beat, and every restart would die on it
  again. Here such a row is disabled and its error kept on the goal schedule or DAG it belongs
  to (`goals.schedules.schedule_failure_record`); the other rows go on.
* Each tick records a heartbeat (at most every SCHEDULER_HEARTBEAT_SECONDS) so readiness can
  tell, from any machine, whether beat runs.

Use it with `CELERY_BEAT_SCHEDULER = "goals.beat:GuardedDatabaseScheduler"`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from celery.schedules import schedstate
from django.conf import settings
from django.db import DatabaseError, InterfaceError, close_old_connections
from django.utils.timezone import now
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

logger = logging.getLogger(__name__)

HEARTBEAT_NAME = "beat"
# How long beat waits before asking a failed entry again (it is normally gone by then: the
# row was disabled, and beat reloads its schedule when a row changes).
FAILED_ENTRY_RECHECK_SECONDS = 300.0


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


def _record_failure(task_name: str, error: BaseException) -> None:
    from goals.schedules import schedule_failure_record

    try:
        schedule_failure_record(task_name=task_name, error=_describe(error))
    except Exception:  # the database is away: beat goes on, and asks again next time
        logger.exception("could not record the failure of schedule %s", task_name)


class GuardedEntry(ModelEntry):
    """A beat row that never raises out of the scheduler: a failure disables the row."""

    def __init__(self, model, app=None) -> None:
        try:
            super().__init__(model, app=app)
        except ValueError:
            raise
        except Exception as error:
            # The scheduler skips entries that raise ValueError when it loads its rows.
            _record_failure(model.name, error)
            raise ValueError(f"schedule {model.name} cannot be loaded: {error}") from error

    def is_due(self) -> schedstate:
        try:
            return super().is_due()
        except Exception as error:
            _record_failure(self.name, error)
            return schedstate(is_due=False, next=FAILED_ENTRY_RECHECK_SECONDS)


class GuardedDatabaseScheduler(DatabaseScheduler):
    Entry = GuardedEntry

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.heartbeat_started_at = now()
        self.heartbeat_written_at: float | None = None
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        delay = super().tick(*args, **kwargs)
        self.heartbeat()
        return delay

    def heartbeat(self) -> None:
        """Record the tick, at most every SCHEDULER_HEARTBEAT_SECONDS; never raises."""
        moment = time.monotonic()
        interval = settings.SCHEDULER_HEARTBEAT_SECONDS
        if self.heartbeat_written_at is not None and moment - self.heartbeat_written_at < interval:
            return
        from goals.schedules import scheduler_heartbeat_record

        try:
            close_old_connections()
            scheduler_heartbeat_record(
                name=HEARTBEAT_NAME,
                started_at=self.heartbeat_started_at,
                hostname=socket.gethostname()[:255],
                pid=os.getpid(),
            )
        except (DatabaseError, InterfaceError) as error:
            logger.warning("could not record beat's heartbeat: %s", error)
            return
        self.heartbeat_written_at = moment
