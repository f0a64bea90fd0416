"""Live events of DAG executions: the one way to emit them.

The executor calls `emit_execution_event` at each state change, ideally inside the transaction
that makes the change, so the event is stored (and published) only if the change commits.
Tools report progress through `tool_progress_callback`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from config.live_events import EventLayout, EventStore
from dags.models import DagExecution, ExecutionEvent
from dags.selectors import execution_not_found

logger = logging.getLogger(__name__)

EXECUTION_STARTED = "execution.started"
EXECUTION_RESUMED = "execution.resumed"
EXECUTION_UPDATED = "execution.updated"
EXECUTION_COMPLETED = "execution.completed"
EXECUTION_FAILED = "execution.failed"
EXECUTION_SUSPENDED = "execution.suspended"
EXECUTION_CANCELLED = "execution.cancelled"
SUBSTEP_STARTED = "substep.started"
SUBSTEP_COMPLETED = "substep.completed"
SUBSTEP_FAILED = "substep.failed"
TOOL_PROGRESS = "tool.progress"
TOOL_COMPLETED = "tool.completed"

_SUBSTEP = ("subStepId", "taskId")
_TOOL = ("toolName", "message", "subStepId")

# Each type's own keys and where they sit around `timestamp`, as clients expect them.
EXECUTION_EVENT_LAYOUTS: dict[str, EventLayout] = {
    EXECUTION_STARTED: EventLayout(trailing=("totalTasks", "originalRequest")),
    EXECUTION_RESUMED: EventLayout(trailing=("totalTasks",)),
    EXECUTION_UPDATED: EventLayout(
        trailing=("status", "completedTasks", "failedTasks", "waitingTasks")
    ),
    EXECUTION_COMPLETED: EventLayout(
        trailing=("status", "completedTasks", "failedTasks", "durationMs", "finalResult")
    ),
    EXECUTION_FAILED: EventLayout(trailing=("error", "completedTasks", "failedTasks")),
    EXECUTION_SUSPENDED: EventLayout(trailing=("reason",)),
    EXECUTION_CANCELLED: EventLayout(trailing=("reason",)),
    SUBSTEP_STARTED: EventLayout(leading=_SUBSTEP, trailing=("description",)),
    SUBSTEP_COMPLETED: EventLayout(leading=_SUBSTEP, trailing=("durationMs", "result")),
    SUBSTEP_FAILED: EventLayout(leading=_SUBSTEP, trailing=("error",)),
    TOOL_PROGRESS: EventLayout(leading=_TOOL),
    TOOL_COMPLETED: EventLayout(leading=_TOOL),
}

# Events after which the execution stops running (for displays such as `dags.watch`).
EXECUTION_TERMINAL_EVENTS = frozenset(
    {EXECUTION_COMPLETED, EXECUTION_FAILED, EXECUTION_SUSPENDED, EXECUTION_CANCELLED}
)
# Events and statuses after which nothing more can happen: a stream follows a suspended,
# failed or cancelled execution on, since a resume (from anywhere) continues it.
EXECUTION_FINAL_EVENTS = frozenset({EXECUTION_COMPLETED})
EXECUTION_FINAL_STATUSES = frozenset({DagExecution.Status.COMPLETED, DagExecution.Status.PARTIAL})


def _snapshot(execution: DagExecution) -> dict[str, Any]:
    return {
        "status": execution.status,
        "completedTasks": execution.completed_tasks,
        "failedTasks": execution.failed_tasks,
        "waitingTasks": execution.waiting_tasks,
    }


EXECUTION_EVENTS = EventStore(
    name="dag-exec-events",
    subject_model=DagExecution,
    event_model=ExecutionEvent,
    subject_field="execution",
    subject_key="executionId",
    layouts=EXECUTION_EVENT_LAYOUTS,
    terminal_types=EXECUTION_FINAL_EVENTS,
    final_statuses=EXECUTION_FINAL_STATUSES,
    snapshot_type=EXECUTION_UPDATED,
    snapshot_fields=_snapshot,
    not_found_message=lambda execution_id: execution_not_found(execution_id).message,
    snapshot_columns=("completed_tasks", "failed_tasks", "waiting_tasks"),
)


def task_number(task_id: str | None) -> int | None:
    """The events' `taskId`: the task id read as an integer ("002" -> 2), else None."""
    try:
        return int(str(task_id).strip())
    except (TypeError, ValueError):
        return None


def _with_task_number(type: str, payload: dict | None) -> dict:
    data = dict(payload or {})
    if type in (SUBSTEP_STARTED, SUBSTEP_COMPLETED, SUBSTEP_FAILED) and "taskId" not in data:
        data["taskId"] = task_number(data.get("subStepId"))
    return data


def emit_execution_event(
    *, execution_id: str, type: str, payload: dict | None = None
) -> ExecutionEvent:
    """Store an execution event with the next sequence number and publish it on commit.

    `payload` holds the type's own camelCase keys (see EXECUTION_EVENT_LAYOUTS); `type`,
    `executionId` and `timestamp` are filled in. For sub-step and tool events `subStepId` is the
    task id (e.g. "001"); `taskId` defaults to its number. Raises ValueError for an unknown
    type and config.errors.NotFound for an unknown execution.
    """
    return EXECUTION_EVENTS.emit(
        subject_id=execution_id, event_type=type, payload=_with_task_number(type, payload)
    )


def emit_execution_events(
    *, execution_id: str, events: Sequence[tuple[str, dict | None]], last_seq: int | None = None
) -> list[ExecutionEvent]:
    """`emit_execution_event` for several events in order, stored with one INSERT. With
    `last_seq`, the caller's own update of the execution took their sequence numbers (see
    EventStore.emit_many)."""
    return EXECUTION_EVENTS.emit_many(
        subject_id=execution_id,
        events=[(type, _with_task_number(type, payload)) for type, payload in events],
        last_seq=last_seq,
    )


def tool_progress_callback(execution_id: str, task_id: str, tool_name: str) -> Callable[..., None]:
    """A tool's progress reporter for one sub-step: `report(message, *, completed=False)` emits
    `tool.progress` (or `tool.completed`). Reporting never fails the tool: errors are logged."""

    def report(message: str, *, completed: bool = False) -> None:
        try:
            emit_execution_event(
                execution_id=execution_id,
                type=TOOL_COMPLETED if completed else TOOL_PROGRESS,
                payload={"toolName": tool_name, "message": str(message), "subStepId": task_id},
            )
        except Exception:
            logger.warning(
                "could not record progress of %s in %s/%s",
                tool_name,
                execution_id,
                task_id,
                exc_info=True,
            )

    return report
