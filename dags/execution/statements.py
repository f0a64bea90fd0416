"""The statements every DAG node runs, written in SQL.

Claiming a node, storing its events, recording its result and finding its successors take
about fifteen statements per node. Built by the ORM, each cost 200-550 us of CPU to compile
(measured: the conditional claim 540 us, the same statement in SQL 20 us), which made the ORM
most of a node's overhead and, under one GIL, what kept twenty parallel nodes from starting
together. The SQL here is plain and the same for SQLite and PostgreSQL; values are adapted by
the model fields (`config.db.update_row`) and rows are converted by the fields' own converters
(`config.db.read_instances`), exactly as ORM reads are. Everything else stays with the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection

from config.db import read_instances
from dags.models import SYNTHESIS_TASK_ID, DagExecution, SubStep

Status = DagExecution.Status
NodeStatus = SubStep.Status

# The execution columns the node lifecycle reads and changes (not the large plan and results).
_COUNTER_FIELDS = (
    "id",
    "status",
    "total_tasks",
    "completed_tasks",
    "failed_tasks",
    "total_usage",
    "total_cost_usd",
    "started_at",
)


def _timestamp(value: datetime | None):
    return connection.ops.adapt_datetimefield_value(value)


def _placeholders(values: Sequence) -> str:
    return ", ".join(["%s"] * len(values))


def claim(
    sub_step_id: str, *, stamp: datetime, lease_until: datetime, max_attempts: int
) -> SubStep | None:
    """Take a node that is pending, or running with a lapsed lease, of a running execution.

    One conditional UPDATE ... RETURNING (SQLite 3.35+, PostgreSQL): a duplicate delivery or a
    second worker finds nothing to take.
    """
    when = _timestamp(stamp)
    rows = read_instances(
        SubStep,
        "UPDATE sub_steps SET status = %s, started_at = %s, completed_at = NULL, "
        "lease_expires_at = %s, attempts = attempts + 1, updated_at = %s "
        "WHERE id = %s AND (status = %s OR (status = %s AND lease_expires_at < %s "
        "AND attempts < %s)) AND EXISTS (SELECT 1 FROM dag_executions "
        "WHERE dag_executions.id = sub_steps.execution_id AND dag_executions.status = %s) "
        "RETURNING {columns}",
        [
            NodeStatus.RUNNING.value,
            when,
            _timestamp(lease_until),
            when,
            sub_step_id,
            NodeStatus.PENDING.value,
            NodeStatus.RUNNING.value,
            when,
            max_attempts,
            Status.RUNNING.value,
        ],
    )
    return rows[0] if rows else None


def lock_execution(execution_id: str) -> DagExecution:
    """The execution's status and counters, its row locked until commit (DoesNotExist if gone).

    Only those columns are read; the others load on access, as with `QuerySet.only()`.
    """
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    rows = read_instances(
        DagExecution,
        "SELECT {columns} FROM dag_executions WHERE id = %s" + lock,
        [execution_id],
        fields=_COUNTER_FIELDS,
    )
    if not rows:
        raise DagExecution.DoesNotExist(f"execution {execution_id} does not exist")
    return rows[0]


def execution_plan(execution_id: str) -> DagExecution:
    """The execution's plan context and task count (what node prompts are built from)."""
    rows = read_instances(
        DagExecution,
        "SELECT {columns} FROM dag_executions WHERE id = %s",
        [execution_id],
        fields=("id", "plan_context", "total_tasks"),
    )
    if not rows:
        raise DagExecution.DoesNotExist(f"execution {execution_id} does not exist")
    return rows[0]


def completed_results(execution_id: str, task_ids: Sequence[str] | None) -> list[tuple[str, Any]]:
    """(task id, stored result) of the completed tasks, all or only those named, in task order."""
    if task_ids is not None and not task_ids:
        return []
    only = "" if task_ids is None else f" AND task_id IN ({_placeholders(task_ids)})"
    rows = read_instances(
        SubStep,
        "SELECT {columns} FROM sub_steps WHERE execution_id = %s AND status = %s "
        f"AND task_id <> %s{only} ORDER BY task_id",
        [execution_id, NodeStatus.COMPLETED.value, SYNTHESIS_TASK_ID, *(task_ids or [])],
        fields=("task_id", "result"),
    )
    return [(row.task_id, row.result) for row in rows]


def unblock(execution_id: str, task_ids: Sequence[str]) -> None:
    """One dependency fewer for each of these tasks (they waited on a task that completed)."""
    if not task_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sub_steps SET remaining_dependencies = remaining_dependencies - 1 "
            f"WHERE execution_id = %s AND task_id IN ({_placeholders(task_ids)}) "
            "AND remaining_dependencies > 0",
            [execution_id, *task_ids],
        )


def ready_ids(execution_id: str, limit: int) -> list[str]:
    """Undispatched pending tasks whose dependencies are all done, in task order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM sub_steps WHERE execution_id = %s AND status = %s "
            "AND dispatched_at IS NULL AND remaining_dependencies = 0 AND task_id <> %s "
            "ORDER BY task_id LIMIT %s",
            [execution_id, NodeStatus.PENDING.value, SYNTHESIS_TASK_ID, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def in_flight_count(execution_id: str) -> int:
    """Nodes running or handed to the queue and not yet started."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM sub_steps WHERE execution_id = %s AND (status = %s "
            "OR (status = %s AND dispatched_at IS NOT NULL))",
            [execution_id, NodeStatus.RUNNING.value, NodeStatus.PENDING.value],
        )
        return cursor.fetchone()[0]


def mark_dispatched(ids: Sequence[str], stamp: datetime, queue_suffix: str | None) -> None:
    """Mark nodes as handed over: to the queue as task `<id>:<suffix>`, or with no suffix to a
    worker that runs them at once."""
    if not ids:
        return
    queue_task_id = "NULL" if queue_suffix is None else "id || ':' || %s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE sub_steps SET dispatched_at = %s, queue_task_id = {queue_task_id} "
            f"WHERE id IN ({_placeholders(ids)})",
            [_timestamp(stamp), *([] if queue_suffix is None else [queue_suffix]), *ids],
        )


def mark_undispatched(ids: Sequence[str], queue_suffix: str) -> int:
    """Take back nodes whose message `<id>:<suffix>` could not be sent: they are ready and
    undispatched again, for the dispatcher to send. A node a worker already took is left alone."""
    if not ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sub_steps SET dispatched_at = NULL, queue_task_id = NULL "
            f"WHERE id IN ({_placeholders(ids)}) AND status = %s "
            "AND queue_task_id = id || ':' || %s",
            [*ids, NodeStatus.PENDING.value, queue_suffix],
        )
        return cursor.rowcount
