"""Database helpers for the hot paths: short write transactions that many threads of one
process run at once, and timestamps formatted by the database for large lists. (Claims, the
one statement the ORM cannot express, are in config.claims.)

SQLite lets one writer in at a time. A writer that finds the database locked waits in SQLite's
busy handler, which sleeps in growing steps (1, 2, 5, 10 ... 100 ms) and so often sleeps long
after the lock was freed; with twenty worker threads finishing nodes together those sleeps were
most of the wall time. `write_transaction()` makes the threads of one process queue on a lock
instead, so each wakes the moment the previous writer commits. Other processes still meet
SQLite's own locking.

The lock is taken only for an outermost transaction (never while this thread already holds
SQLite's write lock) and released as soon as the transaction commits or rolls back, so it can
neither deadlock with writers that do not use it nor outlive its block. Other databases get a
plain `transaction.atomic()`.
"""

from __future__ import annotations

import threading
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
    if not SQLITE_WRITERS.acquire(timeout=_busy_timeout(connection)):
        raise OperationalError("database is locked")
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            SQLITE_WRITERS.release()

    try:
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
