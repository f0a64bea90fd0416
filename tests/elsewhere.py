"""Running a read on another thread, with its own database connection and outside the test's
transaction, as another process would: what caches serve must hold up from there."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connection
from django.test.utils import CaptureQueriesContext

T = TypeVar("T")


def run_elsewhere(read: Callable[[], T]) -> tuple[T, list[dict[str, Any]]]:
    """What `read` returns on another thread, and the statements it ran there."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            with CaptureQueriesContext(connection) as queries:
                result["value"] = read()
            result["statements"] = queries.captured_queries
        except BaseException as error:  # re-raised on the test's thread
            result["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the read on another thread did not finish in 30 s"
    if "error" in result:
        raise result["error"]
    return result["value"], result["statements"]
