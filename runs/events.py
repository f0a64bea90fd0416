"""Live events of goal runs, stored and streamed like execution events (see dags/events.py).

The run loop calls `emit_run_event` when a run starts, after each step and when it ends.
"""

from __future__ import annotations

from typing import Any

from config.live_events import EventLayout, EventStore
from runs.models import Run, RunEvent

RUN_STARTED = "run.started"
RUN_STEP = "run.step"
RUN_COMPLETED = "run.completed"
RUN_FAILED = "run.failed"
# Sent only as the snapshot that opens a stream.
RUN_UPDATED = "run.updated"

RUN_EVENT_LAYOUTS: dict[str, EventLayout] = {
    RUN_STARTED: EventLayout(trailing=("goalId", "stepBudget")),
    RUN_STEP: EventLayout(
        trailing=(
            "stepNo",
            "thought",
            "toolName",
            "toolInput",
            "observation",
            "durationMs",
            "error",
        )
    ),
    RUN_COMPLETED: EventLayout(trailing=("status", "stepsExecuted", "summary")),
    RUN_FAILED: EventLayout(trailing=("error", "stepsExecuted")),
    RUN_UPDATED: EventLayout(trailing=("status", "stepsExecuted", "stepBudget")),
}
RUN_TERMINAL_EVENTS = frozenset({RUN_COMPLETED, RUN_FAILED})
EMITTABLE_RUN_EVENTS = frozenset({RUN_STARTED, RUN_STEP, RUN_COMPLETED, RUN_FAILED})


def _snapshot(run: Run) -> dict[str, Any]:
    return {
        "status": run.status,
        "stepsExecuted": run.steps_executed,
        "stepBudget": run.step_budget,
    }


RUN_EVENTS = EventStore(
    name="run-events",
    subject_model=Run,
    event_model=RunEvent,
    subject_field="run",
    subject_key="runId",
    layouts=RUN_EVENT_LAYOUTS,
    terminal_types=RUN_TERMINAL_EVENTS,
    final_statuses=frozenset({Run.Status.COMPLETED, Run.Status.FAILED}),
    snapshot_type=RUN_UPDATED,
    snapshot_fields=_snapshot,
    not_found_message=lambda run_id: "Run not found",
    snapshot_columns=("steps_executed", "step_budget"),
)


def emit_run_event(*, run_id: str, type: str, payload: dict | None = None) -> RunEvent:
    """Store a run event with the run's next sequence number and publish it on commit.

    Types and their keys (camelCase; `type`, `runId` and `timestamp` are filled in):
    `run.started` {goalId, stepBudget}; `run.step` {stepNo, thought, toolName, toolInput,
    observation, durationMs, error}; `run.completed` {status, stepsExecuted, summary};
    `run.failed` {error, stepsExecuted}. Extra keys are kept after these.
    Raises ValueError for an unknown type and config.errors.NotFound for an unknown run.
    """
    if type not in EMITTABLE_RUN_EVENTS:
        raise ValueError(f"unknown run event type {type!r}")
    return RUN_EVENTS.emit(subject_id=run_id, event_type=type, payload=payload)
