"""SQLite with writers queued in-process instead of by SQLite's busy handler.

SQLite lets one writer in at a time; the others wait in its busy handler, which sleeps in
steps of up to tens of milliseconds. With many worker threads writing small transactions
(DAG nodes claiming and completing), those sleeps dominated. Threads of one process now queue
on a lock around each write transaction (`BEGIN IMMEDIATE` ... commit/rollback), and wake the
moment the previous writer is done; other processes still meet SQLite's own locking.
"""

from __future__ import annotations

import threading

from django.db import OperationalError
from django.db.backends.sqlite3 import base

_write_lock = threading.Lock()


class DatabaseWrapper(base.DatabaseWrapper):
    _holds_write_lock = False

    def _start_transaction_under_autocommit(self) -> None:
        if not _write_lock.acquire(timeout=self.write_lock_timeout()):
            raise OperationalError("database is locked")
        self._holds_write_lock = True
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_write_lock()
            raise

    def write_lock_timeout(self) -> float:
        """Wait as long as SQLite itself would (its busy timeout), then fail the same way."""
        return float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))

    def _release_write_lock(self) -> None:
        if self._holds_write_lock:
            self._holds_write_lock = False
            _write_lock.release()

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._release_write_lock()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._release_write_lock()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._release_write_lock()
