"""Short write transactions that many threads of one process run at once (DAG nodes claiming
and completing, events being stored).

SQLite lets one writer in at a time. A writer that finds the database locked waits in SQLite's
busy handler, which sleeps in growing steps (1, 2, 5, 10 ... 100 ms) and so often sleeps long
after the lock was freed; with twenty worker threads finishing nodes together those sleeps were
most of the wall time. Here the threads of one process queue on a lock instead and wake the
moment the previous writer commits. Other processes still meet SQLite's own locking.

The lock is taken only for an outermost transaction (never while this thread already holds
SQLite's write lock) and released as soon as the transaction commits or rolls back, so it can
neither deadlock with writers that do not use it nor outlive its block. Other databases get a
plain `transaction.atomic()`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, OperationalError, transaction

_sqlite_writers = threading.Lock()


def _busy_timeout(connection) -> float:
    return float(connection.settings_dict.get("OPTIONS", {}).get("timeout", 5))


@contextmanager
def write_transaction(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """`transaction.atomic()` whose SQLite writers queue in-process (see the module docstring).

    Raises OperationalError("database is locked") after SQLite's busy timeout, as SQLite would.
    """
    connection = transaction.get_connection(using)
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        with transaction.atomic(using=using):
            yield
        return
    if not _sqlite_writers.acquire(timeout=_busy_timeout(connection)):
        raise OperationalError("database is locked")
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            _sqlite_writers.release()

    try:
        with transaction.atomic(using=using):
            # First of the commit hooks: the next writer goes in while this thread publishes
            # events and enqueues tasks registered by the block.
            transaction.on_commit(release, using=using)
            yield
    finally:
        release()
