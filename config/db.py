"""Database helpers for the hot paths: short write transactions that many threads of one
process run at once, and timestamps formatted by the database for large lists. (Claims, the
one statement the ORM cannot express, are in config.claims.)

SQLite lets one writer in at a time. A writer that finds the database locked waits in SQLite's
busy handler, which sleeps in growing steps (1, 2, 5, 10 ... 100 ms) and so often sleeps long
after the lock was freed; with twenty worker threads finishing nodes together those sleeps were
most of the wall time. `write_transaction()` makes writers queue instead:
- the threads of one process on a lock (`SQLITE_WRITERS`), so each wakes the moment the
  previous writer commits;
- the processes (web, workers, beat) on an advisory lock of a file beside the database
  (`<database>-writers`, `InterProcessLock`), which a waiting process asks for every 0.1 to
  0.5 ms. Two worker processes finishing nodes at the same time otherwise met in the busy
  handler, and one of them slept for up to tens of milliseconds each time.
Writers that do not use it (an admin save) still meet SQLite's own locking, as before.

Both locks are taken only for an outermost transaction (never while this thread already holds
SQLite's write lock) and released as soon as the transaction commits or rolls back, so they can
neither deadlock with writers that do not use them nor outlive their block. A process that dies
holding the file's lock loses it with its file descriptors. Other databases get a plain
`transaction.atomic()`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import (
    DEFAULT_DB_ALIAS,
    NotSupportedError,
    OperationalError,
    transaction,
)
from django.db.models import CharField, Func

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

# PostgreSQL's codes for a transaction it ended so that others could go on: a deadlock, a
# serialization failure. Running it again is the remedy.
TRANSIENT_CONFLICT_CODES = frozenset({"40P01", "40001"})


def is_transient_conflict(error: BaseException) -> bool:
    """Whether a database error (as Django raises it) means the transaction lost a conflict
    with another one and may simply be run again (the driver's error carries the SQLSTATE)."""
    return getattr(error.__cause__, "sqlstate", None) in TRANSIENT_CONFLICT_CODES


# One writer at a time per process on SQLite (see write_transaction); public so that tests can
# see whether it is held.
SQLITE_WRITERS = threading.Lock()


class InterProcessLock:
    """An exclusive advisory lock (flock) on a file, shared by every process that opens the same
    path. `acquire(timeout)` asks again every 0.1 ms at first, then every 0.5 ms at most, until
    it gets the lock or the time is up: the writers queuing on it hold it for about 1 to 5 ms.

    Threads of one process share it (queue them on a lock of their own first). A forked child
    opens the file again, since a descriptor inherited from its parent would share the parent's
    lock. If the file cannot be opened (a read-only folder), the lock does nothing: SQLite's
    own locking still keeps writers apart."""

    FIRST_POLL_SECONDS = 0.0001
    LONGEST_POLL_SECONDS = 0.0005

    def __init__(self, path: str) -> None:
        self.path = path
        self._opened: tuple[int, int | None] | None = None  # (process id, descriptor)
        self._opening = threading.Lock()

    def _descriptor(self) -> int | None:
        opened = self._opened
        if opened is None or opened[0] != os.getpid():
            with self._opening:
                opened = self._opened
                if opened is None or opened[0] != os.getpid():
                    opened = (os.getpid(), self._open())
                    self._opened = opened
        return opened[1]

    def _open(self) -> int | None:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            logger.warning("writers of %s do not queue across processes: %s", self.path, error)
            return None

    def acquire(self, timeout: float) -> bool:
        """Take the lock; False if another process still holds it after `timeout` seconds."""
        descriptor = self._descriptor()
        if descriptor is None:
            return True
        deadline = time.monotonic() + timeout
        pause = self.FIRST_POLL_SECONDS
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                time.sleep(min(pause, left))
                pause = min(pause * 2, self.LONGEST_POLL_SECONDS)

    def release(self) -> None:
        descriptor = self._descriptor()
        if descriptor is not None:
            fcntl.flock(descriptor, fcntl.LOCK_UN)


WRITERS_FILE_SUFFIX = "-writers"
_database_writers: dict[str, InterProcessLock] = {}


def database_writers(connection) -> InterProcessLock | None:
    """The lock the processes writing this SQLite database queue on (a file beside it, see the
    module docstring); None for a database in memory, which one process has to itself."""
    if connection.is_in_memory_db():
        return None
    path = f"{connection.settings_dict['NAME']}{WRITERS_FILE_SUFFIX}"
    writers = _database_writers.get(path)
    if writers is None:
        writers = _database_writers.setdefault(path, InterProcessLock(path))
    return writers


def _busy_timeout(connection) -> float:
    return float(connection.settings_dict.get("OPTIONS", {}).get("timeout", 5))


@contextmanager
def write_transaction(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """`transaction.atomic()` whose SQLite writers queue, in this process and across processes
    (see the module docstring).

    Raises OperationalError("database is locked") after SQLite's busy timeout, as SQLite would.
    """
    connection = transaction.get_connection(using)
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        with transaction.atomic(using=using):
            yield
        return
    timeout = _busy_timeout(connection)
    deadline = time.monotonic() + timeout
    if not SQLITE_WRITERS.acquire(timeout=timeout):
        raise OperationalError("database is locked")
    other_processes: InterProcessLock | None = None
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            if other_processes is not None:
                other_processes.release()
            SQLITE_WRITERS.release()

    try:
        writers = database_writers(connection)
        if writers is not None:
            if not writers.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise OperationalError("database is locked")
            other_processes = writers
        with transaction.atomic(using=using):
            # First of the commit hooks: the next writer goes in while this thread publishes
            # events and enqueues tasks registered by the block.
            transaction.on_commit(release, using=using)
            yield
    finally:
        release()


class IsoTimestampText(Func):
    """A datetime column as the API's text (`2026-11-23T19:45:17.123Z`, see
    `config.api.formatting.iso`), formatted by the database.

    For hot list endpoints: parsing hundreds of timestamps into aware datetimes and formatting
    them again was a large part of their cost. Milliseconds are truncated, as `iso()` does.
    """

    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC; the fraction is absent at .000000.
        column, params = compiler.compile(self.source_expressions[0])
        sql = (
            f"(substr({column}, 1, 10) || 'T' || substr({column}, 12, 8) || '.' || "
            f"substr({column} || '.000', 21, 3) || 'Z')"
        )
        return sql, params * 4

    def as_postgresql(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.source_expressions[0])
        sql = f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
        return sql, params

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> Any:
        raise NotSupportedError(f"IsoTimestampText has no SQL for {connection.vendor}")
