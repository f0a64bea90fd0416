"""The statements the node lifecycle runs, in one place so that their number per node stays
small and visible (a test counts them).

Claims (`claim_node`, `execution_progress`) are conditional `UPDATE … RETURNING` statements
(config.claims); everything else is a plain ORM query.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Concat

from agents.llm.usage import Spend
from config.claims import claim, claim_one
from dags.models import SYNTHESIS_TASK_ID, DagExecution, SubStep

Status = DagExecution.Status
NodeStatus = SubStep.Status

# What the lifecycle reads back when it records a node's progress on its execution.
PROGRESS_FIELDS = (
    "id",
    "status",
    "started_at",
    "total_tasks",
    "completed_tasks",
    "failed_tasks",
    "last_event_seq",
)
# What running a node reads of it (not its result, usage or error from an earlier attempt).
NODE_FIELDS = (
    "id",
    "execution",
    "task_id",
    "description",
    "thought",
    "action_type",
    "tool_or_prompt_name",
    "tool_or_prompt_params",
    "dependencies",
    "dependants",
    "status",
    "started_at",
    "attempts",
)


def claim_node(
    lookup: Mapping[str, str],
    *,
    stamp: datetime,
    lease_until: datetime,
    max_attempts: int,
    kept: bool = False,
    last_dependency: bool = False,
) -> SubStep | None:
    """Take the node named by `lookup` (`pk`, or `execution_id` and `task_id`) for this worker,
    if the node is free. Whether its execution is running is the caller's to know, from the
    execution's row its transaction holds (`execution_progress`), before or after the claim.

    Free means pending, or running with a lapsed lease (its worker died) and attempts left. A
    node `kept` by the worker that made it ready (not sent through the queue) must be pending
    and undispatched, and is marked dispatched by the same statement; with `last_dependency`
    the caller's node was its last unfinished dependency, which the claim consumes (so the
    caller need not unblock it first). A duplicate delivery
    or a second worker gets None. Only the fields that running the node needs are read back.
    """
    # (A node waiting on a dependency was never dispatched, and a pending node has no
    # completion time or queue task id: resume, hand-back and a failed send clear them.)
    conditions: dict[str, Any] = dict(lookup)
    changes = _running(stamp, lease_until)
    if kept:
        conditions.update(status=NodeStatus.PENDING, remaining_dependencies=int(last_dependency))
        changes["dispatched_at"] = stamp
        if last_dependency:
            changes["remaining_dependencies"] = 0
        else:
            conditions["dispatched_at__isnull"] = True
        nodes = SubStep.objects.filter(**conditions)
    else:
        nodes = SubStep.objects.filter(_free(stamp, max_attempts), **conditions)
    return claim_one(nodes, changes=changes, returning=NODE_FIELDS)


def claim_nodes(
    execution_id: str,
    sub_step_ids: Sequence[str],
    *,
    stamp: datetime,
    lease_until: datetime,
    max_attempts: int,
) -> list[SubStep]:
    """Take those of the execution's nodes named that are free (as `claim_node` does for one),
    in one statement; returns them in task order. Nodes of another execution are not taken."""
    nodes = SubStep.objects.filter(
        _free(stamp, max_attempts), pk__in=list(sub_step_ids), execution_id=execution_id
    )
    taken = claim(nodes, changes=_running(stamp, lease_until), returning=NODE_FIELDS)
    return sorted(taken, key=lambda node: node.task_id)


def _free(stamp: datetime, max_attempts: int) -> Q:
    """Free to take: pending, or running with a lapsed lease (its worker died) and attempts left."""
    return Q(status=NodeStatus.PENDING) | Q(
        status=NodeStatus.RUNNING, lease_expires_at__lt=stamp, attempts__lt=max_attempts
    )


def _running(stamp: datetime, lease_until: datetime) -> dict[str, Any]:
    return {
        "status": NodeStatus.RUNNING,
        "started_at": stamp,
        "lease_expires_at": lease_until,
        "attempts": F("attempts") + 1,
        "updated_at": stamp,
    }


def still_ours(sub_step: SubStep) -> QuerySet[SubStep]:
    """The node, if it is still this worker's: running, and not taken over by another worker
    after its lease lapsed (which counts an attempt)."""
    return SubStep.objects.filter(
        pk=sub_step.pk, status=NodeStatus.RUNNING, attempts=sub_step.attempts
    )


def execution_progress(
    execution_id: str, *, stamp: datetime, events: int, completed: int = 0, failed: int = 0
) -> DagExecution:
    """Count a node's outcome on its execution and take `events` event sequence numbers, in one
    statement that also locks the row until commit: what follows in the transaction (claiming
    a successor, dispatching ready nodes) happens one transaction at a time per execution, and
    sees a status that cannot change before it commits. Returns PROGRESS_FIELDS as they are
    after the change; DoesNotExist if the execution is gone."""
    changes: dict[str, Any] = {"updated_at": stamp}
    if events:
        changes["last_event_seq"] = F("last_event_seq") + events
    if completed:
        changes["completed_tasks"] = F("completed_tasks") + completed
    if failed:
        changes["failed_tasks"] = F("failed_tasks") + failed
    execution = claim_one(
        DagExecution.objects.filter(pk=execution_id), changes=changes, returning=PROGRESS_FIELDS
    )
    if execution is None:
        raise DagExecution.DoesNotExist(f"execution {execution_id} does not exist")
    return execution


def return_event_seqs(execution_id: str, count: int) -> None:
    """Give back sequence numbers taken by `execution_progress` in this transaction and not
    used (the row is still locked by it, so no later number was taken meanwhile)."""
    DagExecution.objects.filter(pk=execution_id).update(last_event_seq=F("last_event_seq") - count)


def execution_spend(execution_id: str) -> Spend:
    """The usage and cost of all the execution's nodes (the synthesis included), summed once
    when the execution stops rather than on every node."""
    spend = Spend()
    for usage, cost in SubStep.objects.filter(execution_id=execution_id).values_list(
        "usage", "cost_usd"
    ):
        spend = spend.plus(usage or None, cost)
    return spend


@dataclass(frozen=True)
class Plan:
    """What node prompts are built from; fixed when the execution is created."""

    context: dict[str, Any]
    total_tasks: int


@functools.lru_cache(maxsize=64)
def execution_plan(execution_id: str) -> Plan:
    """The execution's plan context and task count, read once per process and execution (they
    never change, and every node of the execution needs them). DoesNotExist if it is gone."""
    context, total = (
        DagExecution.objects.filter(pk=execution_id)
        .values_list("plan_context", "total_tasks")
        .get()
    )
    return Plan(context=context or {}, total_tasks=total)


def completed_results(execution_id: str, task_ids: Sequence[str] | None) -> list[tuple[str, Any]]:
    """(task id, stored result) of the completed tasks, all or only those named, in task order."""
    if task_ids is not None and not task_ids:
        return []
    rows = SubStep.objects.filter(execution_id=execution_id, status=NodeStatus.COMPLETED).exclude(
        task_id=SYNTHESIS_TASK_ID
    )
    if task_ids is not None:
        rows = rows.filter(task_id__in=task_ids)
    return list(rows.order_by("task_id").values_list("task_id", "result"))


def unblock(execution_id: str, task_ids: Sequence[str]) -> None:
    """One dependency fewer for each of these tasks (they waited on a task that completed)."""
    if task_ids:
        SubStep.objects.filter(
            execution_id=execution_id, task_id__in=task_ids, remaining_dependencies__gt=0
        ).update(remaining_dependencies=F("remaining_dependencies") - 1)


def unsent_ready_nodes() -> QuerySet[SubStep]:
    """Pending tasks (not the synthesis) whose dependencies are all done and that were never
    handed to the queue: what the launch, the completion and recovery send next."""
    return SubStep.objects.filter(
        status=NodeStatus.PENDING, dispatched_at__isnull=True, remaining_dependencies=0
    ).exclude(task_id=SYNTHESIS_TASK_ID)


def ready_ids(execution_id: str, limit: int) -> list[str]:
    """Undispatched pending tasks whose dependencies are all done, in task order."""
    return list(
        unsent_ready_nodes()
        .filter(execution_id=execution_id)
        .order_by("task_id")
        .values_list("id", flat=True)[:limit]
    )


def in_flight_count(execution_id: str) -> int:
    """Nodes running or handed to the queue and not yet started."""
    return SubStep.objects.filter(
        Q(status=NodeStatus.RUNNING) | Q(status=NodeStatus.PENDING, dispatched_at__isnull=False),
        execution_id=execution_id,
    ).count()


def _lone_message_id(queue_suffix: str) -> Concat:
    """The id of a node's message of its own, `<id>:<suffix>` (dispatch.node_messages_apart)."""
    return Concat(F("id"), Value(f":{queue_suffix}"))


def mark_dispatched(
    messages: Sequence[tuple[str, Sequence[str]]], stamp: datetime, queue_suffix: str
) -> None:
    """Mark nodes as handed to the queue, each with the id of the message that carries it
    (`messages` as `dispatch.node_messages` makes them): one statement for all the one-node
    messages (`<id>:<suffix>`), one more per message of several nodes."""
    single = [ids[0] for _task_id, ids in messages if len(ids) == 1]
    if single:
        SubStep.objects.filter(pk__in=single).update(
            dispatched_at=stamp, queue_task_id=_lone_message_id(queue_suffix)
        )
    for task_id, ids in messages:
        if len(ids) > 1:
            SubStep.objects.filter(pk__in=list(ids)).update(
                dispatched_at=stamp, queue_task_id=task_id
            )


def mark_undispatched(messages: Sequence[tuple[str, Sequence[str]]]) -> int:
    """Take back nodes whose messages could not be sent: they are ready and undispatched
    again, for the dispatcher to send. A node a worker already took is left alone."""
    if not messages:
        return 0
    return SubStep.objects.filter(
        pk__in=[node for _task_id, ids in messages for node in ids],
        status=NodeStatus.PENDING,
        queue_task_id__in=[task_id for task_id, _ids in messages],
    ).update(dispatched_at=None, queue_task_id=None)


def take_back_for_resending(
    execution_id: str,
    sub_step_ids: Sequence[str],
    task_id: str,
    queue_suffix: str,
    *,
    stamp: datetime,
    max_attempts: int,
) -> list[str]:
    """Those of the nodes that are free and still carried by the message `task_id`, now each
    carried by a message of its own (`<id>:<suffix>`); returns their ids. A node that a worker
    took meanwhile (a second delivery of the message) is left alone."""
    taken = claim(
        SubStep.objects.filter(
            _free(stamp, max_attempts),
            pk__in=list(sub_step_ids),
            execution_id=execution_id,
            queue_task_id=task_id,
        ),
        changes={"queue_task_id": _lone_message_id(queue_suffix)},
        returning=("id",),
    )
    return [node.id for node in taken]
