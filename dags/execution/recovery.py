"""Finding work that a dead worker or a lost message left behind.

Run every few seconds by each worker's dispatcher (config.dispatcher), by the periodic sweep
(beat), when a worker starts, and by `manage.py recover_executions`. Everything here is
idempotent: re-queuing a node that is in fact alive is harmless, because claiming is a
conditional update.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.timezone import now

from dags.execution import dispatch, services, statements
from dags.models import SYNTHESIS_TASK_ID, DagExecution, SubStep

logger = logging.getLogger(__name__)

NodeStatus = SubStep.Status


def executions_recover(*, broker_lost: bool = False, include_stale: bool = True) -> dict[str, int]:
    """Send again what a dead worker or a lost message left behind; push stuck executions on.

    - nodes whose lease lapsed (their worker died) go to another worker, or are failed after
      NODE_MAX_ATTEMPTS;
    - with `broker_lost`, every node handed to the queue and not yet started is sent again;
    - nodes that are ready but have no message (the broker was away when they became ready)
      are dispatched, within the per-execution cap; so is the synthesis once it is due;
    - with `include_stale`, nodes queued longer than NODE_DISPATCH_STALE_SECONDS are sent
      again (a last resort for a message lost without the broker losing its data).
    """
    stamp = now()
    running_executions = DagExecution.objects.filter(status=DagExecution.Status.RUNNING)
    lapsed = list(
        SubStep.objects.filter(
            execution__in=running_executions,
            status=NodeStatus.RUNNING,
            lease_expires_at__lt=stamp,
        ).values_list("id", flat=True)
    )
    queued = SubStep.objects.filter(
        execution__in=running_executions,
        status=NodeStatus.PENDING,
        dispatched_at__isnull=False,
        queue_task_id__isnull=False,
    )
    if broker_lost:
        stale = list(queued.values_list("id", flat=True))
    elif include_stale:
        stale = list(
            queued.filter(
                dispatched_at__lt=stamp - timedelta(seconds=settings.NODE_DISPATCH_STALE_SECONDS)
            ).values_list("id", flat=True)
        )
    else:
        stale = []
    exhausted = list(
        SubStep.objects.filter(pk__in=lapsed, attempts__gte=settings.NODE_MAX_ATTEMPTS).values_list(
            "id", flat=True
        )
    )
    for sub_step_id in exhausted:
        services.sub_step_give_up(sub_step_id=sub_step_id)
    lapsed = [sub_step_id for sub_step_id in lapsed if sub_step_id not in set(exhausted)]
    requeue = lapsed + stale
    if requeue:
        by_execution: dict[str, list[str]] = {}
        for sub_step_id, execution_id in SubStep.objects.filter(pk__in=requeue).values_list(
            "id", "execution_id"
        ):
            by_execution.setdefault(execution_id, []).append(sub_step_id)
        with transaction.atomic():
            for execution_id, ids in sorted(by_execution.items()):
                dispatch.nodes_hand_over(execution_id=execution_id, sub_step_ids=ids, stamp=stamp)
    advanced = 0
    stuck, waiting = _executions_to_advance(running_executions)
    for execution_id in sorted(stuck | waiting):
        with transaction.atomic():
            execution = DagExecution.objects.select_for_update().get(pk=execution_id)
            advanced += bool(dispatch.execution_dispatch_ready(execution=execution))
    counts = {
        "lapsed": len(lapsed),
        "stale": len(stale),
        "given_up": len(exhausted),
        "advanced": advanced,
    }
    if lapsed or stale or exhausted or stuck:
        logger.warning("recovered executions %s", counts)
    elif advanced:
        # Ready nodes stored unsent: their sender had not sent them yet (a web process hands a
        # start's first nodes over after its answer) or could not (the broker was away, which
        # the sender logged). Sending them is this pass's routine work.
        logger.info("sent the waiting nodes of %d execution(s)", advanced)
    return counts


def _executions_to_advance(running_executions) -> tuple[set[str], set[str]]:
    """Running executions to push on: (stuck, waiting). Stuck: nothing running, queued or
    waiting to be sent (a message was lost, or the synthesis is due and was never sent).
    Waiting: ready nodes stored without a message, with room under the cap."""
    idle = set(
        running_executions.exclude(
            Q(sub_steps__status=NodeStatus.RUNNING)
            | Q(sub_steps__status=NodeStatus.PENDING, sub_steps__dispatched_at__isnull=False)
        ).values_list("id", flat=True)
    )
    unsent = set(
        statements.unsent_ready_nodes()
        .filter(execution__in=running_executions)
        .values_list("execution_id", flat=True)
    )
    waiting = {
        execution_id
        for execution_id in unsent
        if execution_id in idle
        or statements.in_flight_count(execution_id) < settings.EXECUTION_MAX_PARALLEL_NODES
    }
    return idle - unsent, waiting


def executions_dispatch(*, broker_lost: bool) -> dict[str, int]:
    """The dispatcher's pass (config.dispatcher): everything but the slow stale check."""
    return executions_recover(broker_lost=broker_lost, include_stale=False)


def next_lease_expiry_seconds() -> float | None:
    """Seconds until the earliest lease of a running node lapses (None if there is none)."""
    earliest = (
        SubStep.objects.filter(
            status=NodeStatus.RUNNING, execution__status=DagExecution.Status.RUNNING
        )
        .order_by("lease_expires_at")
        .values_list("lease_expires_at", flat=True)
        .first()
    )
    if earliest is None:
        return None
    return max(0.0, (earliest - now()).total_seconds())


def execution_awaiting_broker(*, execution_id: str) -> bool:
    """Whether the execution has ready nodes that could not be sent (the broker was away when
    they became ready) and that the dispatcher will send once it is back."""
    if statements.in_flight_count(execution_id) >= settings.EXECUTION_MAX_PARALLEL_NODES:
        return False
    return (
        SubStep.objects.filter(
            execution_id=execution_id,
            execution__status=DagExecution.Status.RUNNING,
            status=NodeStatus.PENDING,
            dispatched_at__isnull=True,
            remaining_dependencies=0,
        )
        .exclude(task_id=SYNTHESIS_TASK_ID)
        .exists()
    )
