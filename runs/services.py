"""Run lifecycle: trigger, claim, record steps, complete or fail, recover.

The step loop itself lives in `runs.loop`; this module owns every state change of a run so the
API, the worker, the scheduler and the recovery sweep all go through the same transitions.
A run is claimed with a conditional update, so a duplicate delivery changes nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils.timezone import now

from agents.llm.usage import Spend, Usage
from config.broker import SEND_RETRY_POLICY
from config.claims import claim_one
from config.errors import Conflict, DomainError, NotFound
from runs import events, leases
from runs.models import Output, Run, Step

if TYPE_CHECKING:
    from goals.models import Goal

logger = logging.getLogger(__name__)

# The Celery tasks (runs/tasks.py) call these services; messages name them rather than import
# them, so the dependency runs one way (tasks -> loop -> services -> models).
RUN_GOAL_TASK = "runs.run_goal"
DELIVER_WEBHOOK_TASK = "runs.deliver_run_webhook"

ACTIVE_STATUSES = (Run.Status.PENDING, Run.Status.RUNNING)
# Any constant: the key of the PostgreSQL advisory lock that serialises run admission.
_ADMISSION_LOCK_KEY = 0x61A6E7
LOST_WORKER_ERROR = (
    "The worker running this run stopped (its lease lapsed without a heartbeat); the run was "
    "marked failed so that it no longer counts against MAX_CONCURRENT_RUNS."
)


class TooManyRuns(DomainError):
    status = 429


# --- trigger ------------------------------------------------------------------------------------
def _lock_admission() -> None:
    """Serialise "count active runs, then insert" across processes and machines.

    SQLite transactions are IMMEDIATE here (one writer at a time); PostgreSQL takes a
    transaction-scoped advisory lock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADMISSION_LOCK_KEY])


def step_budget_of(goal: Goal) -> int:
    params = goal.params if isinstance(goal.params, dict) else {}
    budget = params.get("stepBudget")
    if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0:
        return budget
    return int(settings.DEFAULT_STEP_BUDGET)


def run_trigger(*, goal_id: str, trigger: str = Run.Trigger.MANUAL, enqueue: bool = True) -> Run:
    """Create a pending run of an active goal and hand it to the workers.

    Raises NotFound (unknown goal), Conflict (goal not active) or TooManyRuns when
    MAX_CONCURRENT_RUNS runs are pending or running. Runs whose worker died are failed first,
    so they never hold the limit. With `enqueue=False` the caller runs it itself.
    """
    # Goals sit above runs (a goal starts its runs); this is the one place a run reads a goal by
    # id, so the model is imported here rather than at the top.
    from goals.models import Goal

    runs_recover(requeue=False)
    with transaction.atomic():
        _lock_admission()
        goal = Goal.objects.filter(pk=goal_id).first()
        if goal is None:
            raise NotFound(f"Goal not found: {goal_id}")
        if goal.status != Goal.Status.ACTIVE:
            raise Conflict(f"Goal is not active: {goal_id}", currentStatus=goal.status)
        active = Run.objects.filter(status__in=ACTIVE_STATUSES).count()
        limit = settings.MAX_CONCURRENT_RUNS
        if active >= limit:
            raise TooManyRuns(
                f"Maximum concurrent runs ({limit}) exceeded. Current active runs: {active}",
                maxConcurrentRuns=limit,
                activeRuns=active,
            )
        run = Run.objects.create(
            goal=goal,
            owner_id=goal.owner_id,
            step_budget=step_budget_of(goal),
            trigger=trigger,
            dispatched_at=now() if enqueue else None,
        )
        if enqueue:
            transaction.on_commit(lambda: _enqueue(run.id))
    logger.info("run triggered id=%s goal=%s trigger=%s", run.id, goal.id, trigger)
    return run


def _enqueue(run_id: str) -> None:
    """Send the run's message; if the broker cannot take it, mark the run unsent, so that the
    dispatcher (config.dispatcher) sends it once the broker is back."""
    try:
        current_app.send_task(RUN_GOAL_TASK, args=[run_id], retry_policy=SEND_RETRY_POLICY)
    except Exception as error:  # kombu and redis raise many kinds; all mean "not sent"
        Run.objects.filter(pk=run_id, status=Run.Status.PENDING).update(dispatched_at=None)
        logger.warning("broker unavailable (%s); run %s left for the dispatcher", error, run_id)


# --- claim and progress -------------------------------------------------------------------------
def run_claim(*, run_id: str) -> Run | None:
    """Move a pending run to running for this worker; None if another worker has it or it
    already ended (a duplicate or late delivery)."""
    stamp = now()
    with transaction.atomic():
        run = claim_one(
            Run.objects.filter(pk=run_id, status=Run.Status.PENDING),
            changes={
                "status": Run.Status.RUNNING,
                "started_at": stamp,
                "lease_expires_at": leases.lease_deadline(),
                "attempts": 1,
            },
        )
        if run is None:
            return None
        events.emit_run_event(
            run_id=run.id,
            type=events.RUN_STARTED,
            payload={"goalId": run.goal_id, "stepBudget": run.step_budget},
        )
    leases.hold(run_id)
    logger.info("run started id=%s goal=%s budget=%d", run.id, run.goal_id, run.step_budget)
    return run


def add_usage(run: Run, usage: Usage | None, cost: Decimal | None) -> None:
    """Add one LLM call's usage and cost to the run (in memory; saved with the next step)."""
    spend = Spend.of(run.usage, run.cost_usd).plus(usage, cost)
    run.usage, run.cost_usd = spend.usage_dict(), spend.cost_usd


def step_record(
    *,
    run: Run,
    step_no: int,
    thought: str,
    calls: list[dict[str, Any]],
    observation: str | None,
    duration_ms: int,
    error: str | None,
    usage: Usage | None,
    cost: Decimal | None,
    outputs: list[tuple[str, str]],
) -> Step:
    """Store a finished step, its outputs and the run's progress; emit `run.step`."""
    first = next((call for call in calls if call["status"] == "ok"), calls[0] if calls else None)
    with transaction.atomic():
        step = Step.objects.create(
            run=run,
            step_no=step_no,
            thought=thought,
            tool_name=first["name"] if first else None,
            tool_input=first["arguments"] if first else None,
            observation=observation,
            duration_ms=duration_ms,
            error=error,
            tool_calls=calls,
            usage=usage.as_dict() if usage else None,
            cost_usd=cost,
        )
        for kind, value in outputs:
            Output.objects.create(run=run, kind=kind, path_or_payload=value)
        run.steps_executed = step_no
        # Never a full save: the event emitter bumps `last_event_seq` on the same row.
        run.save(update_fields=["steps_executed", "working_memory", "usage", "cost_usd"])
        events.emit_run_event(
            run_id=run.id,
            type=events.RUN_STEP,
            payload={
                "stepNo": step.step_no,
                "thought": step.thought,
                "toolName": step.tool_name,
                "toolInput": step.tool_input,
                "observation": step.observation,
                "durationMs": step.duration_ms,
                "error": step.error,
                "toolCalls": calls,
            },
        )
    return step


# --- endings ------------------------------------------------------------------------------------
def run_complete(*, run: Run, summary: str, stop_reason: str) -> Run:
    """Mark the run completed; keep the summary as an output and as a note for later runs."""
    stamp = now()
    with transaction.atomic():
        run.working_memory = {**run.working_memory, "summary": summary, "stopReason": stop_reason}
        updated = Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
            status=Run.Status.COMPLETED,
            ended_at=stamp,
            working_memory=run.working_memory,
            usage=run.usage,
            cost_usd=run.cost_usd,
            lease_expires_at=None,
        )
        if not updated:  # failed meanwhile (lease lapsed while the worker was stalled)
            logger.warning("run %s ended elsewhere; its completion is not recorded", run.pk)
            run.refresh_from_db()
            return run
        run.status, run.ended_at = Run.Status.COMPLETED, stamp
        Output.objects.create(run=run, kind=Output.Kind.SUMMARY, path_or_payload=summary)
        memories = run.goal.memories  # the goal's memory, through the run (goals sit above runs)
        memories.create(
            type=memories.model.Type.NOTE,
            content=summary,
            metadata={"runId": run.id, "stopReason": stop_reason, "endedAt": stamp.isoformat()},
        )
        events.emit_run_event(
            run_id=run.id,
            type=events.RUN_COMPLETED,
            payload={
                "status": run.status,
                "stepsExecuted": run.steps_executed,
                "summary": summary,
                "stopReason": stop_reason,
            },
        )
    leases.release(run.pk)
    logger.info("run completed id=%s steps=%d reason=%s", run.pk, run.steps_executed, stop_reason)
    return run


def run_fail(*, run_id: str, error: str, deliver_webhook: bool = False) -> bool:
    """Mark a pending or running run failed with `error`; False if it had already ended."""
    stamp = now()
    error = error[: settings.NODE_ERROR_MAX_CHARS]
    with transaction.atomic():
        updated = Run.objects.filter(pk=run_id, status__in=ACTIVE_STATUSES).update(
            status=Run.Status.FAILED, ended_at=stamp, error=error, lease_expires_at=None
        )
        if updated:
            steps = Run.objects.filter(pk=run_id).values_list("steps_executed", flat=True).first()
            events.emit_run_event(
                run_id=run_id,
                type=events.RUN_FAILED,
                payload={"error": error, "stepsExecuted": steps or 0},
            )
            if deliver_webhook:
                transaction.on_commit(lambda: _enqueue_webhook(run_id))
    leases.release(run_id)
    if updated:
        logger.warning("run failed id=%s: %s", run_id, error[:300])
    return bool(updated)


def _enqueue_webhook(run_id: str) -> None:
    try:
        current_app.send_task(DELIVER_WEBHOOK_TASK, args=[run_id])
    except Exception:
        logger.exception("could not queue the webhook of run %s", run_id)


# --- recovery -----------------------------------------------------------------------------------
def runs_recover(
    *, requeue: bool = True, broker_lost: bool = False, include_stale: bool = True
) -> dict[str, int]:
    """Fail running runs whose worker died (lapsed lease); send again pending runs whose
    message was lost: never sent (the broker was away), all of them when `broker_lost`, and,
    with `include_stale`, those queued longer than RUN_DISPATCH_STALE_SECONDS. Idempotent;
    safe from any process."""
    stamp = now()
    cutoff = stamp - timedelta(seconds=settings.RUN_LEASE_SECONDS)
    no_lease = Q(lease_expires_at__isnull=True)
    lapsed = list(
        Run.objects.filter(status=Run.Status.RUNNING)
        .filter(
            Q(lease_expires_at__lt=stamp)
            # rows from before leases existed: judged by when they started
            | (no_lease & Q(started_at__lt=cutoff))
            | (no_lease & Q(started_at__isnull=True, created_at__lt=cutoff))
        )
        .values_list("id", flat=True)
    )
    failed = sum(
        run_fail(run_id=run_id, error=LOST_WORKER_ERROR, deliver_webhook=True) for run_id in lapsed
    )
    requeued = 0
    if requeue:
        pending = Run.objects.filter(status=Run.Status.PENDING)
        unsent_before = stamp - timedelta(seconds=settings.RUN_UNSENT_GRACE_SECONDS)
        resend = Q(dispatched_at__isnull=True, created_at__lt=unsent_before)
        if broker_lost:
            resend |= Q(dispatched_at__isnull=False)
        elif include_stale:
            stale_before = stamp - timedelta(seconds=settings.RUN_DISPATCH_STALE_SECONDS)
            resend |= Q(dispatched_at__lt=stale_before)
        stale = list(pending.filter(resend).values_list("id", flat=True))
        for run_id in stale:
            if Run.objects.filter(pk=run_id, status=Run.Status.PENDING).update(dispatched_at=stamp):
                _enqueue(run_id)
                requeued += 1
    counts = {"failed": failed, "requeued": requeued}
    if failed or requeued:
        logger.warning("recovered runs %s", counts)
    return counts


def runs_dispatch(*, broker_lost: bool) -> dict[str, int]:
    """The dispatcher's pass (config.dispatcher): everything but the slow stale check."""
    return runs_recover(broker_lost=broker_lost, include_stale=False)


@transaction.atomic
def run_delete(*, run: Run) -> None:
    """Delete the run with its steps and outputs."""
    run_id = run.id
    run.delete()
    leases.release(run_id)
    logger.info("run deleted id=%s", run_id)


CANCELLED_ERROR = "Cancelled by a user."


def run_cancel(*, run: Run) -> bool:
    """Stop a pending or running run: it is marked failed with CANCELLED_ERROR (the worker's
    loop sees it is no longer running before its next step). False if it had already ended."""
    cancelled = run_fail(run_id=run.id, error=CANCELLED_ERROR, deliver_webhook=True)
    if cancelled:
        logger.info("run cancelled id=%s", run.id)
    return cancelled
