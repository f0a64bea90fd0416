"""Running tools: validate the parameters, run with a deadline that stops the work, return JSON.

`tool_run` is the one entry point for DAG tool tasks, goal-run tool calls and the API. The tool
runs on its own thread so the caller regains control exactly at the deadline; the call's
`CancelScope` then shuts down the tool's sockets and makes every later step fail fast, and
`tool_run` waits (briefly) for the thread to end before raising `ToolTimeout`, so no side effect
happens after the caller was told the call timed out. Progress callbacks run on the caller's
thread.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import threading
import time
from typing import Any

from django.conf import settings
from django.db import connections
from pydantic import ValidationError

from tools.base import CancelScope, ToolContext, ToolError, ToolInputError, ToolTimeout
from tools.registry import Tool, get_tool
from tools.schemas import ToolParams, validation_issues

logger = logging.getLogger(__name__)

# How long a timed-out call waits for its thread to notice the cancellation.
CANCEL_GRACE_SECONDS = 5.0


def tool_input_issues(*, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Problems with `params` for tool `name` as `[{path, message}]`; empty when valid.

    Validation only: nothing runs. Raises ToolNotFound for an unknown tool.
    """
    _parsed, issues = _parse(get_tool(name), params)
    return issues


def tool_run(
    *,
    name: str,
    params: dict[str, Any],
    context: ToolContext | None = None,
    timeout: float | None = None,
) -> Any:
    """Run tool `name` with `params` and return its JSON-serialisable result.

    Raises ToolNotFound, ToolInputError (with `.issues`), ToolTimeout (after `timeout` seconds,
    default TOOL_TIMEOUT_SECONDS; the work is stopped) or ToolError (the tool failed; the
    message is fit for users and models). Cancelling `context.cancel` from another thread
    stops the call too.
    """
    tool = get_tool(name)
    parsed, issues = _parse(tool, params)
    if issues or parsed is None:
        raise ToolInputError(name, issues)
    context = context or ToolContext()
    seconds = float(settings.TOOL_TIMEOUT_SECONDS if timeout is None else timeout)
    if seconds <= 0:
        raise ValueError("timeout must be positive")
    return _run_on_thread(tool, parsed, context, seconds)


def _parse(tool: Tool, params: Any) -> tuple[ToolParams | None, list[dict[str, Any]]]:
    if not isinstance(params, dict):
        return None, [{"path": [], "message": "Parameters must be a JSON object"}]
    try:
        return tool.params_model.model_validate(params), []
    except ValidationError as error:
        return None, validation_issues(error)


def _run_on_thread(tool: Tool, parsed: ToolParams, context: ToolContext, seconds: float) -> Any:
    scope = CancelScope(seconds)
    events: queue.SimpleQueue[tuple[str, Any, Any]] = queue.SimpleQueue()

    def relay_progress(message: str, *, completed: bool = False) -> None:
        events.put(("progress", message, completed))

    call_context = dataclasses.replace(
        context, cancel=scope, progress=relay_progress if context.progress else None
    )

    def work() -> None:
        try:
            result = tool.run(parsed, call_context)
            _check_serialisable(tool.name, result)
            events.put(("done", result, None))
        except BaseException as error:  # handed to the caller's thread
            events.put(("error", error, None))
        finally:
            connections.close_all()

    worker = threading.Thread(target=work, name=f"tool-{tool.name}", daemon=True)
    started = time.monotonic()
    deadline = started + seconds
    with context.cancel.on_cancel(lambda: scope.cancel("cancelled by the caller")):
        worker.start()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                kind, value, extra = events.get(timeout=left)
            except queue.Empty:
                break
            if kind == "progress":
                context.report(value, completed=extra)
            elif kind == "done":
                logger.info("tool %s finished in %.0f ms", tool.name, _ms_since(started))
                return value
            else:
                raise _public_error(tool.name, value, seconds)

    scope.cancel("timed out")
    worker.join(CANCEL_GRACE_SECONDS)
    if worker.is_alive():
        logger.warning("tool %s is still winding down after its timeout", tool.name)
    logger.info("tool %s timed out after %.0f ms", tool.name, _ms_since(started))
    raise ToolTimeout(f"The {tool.name} tool did not finish within {seconds:g} s and was stopped.")


def _public_error(name: str, error: BaseException, seconds: float) -> ToolError:
    if isinstance(error, ToolTimeout):
        return ToolTimeout(f"The {name} tool did not finish within {seconds:g} s and was stopped.")
    if isinstance(error, ToolError):
        return error
    logger.error("tool %s failed unexpectedly", name, exc_info=error)
    return ToolError(f"The {name} tool failed unexpectedly ({type(error).__name__}).")


def _check_serialisable(name: str, result: Any) -> None:
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ToolError(f"The {name} tool returned a result that is not JSON: {error}") from None


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000
