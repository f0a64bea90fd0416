"""Handing nodes to the workers: which nodes may run now (ready tasks within the per-execution
cap, or the synthesis once every task is done), marking them dispatched, and sending their
messages once the transaction commits. Used by the execution services (start, resume, a node
finishing) and by recovery alike; each function returns what it did.

Messages name the node task (`dags.run_sub_step`, dags/tasks.py) rather than importing it: the
tasks call the services, which call in here.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils.timezone import now

from config import after_response
from config.broker import SEND_RETRY_POLICY
from config.db import write_transaction
from dags.execution import statements
from dags.models import SYNTHESIS_TASK_ID, DagExecution, SubStep

logger = logging.getLogger(__name__)

RUN_SUB_STEP_TASK = "dags.run_sub_step"


@dataclass(frozen=True)
class Dispatched:
    """What `execution_dispatch_ready` did: nodes handed to the queue, and the one node kept for
    the caller to run at once (`keep_one`)."""

    queued: list[str] = field(default_factory=list)
    kept: str | None = None

    def __bool__(self) -> bool:
        return bool(self.queued) or self.kept is not None


# Whether this process's last attempt to send a node failed (and none succeeded since): what
# a start answers about the queue without asking it, since its own nodes go after the answer.
_broker_away = threading.Event()


def broker_seems_away() -> bool:
    """Whether the last node this process tried to send could not be sent."""
    return _broker_away.is_set()


def nodes_send(sub_step_ids: Sequence[str], queue_suffix: str) -> int:
    """Send the nodes' messages; returns how many were sent. Those the broker cannot take are
    marked undispatched again, for the dispatcher (config.dispatcher) to send once it is back."""
    sent = _send(sub_step_ids, queue_suffix)
    if sent < len(sub_step_ids):
        _broker_away.set()
    elif sent:
        _broker_away.clear()
    return sent


def _send(sub_step_ids: Sequence[str], queue_suffix: str) -> int:
    for index, sub_step_id in enumerate(sub_step_ids):
        try:
            current_app.send_task(
                RUN_SUB_STEP_TASK,
                args=[sub_step_id],
                task_id=f"{sub_step_id}:{queue_suffix}",
                retry_policy=SEND_RETRY_POLICY,
                # Sent by name, so Celery does not know the task stores no result: without
                # this it subscribes to each node's result channel on the result backend.
                ignore_result=True,
            )
        except Exception as error:  # kombu and redis raise many kinds; all mean "not sent"
            unsent = list(sub_step_ids[index:])
            statements.mark_undispatched(unsent, queue_suffix)
            logger.warning(
                "broker unavailable (%s); %d node(s) left for the dispatcher", error, len(unsent)
            )
            return index
    return len(sub_step_ids)


def nodes_hand_over(*, sub_step_ids: Sequence[str], stamp: datetime) -> list[str]:
    """Mark nodes as dispatched and send them once the transaction commits; returns their ids."""
    ids = list(sub_step_ids)
    if not ids:
        return ids
    suffix = uuid.uuid4().hex[:12]
    statements.mark_dispatched(ids, stamp, suffix)
    transaction.on_commit(lambda: nodes_send(ids, suffix), robust=True)
    return ids


def nodes_dispatch_after_response(sub_step_ids: Sequence[str]) -> None:
    """Hand committed, ready nodes to the queue once the current request's response has been
    sent (config/after_response.py).

    They are committed as ready and undispatched, so if the process dies before this runs the
    dispatcher sends them (recovery.executions_dispatch); if both send, claiming keeps it to
    one run. A failure leaves them so as well."""
    ids = list(sub_step_ids)
    if ids:
        after_response.defer(_hand_over_job(ids))


def _hand_over_job(ids: list[str]) -> Callable[[], None]:
    def hand_over() -> None:
        with write_transaction():
            # Only those still waiting: the dispatcher may have sent them meanwhile, or the
            # execution may have been cancelled.
            unsent = list(
                SubStep.objects.filter(
                    pk__in=ids,
                    status=SubStep.Status.PENDING,
                    dispatched_at__isnull=True,
                    execution__status=DagExecution.Status.RUNNING,
                ).values_list("id", flat=True)
            )
            nodes_hand_over(sub_step_ids=unsent, stamp=now())

    return hand_over


def execution_dispatch_ready(*, execution: DagExecution, keep_one: bool = False) -> Dispatched:
    """Dispatch what can run now (call inside a transaction holding the execution's row lock).

    With `keep_one`, a single newly ready node is returned as `kept` instead of queued, for the
    caller to claim and run at once (its state is in the database, so a crash loses nothing)."""
    if execution.status != DagExecution.Status.RUNNING:
        return Dispatched()
    stamp = now()
    if execution.completed_tasks >= execution.total_tasks:
        synthesis, _ = SubStep.objects.get_or_create(
            execution=execution,
            task_id=SYNTHESIS_TASK_ID,
            defaults={
                "description": "Final synthesis of all task results",
                "thought": "Combine the task results into the final report",
                "action_type": SubStep.ActionType.INFERENCE,
                "tool_or_prompt_name": "__synthesis__",
                "tool_or_prompt_params": {"taskCount": execution.total_tasks},
                "dependencies": list(
                    SubStep.objects.filter(execution=execution)
                    .exclude(task_id=SYNTHESIS_TASK_ID)
                    .order_by("task_id")
                    .values_list("task_id", flat=True)
                ),
            },
        )
        if synthesis.status != SubStep.Status.PENDING or synthesis.dispatched_at is not None:
            return Dispatched()
        ready = [synthesis.id]
    else:
        ready = statements.ready_ids(execution.id, settings.EXECUTION_MAX_PARALLEL_NODES)
        if not ready:
            return Dispatched()
        if not (keep_one and len(ready) == 1):
            # (A finishing node that hands its slot to its one successor keeps the cap.)
            capacity = settings.EXECUTION_MAX_PARALLEL_NODES - statements.in_flight_count(
                execution.id
            )
            if capacity <= 0:
                return Dispatched()
            ready = ready[:capacity]
    if keep_one and len(ready) == 1:
        # Marked dispatched by the caller's claim of it (statements.claim_node, kept=True).
        return Dispatched(kept=ready[0])
    return Dispatched(queued=nodes_hand_over(sub_step_ids=ready, stamp=stamp))
