"""`config.db.write_transaction`: SQLite writers of one process queue on a lock that is always
released, never taken inside an open transaction, and freed before the commit hooks run."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, transaction

from config import db
from dags.models import DagExecution
from tests.factories import DagExecutionFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the lock is for SQLite only"),
]


def in_thread(target) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_writers_of_one_process_take_turns_and_all_commit():
    execution = DagExecutionFactory(status="running", completed_tasks=0)
    inside = threading.Event()
    leave = threading.Event()
    order: list[str] = []

    def first() -> None:
        with db.write_transaction():
            DagExecution.objects.filter(pk=execution.pk).update(completed_tasks=1)
            order.append("first in")
            inside.set()
            assert leave.wait(10)
            order.append("first out")

    def second() -> None:
        assert inside.wait(10)
        with db.write_transaction():
            order.append("second in")
            current = DagExecution.objects.get(pk=execution.pk).completed_tasks
            DagExecution.objects.filter(pk=execution.pk).update(completed_tasks=current + 1)

    threads = [in_thread(first), in_thread(second)]
    assert inside.wait(10)
    assert db.SQLITE_WRITERS.locked()
    leave.set()
    for thread in threads:
        thread.join(10)
    assert order == ["first in", "first out", "second in"]
    assert DagExecution.objects.get(pk=execution.pk).completed_tasks == 2
    assert not db.SQLITE_WRITERS.locked()


def test_the_lock_is_released_when_the_block_fails():
    with pytest.raises(RuntimeError), db.write_transaction():
        DagExecutionFactory()
        raise RuntimeError("boom")
    assert not db.SQLITE_WRITERS.locked()
    assert DagExecution.objects.count() == 0  # rolled back


def test_commit_hooks_run_after_the_lock_is_released():
    seen: list[bool] = []
    with db.write_transaction():
        DagExecutionFactory()
        transaction.on_commit(lambda: seen.append(db.SQLITE_WRITERS.locked()))
    assert seen == [False]


def test_inside_an_open_transaction_the_lock_is_not_taken():
    # This thread already holds SQLite's write lock: waiting on ours could only deadlock.
    with transaction.atomic():
        DagExecutionFactory()
        with db.write_transaction():
            assert not db.SQLITE_WRITERS.locked()
            DagExecutionFactory()
    assert DagExecution.objects.count() == 2


def test_a_writer_waits_no_longer_than_the_busy_timeout(monkeypatch):
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.2)
    assert db.SQLITE_WRITERS.acquire(timeout=1)
    try:
        with pytest.raises(OperationalError, match="database is locked"), db.write_transaction():
            pass
    finally:
        db.SQLITE_WRITERS.release()
