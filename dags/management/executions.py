"""The commands' shared ending: watch an execution and turn how it settled into an exit code."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from rich.console import Console

from config.display import human_duration, usd
from dags.models import DagExecution
from dags.watch import execution_watch


def watch_until_settled(*, execution_id: str, viewer: Any, console: Console) -> None:
    """Watch until the execution settles; a failed, partial, suspended or cancelled one makes
    the command fail (exit 1). Ctrl-C stops watching and leaves the execution running."""
    try:
        execution = execution_watch(execution_id=execution_id, viewer=viewer, console=console)
    except KeyboardInterrupt:
        console.print(
            f"Stopped watching; {execution_id} goes on. Watch again with "
            f"`./scripts/manage watch_execution {execution_id}`."
        )
        return
    summary = (
        f"{execution.id} {execution.status}: {execution.completed_tasks}/"
        f"{execution.total_tasks} task(s) in {human_duration(execution.duration_ms)}, "
        f"cost {usd(execution.total_cost_usd)}"
    )
    if execution.status != DagExecution.Status.COMPLETED:
        reason = execution.suspended_reason or ""
        raise CommandError(summary + (f" ({reason})" if reason else ""))
    console.print(summary)
    if execution.final_result:
        console.print(execution.final_result)
