"""Waiting in tests for something another thread or process does: poll with a deadline, never
a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    predicate: Callable[[], bool],
    timeout: float = 40.0,
    message: str = "condition",
    interval: float = 0.02,
) -> None:
    """Return once `predicate()` is true; fail the test if it is still false after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"{message} not met before the deadline")
