"""Follow an execution from its stored events, for commands: a live table of its nodes.

The worker does the work; this only reads the event store by sequence number, so it works from
any machine that reaches the database, and stopping it (Ctrl-C) does not touch the execution.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from config.display import human_duration
from dags import events
from dags.models import SYNTHESIS_TASK_ID, DagExecution, ExecutionEvent
from dags.selectors import execution_get, execution_sub_steps

SETTLED = frozenset(
    {
        DagExecution.Status.COMPLETED,
        DagExecution.Status.FAILED,
        DagExecution.Status.PARTIAL,
        DagExecution.Status.SUSPENDED,
        DagExecution.Status.CANCELLED,
    }
)
STATUS_STYLE = {
    "pending": "dim",
    "running": "yellow",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
    "waiting": "cyan",
}


@dataclass
class Node:
    task_id: str
    description: str
    status: str
    duration_ms: int | None = None
    detail: str = ""


@dataclass
class WatchState:
    nodes: dict[str, Node] = field(default_factory=dict)
    status: str = "pending"
    last_seq: int = 0
    by_number: dict[str, Node] = field(default_factory=dict)

    def add(self, node: Node) -> None:
        self.nodes[node.task_id] = node
        number = events.task_number(node.task_id)
        if number is not None:
            self.by_number[str(number)] = node

    def apply(self, event: ExecutionEvent) -> str | None:
        """Update the nodes from one stored event; returns a line worth printing, if any."""
        payload: dict[str, Any] = event.payload or {}
        # Events name a task by its number (1 for "001"); the table by its id.
        task_id = str(payload.get("taskId") or "")
        node = self.nodes.get(task_id) or self.by_number.get(task_id)
        if event.type == events.SUBSTEP_STARTED and node:
            node.status = "running"
        elif event.type == events.SUBSTEP_COMPLETED and node:
            node.status = "completed"
            node.duration_ms = payload.get("durationMs")
        elif event.type == events.SUBSTEP_FAILED and node:
            node.status = "failed"
            node.detail = str(payload.get("error") or "")[:120]
            return f"task {task_id} failed: {node.detail}"
        elif event.type == events.TOOL_PROGRESS and node:
            node.detail = str(payload.get("message") or "")[:120]
        elif event.type in (events.EXECUTION_STARTED, events.EXECUTION_RESUMED):
            self.status = "running"
            return f"{event.type}"
        elif event.type == events.EXECUTION_UPDATED:
            self.status = str(payload.get("status") or self.status)
        elif event.type in events.EXECUTION_TERMINAL_EVENTS:
            self.status = str(payload.get("status") or event.type.split(".", 1)[1])
            reason = payload.get("reason") or payload.get("error") or ""
            return f"{event.type}" + (f": {reason}" if reason else "")
        return None


def _progress_table(state: WatchState, progress: Progress) -> Group:
    table = Table(expand=False, show_edge=False)
    table.add_column("task")
    table.add_column("status")
    table.add_column("took", justify="right")
    table.add_column("description / latest", overflow="ellipsis", max_width=70, no_wrap=True)
    for node in state.nodes.values():
        style = STATUS_STYLE.get(node.status, "")
        table.add_row(
            node.task_id if node.task_id != SYNTHESIS_TASK_ID else "synthesis",
            f"[{style}]{node.status}[/]" if style else node.status,
            human_duration(node.duration_ms),
            node.detail or node.description,
        )
    return Group(progress, table)


def execution_watch(
    *, execution_id: str, viewer: Any, console: Console, poll_seconds: float = 0.5
) -> DagExecution:
    """Show the execution's nodes live until it settles; returns it as it then is.

    KeyboardInterrupt stops the watching only and propagates to the caller.
    """
    execution = execution_get(execution_id=execution_id, viewer=viewer)
    state = WatchState(status=execution.status)
    for row in execution_sub_steps(execution=execution):
        state.add(
            Node(
                row.task_id, row.description or row.tool_or_prompt_name, row.status, row.duration_ms
            )
        )
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    bar = progress.add_task(execution.id, total=len(state.nodes))
    with Live(
        _progress_table(state, progress), console=console, refresh_per_second=4, transient=False
    ) as live:
        while True:
            fresh = list(
                ExecutionEvent.objects.filter(execution_id=execution.id, seq__gt=state.last_seq)
                .order_by("seq")
                .only("seq", "type", "payload")
            )
            for event in fresh:
                state.last_seq = event.seq
                line = state.apply(event)
                if line:
                    live.console.print(f"#{event.seq} {line}")
            done = sum(node.status in ("completed", "failed") for node in state.nodes.values())
            progress.update(bar, completed=done, description=f"{execution.id} {state.status}")
            live.update(_progress_table(state, progress))
            if not fresh:
                execution.refresh_from_db(fields=["status", "last_event_seq"])
                if execution.status in SETTLED and execution.last_event_seq <= state.last_seq:
                    # The synthesis has no task number in its events: the final table
                    # takes every node's stored state.
                    for row in execution_sub_steps(execution=execution):
                        if row.task_id in state.nodes:
                            state.nodes[row.task_id].status = row.status
                            state.nodes[row.task_id].duration_ms = row.duration_ms
                    live.update(_progress_table(state, progress))
                    break
            time.sleep(0 if fresh else poll_seconds)
    execution.refresh_from_db()
    return execution
