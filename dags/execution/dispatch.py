"""Handing nodes to the workers: which nodes may run now (ready tasks within the per-execution
cap, or the synthesis once every task is done), marking them dispatched, and sending their
messages once the transaction commits. Used by the execution services (start, resume, a node
finishing) and by recovery alike; each function returns what it did.

Messages name the node tasks (`dags.run_sub_step` for one node, `dags.run_sub_steps` for several
of one execution; dags/tasks.py) rather than importing them: the tasks call the services, which
call in here.
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
RUN_SUB_STEPS_TASK = "dags.run_sub_steps"


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


def node_messages(
    execution_id: str, sub_step_ids: Sequence[str], queue_suffix: str
) -> list[tuple[str, list[str]]]:
    """How nodes of one execution handed over together travel: (message id, node ids) pairs.

    Several nodes go in messages of up to EXECUTION_NODES_PER_MESSAGE, as even as possible: the
    worker that takes one claims its nodes in one transaction and runs them at once (see
    `services.nodes_run`), instead of every node waiting for its own message to be received and
    its own claim to commit. A lone node is a message of its own, `<node id>:<suffix>`."""
    ids = list(sub_step_ids)
    if len(ids) <= 1:
        return node_messages_apart(ids, queue_suffix)
    per_message = max(1, settings.EXECUTION_NODES_PER_MESSAGE)
    count = -(-len(ids) // per_message)
    size = -(-len(ids) // count)
    chunks = [ids[start : start + size] for start in range(0, len(ids), size)]
    return [
        node_messages_apart(chunk, queue_suffix)[0]
        if len(chunk) == 1
        else (f"{execution_id}:{queue_suffix}:{index}", chunk)
        for index, chunk in enumerate(chunks)
    ]


def nodes_send(execution_id: str, messages: Sequence[tuple[str, Sequence[str]]]) -> int:
    """Send the nodes' messages; returns how many nodes were sent. Those the broker cannot take
    are marked undispatched again, for the dispatcher (config.dispatcher) to send once it is
    back."""
    sent = _send(execution_id, messages)
    if sent < sum(len(ids) for _task_id, ids in messages):
        _broker_away.set()
    elif sent:
        _broker_away.clear()
    return sent


def _send(execution_id: str, messages: Sequence[tuple[str, Sequence[str]]]) -> int:
    sent = 0
    for index, (task_id, ids) in enumerate(messages):
        try:
            current_app.send_task(
                RUN_SUB_STEP_TASK if len(ids) == 1 else RUN_SUB_STEPS_TASK,
                args=[ids[0]] if len(ids) == 1 else [execution_id, list(ids)],
                task_id=task_id,
                retry_policy=SEND_RETRY_POLICY,
                # Sent by name, so Celery does not know the task stores no result: without
                # this it subscribes to each node's result channel on the result backend.
                ignore_result=True,
            )
        except Exception as error:  # kombu and redis raise many kinds; all mean "not sent"
            statements.mark_undispatched(messages[index:])
            logger.warning(
                "broker unavailable (%s); %d node(s) left for the dispatcher",
                error,
                sum(len(ids) for _task_id, ids in messages[index:]),
            )
            return sent
        sent += len(ids)
    return sent


def nodes_hand_over(
    *, execution_id: str, sub_step_ids: Sequence[str], stamp: datetime
) -> list[str]:
    """Mark nodes of the execution as dispatched and send them once the transaction commits;
    returns their ids."""
    ids = list(sub_step_ids)
    if not ids:
        return ids
    suffix = uuid.uuid4().hex[:12]
    messages = node_messages(execution_id, ids, suffix)
    statements.mark_dispatched(messages, stamp, suffix)
    transaction.on_commit(lambda: nodes_send(execution_id, messages), robust=True)
    return ids


def nodes_send_apart(*, execution_id: str, sub_step_ids: Sequence[str], task_id: str) -> int:
    """Send again, each in a message of its own, nodes that the message `task_id` carried and
    its worker had no threads for; returns how many were sent (see `services.nodes_run`)."""
    suffix = uuid.uuid4().hex[:12]
    with write_transaction():
        ids = statements.take_back_for_resending(
            execution_id,
            sub_step_ids,
            task_id,
            suffix,
            stamp=now(),
            max_attempts=settings.NODE_MAX_ATTEMPTS,
        )
    return nodes_send(execution_id, node_messages_apart(ids, suffix))


def node_messages_apart(
    sub_step_ids: Sequence[str], queue_suffix: str
) -> list[tuple[str, list[str]]]:
    """A message of its own for each node."""
    return [(f"{sub_step_id}:{queue_suffix}", [sub_step_id]) for sub_step_id in sub_step_ids]


def nodes_dispatch_after_response(execution_id: str, sub_step_ids: Sequence[str]) -> None:
    """Hand committed, ready nodes of the execution to the queue once the current request's
    response has been sent (config/after_response.py).

    They are committed as ready and undispatched, so if the process dies before this runs the
    dispatcher sends them (recovery.executions_dispatch); if both send, claiming keeps it to
    one run. A failure leaves them so as well."""
    ids = list(sub_step_ids)
    if ids:
        after_response.defer(_hand_over_job(execution_id, ids))


def _hand_over_job(execution_id: str, ids: list[str]) -> Callable[[], None]:
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
            nodes_hand_over(execution_id=execution_id, sub_step_ids=unsent, stamp=now())

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
    return Dispatched(
        queued=nodes_hand_over(execution_id=execution.id, sub_step_ids=ready, stamp=stamp)
    )
