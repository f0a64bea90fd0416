"""What a cron tick does when beat fires it: start a goal run or a DAG execution, or record why
it did not (overlap policy "skip" as in Temporal's schedules).

* A tick whose previous scheduled run (goal) or execution (DAG) is still pending or running
  is skipped, and the skip is stored as a `ScheduleTick` (admin: Goals > Schedule ticks).
* A goal tick that meets MAX_CONCURRENT_RUNS is skipped the same way; a DAG whose plan cannot
  run is recorded as a failed tick. Nothing is dropped silently.
* `lastRunAt` is set only when a tick really starts work.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils.timezone import now

from config.cron import CronError, previous_run_time
from config.errors import DomainError
from config.list_cache import lists_changed
from dags.schedules import dag_schedule_remove, dag_schedule_sync
from goals.models import Goal, Schedule, ScheduleTick
from goals.schedules import goal_schedule_remove, goal_schedule_sync

logger = logging.getLogger(__name__)

Outcome = ScheduleTick.Outcome
# Tolerance for a worker whose clock is a little behind beat's.
CLOCK_SKEW = timedelta(seconds=5)


def _period_start(expression: str, tz_name: str, stamp: datetime) -> datetime | None:
    try:
        return previous_run_time(expression, tz_name, stamp + CLOCK_SKEW)
    except CronError:
        return None


def _period_taken(last_run_at: datetime | None, period_start: datetime) -> bool:
    return last_run_at is not None and last_run_at >= period_start


def _claim_period(model, pk: str, period_start: datetime, stamp: datetime) -> bool:
    """Set `last_run_at` to `stamp` unless a tick of this period already did."""
    not_yet = Q(last_run_at__isnull=True) | Q(last_run_at__lt=period_start)
    claimed = bool(model.objects.filter(not_yet, pk=pk).update(last_run_at=stamp))
    if claimed:
        lists_changed()  # goal schedules show `last_run_at`
    return claimed


def _record(**fields) -> ScheduleTick:
    tick = ScheduleTick.objects.create(**fields)
    subject = {"schedule_id": tick.schedule_id} if tick.schedule_id else {"dag_id": tick.dag_id}
    keep = settings.SCHEDULE_TICKS_KEPT
    old = list(
        ScheduleTick.objects.filter(**subject)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)[keep : keep + 500]
    )
    if old:
        ScheduleTick.objects.filter(pk__in=old).delete()
    log = logger.info if tick.outcome == Outcome.STARTED else logger.warning
    log("schedule tick %s %s: %s", subject, tick.outcome, tick.reason or "-")
    return tick


def goal_schedule_fire(*, schedule_id: str) -> ScheduleTick | None:
    """Start a scheduled run of the schedule's goal, or record why not."""
    from runs.models import Run
    from runs.services import ACTIVE_STATUSES, run_trigger

    schedule = Schedule.objects.select_related("goal").filter(pk=schedule_id).first()
    if schedule is None:
        logger.warning("goal schedule %s no longer exists; removing its beat row", schedule_id)
        goal_schedule_remove(schedule_id=schedule_id)
        return None
    goal = schedule.goal
    if not schedule.active or goal.status != Goal.Status.ACTIVE:
        # Beat had not yet seen the pause; make sure its row is disabled.
        goal_schedule_sync(schedule=schedule)
        return None
    stamp = now()
    period = _period_start(schedule.cron_expr, schedule.timezone, stamp)
    if period is None:
        goal_schedule_sync(schedule=schedule)  # an invalid cron: its row is removed
        return None
    if _period_taken(schedule.last_run_at, period):
        logger.info("goal schedule %s: period %s already started", schedule.pk, period)
        return None
    previous = (
        Run.objects.filter(goal=goal, status__in=ACTIVE_STATUSES).order_by("-created_at").first()
    )
    if previous is not None:
        return _record(
            schedule=schedule,
            outcome=Outcome.SKIPPED,
            reason=f"Run {previous.id} of this goal is still {previous.status}.",
        )
    if not _claim_period(Schedule, schedule.pk, period, stamp):
        logger.info("goal schedule %s: period %s already started", schedule.pk, period)
        return None
    try:
        run = run_trigger(goal_id=goal.id, trigger=Run.Trigger.SCHEDULE)
    except DomainError as error:
        Schedule.objects.filter(pk=schedule.pk).update(last_run_at=schedule.last_run_at)
        lists_changed()
        return _record(schedule=schedule, outcome=Outcome.SKIPPED, reason=error.message)
    return _record(schedule=schedule, outcome=Outcome.STARTED, run=run)


def dag_schedule_fire(*, dag_id: str) -> ScheduleTick | None:
    """Start a scheduled execution of the DAG, or record why not."""
    from dags.execution.services import ClarificationNeeded, execution_launch
    from dags.models import Dag, DagExecution
    from dags.plan import PlanError

    dag = Dag.objects.filter(pk=dag_id).first()
    if dag is None:
        logger.warning("scheduled DAG %s no longer exists; removing its beat row", dag_id)
        dag_schedule_remove(dag_id=dag_id)
        return None
    if not dag.schedule_active or not (dag.cron_schedule or "").strip():
        dag_schedule_sync(dag=dag)
        return None
    stamp = now()
    period = _period_start(dag.cron_schedule or "", dag.timezone or "UTC", stamp)
    if period is None:
        dag_schedule_sync(dag=dag)
        return None
    if _period_taken(dag.last_run_at, period):
        logger.info("DAG schedule %s: period %s already started", dag.pk, period)
        return None
    in_flight = (
        DagExecution.objects.filter(
            pk__in=ScheduleTick.objects.filter(dag=dag, execution__isnull=False).values(
                "execution_id"
            ),
            status__in=(
                DagExecution.Status.PENDING,
                DagExecution.Status.RUNNING,
                DagExecution.Status.WAITING,
            ),
        )
        .order_by("-created_at")
        .first()
    )
    if in_flight is not None:
        return _record(
            dag=dag,
            outcome=Outcome.SKIPPED,
            reason=f"The previous scheduled execution {in_flight.id} is still {in_flight.status}.",
        )
    if not _claim_period(Dag, dag.pk, period, stamp):
        logger.info("DAG schedule %s: period %s already started", dag.pk, period)
        return None
    try:
        execution = execution_launch(dag=dag)
    except (ClarificationNeeded, PlanError, DomainError) as error:
        # Nothing started: lastRunAt goes back to the last real start.
        Dag.objects.filter(pk=dag.pk).update(last_run_at=dag.last_run_at)
        return _failed_dag_tick(dag, error)
    return _record(dag=dag, outcome=Outcome.STARTED, execution=execution)


def _failed_dag_tick(dag, error: Exception) -> ScheduleTick:
    from dags.execution.services import ClarificationNeeded
    from dags.plan import PlanError

    if isinstance(error, ClarificationNeeded):
        return _record(
            dag=dag,
            outcome=Outcome.FAILED,
            reason=f"The plan asks for clarification and cannot run on its own: {error}",
        )
    if isinstance(error, PlanError):
        return _record(dag=dag, outcome=Outcome.FAILED, reason=f"The plan cannot run: {error}")
    return _record(dag=dag, outcome=Outcome.FAILED, reason=getattr(error, "message", str(error)))
