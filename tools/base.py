"""The tool call contract: errors, the per-call context, and cooperative cancellation.

A tool runs on a worker thread started by `tools.services.tool_run`. Every blocking operation a
tool performs (DNS, HTTP, SMTP, file writes) is bounded by the call's `CancelScope`: socket
timeouts never exceed the time left, in-flight sockets are registered and shut down when the
scope is cancelled, and loops check the scope between steps. So a timeout stops the work itself,
not just the caller's wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class ToolError(Exception):
    """A tool call failed; `message` is safe to show to users and to the model."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ToolNotFound(ToolError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Tool not found: {name}")
        self.name = name


class ToolInputError(ToolError):
    """The parameters do not match the tool's schema; `issues` lists each problem."""

    def __init__(self, tool: str, issues: list[dict[str, Any]]) -> None:
        self.tool = tool
        self.issues = issues
        listed = "; ".join(_describe_issue(issue) for issue in issues) or "invalid parameters"
        super().__init__(f"Invalid parameters for tool {tool}: {listed}")


class ToolTimeout(ToolError):
    """The call ran out of time; its work was cancelled."""


class ToolCancelled(ToolError):
    """The call was cancelled by its caller before it finished."""


def _describe_issue(issue: dict[str, Any]) -> str:
    path = ".".join(str(part) for part in issue.get("path") or [])
    return f"{path}: {issue['message']}" if path else str(issue["message"])


class ProgressCallback(Protocol):
    def __call__(self, message: str, *, completed: bool = False) -> None: ...


class CancelScope:
    """A deadline plus an explicit cancel switch shared by everything one tool call does.

    `cancel()` may be called from any thread: it sets the flag and runs the registered abort
    callbacks (which shut down sockets), so blocked reads and writes return at once.
    """

    def __init__(self, timeout: float | None = None) -> None:
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._aborts: dict[int, Callable[[], None]] = {}
        self._next_key = 0
        self.reason = ""

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self, reason: str = "cancelled") -> None:
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            aborts = list(self._aborts.values())
        for abort in aborts:
            try:
                abort()
            except Exception:  # an abort is best effort; the flag is already set
                logger.debug("abort callback failed", exc_info=True)

    def remaining(self, cap: float | None = None) -> float:
        """Seconds left before the deadline (never below a small positive floor), capped."""
        left = float("inf") if self.deadline is None else self.deadline - time.monotonic()
        if cap is not None:
            left = min(left, cap)
        return max(left, 0.001)

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def check(self) -> None:
        """Raise when the work should stop (cancelled or past the deadline)."""
        if self._event.is_set():
            raise ToolCancelled(f"The tool call was stopped ({self.reason}).")
        if self.expired():
            raise ToolTimeout("The tool call ran out of time.")

    def sleep(self, seconds: float) -> None:
        """Wait up to `seconds`, returning early (with an error) if cancelled or past deadline."""
        if self._event.wait(min(seconds, self.remaining())):
            self.check()
        self.check()

    @contextmanager
    def on_cancel(self, abort: Callable[[], None]) -> Iterator[None]:
        """Run `abort` if the scope is cancelled while the block executes."""
        with self._lock:
            key = self._next_key
            self._next_key += 1
            self._aborts[key] = abort
            already = self._event.is_set()
        try:
            if already:
                abort()
                self.check()
            yield
        finally:
            with self._lock:
                self._aborts.pop(key, None)


@dataclass
class ToolContext:
    """What a tool call knows about its caller.

    `progress(message, completed=False)` is called with short human messages, e.g. before a
    page is fetched and (with `completed=True`) after; the events issue maps these to
    `tool.progress` / `tool.completed`. `tool_run` always invokes it on the caller's thread.
    """

    progress: ProgressCallback | None = None
    execution_id: str | None = None
    sub_step_id: str | None = None
    run_id: str | None = None
    cancel: CancelScope = field(default_factory=CancelScope)
    # Whether the user this call works for may read or overwrite the existing artifact with
    # this relative name (the file tools and e-mail attachments ask); None: no restriction.
    may_access_artifact: Callable[[str], bool] | None = None

    def artifact_allowed(self, name: str) -> bool:
        return self.may_access_artifact is None or self.may_access_artifact(name)

    def report(self, message: str, *, completed: bool = False) -> None:
        if self.progress is None:
            return
        try:
            self.progress(message, completed=completed)
        except Exception:  # a broken listener must not fail the tool
            logger.warning("tool progress callback failed", exc_info=True)


# --- what callers need to know about a tool -----------------------------------------------------
class References(Protocol):
    """How the caller's references to earlier results read and fill a value (a DAG node's
    `<Result from Task N>`); handed to `DependencyInput.resolve`."""

    def present(self, value: Any) -> bool: ...

    def substitute(self, value: Any) -> Any: ...


@dataclass(frozen=True)
class DependencyInput:
    """A parameter a tool node takes from the results of the tasks it depends on when the plan
    does not give it (fetchURLs gathers URLs, writeFile writes the text)."""

    param: str
    # The plan's issue when the parameter is neither given nor fed by a dependency.
    missing_message: str
    # Whether the plan's own params give it.
    given: Callable[[Mapping[str, Any]], bool]
    # (params, results of the dependencies in order, references) -> the tool's input.
    resolve: Callable[[dict[str, Any], list[Any], References], dict[str, Any]]


# What a finished call leaves as a run output: (kind, text) with kind "file", "webhook" or
# "email", or None; called with the call's result (a dict) and its arguments.
RunOutput = Callable[[dict[str, Any], Mapping[str, Any]], tuple[str, str] | None]
