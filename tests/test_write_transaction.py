"""`config.db.write_transaction`: SQLite writers of one process queue on a lock, and processes
on a lock file beside the database; both are always released, never taken inside an open
transaction, and freed before the commit hooks run."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
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


HOLD_FILE_LOCK = """
import fcntl, os, sys, time
descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
deadline = time.monotonic() + 10
while True:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        break
    except BlockingIOError:
        if time.monotonic() > deadline:
            print("busy", flush=True)
            sys.exit(1)
        time.sleep(0.001)
print("held", flush=True)
sys.stdin.readline()
"""


class OtherProcess:
    """Another process holding a lock file (as a writer of another process would) until told
    to let go."""

    def __init__(self, path: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD_FILE_LOCK, path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "held"

    def let_go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        assert self.process.wait(10) == 0


def test_processes_take_turns_on_a_lock_file(tmp_path):
    lock = db.InterProcessLock(str(tmp_path / "writers"))
    other = OtherProcess(lock.path)
    assert not lock.acquire(timeout=0.05)
    other.let_go()
    assert lock.acquire(timeout=5)
    lock.release()


def _hold_in_child(lock: db.InterProcessLock, held, leave) -> None:
    assert lock.acquire(timeout=5)
    held.set()
    leave.wait(10)
    lock.release()


def test_a_forked_child_does_not_share_its_parents_lock(tmp_path):
    # The parent opened the file first: a child reusing that descriptor would share its lock,
    # and the parent would think it holds the lock the child took.
    lock = db.InterProcessLock(str(tmp_path / "writers"))
    assert lock.acquire(timeout=1)
    lock.release()
    fork = multiprocessing.get_context("fork")
    held, leave = fork.Event(), fork.Event()
    child = fork.Process(target=_hold_in_child, args=(lock, held, leave))
    child.start()
    try:
        assert held.wait(10)
        assert not lock.acquire(timeout=0.05)
    finally:
        leave.set()
        child.join(10)
    assert child.exitcode == 0
    assert lock.acquire(timeout=5)
    lock.release()


def test_a_writer_waits_for_a_writer_of_another_process(monkeypatch):
    # SQLite itself is not locked here, only the queue's file: a writer that ignored the queue
    # would go straight in.
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.2)
    writers = db.database_writers(connection)
    assert writers is not None
    other = OtherProcess(writers.path)
    try:
        assert held_elsewhere(writers.path)
        with pytest.raises(OperationalError, match="database is locked"), db.write_transaction():
            DagExecutionFactory()
        assert not db.SQLITE_WRITERS.locked()
    finally:
        other.let_go()
    with db.write_transaction():
        DagExecutionFactory()
    assert DagExecution.objects.count() == 1
    assert not held_elsewhere(writers.path)  # let go on commit: another process may go in


def held_elsewhere(path: str) -> bool:
    """Whether some process holds the lock file (asked from a process of its own)."""
    probe = (
        "import fcntl, os, sys\n"
        "descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
        "try:\n"
        "    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n"
        "    sys.exit(1)\n"
    )
    return subprocess.run([sys.executable, "-c", probe, path], timeout=10).returncode == 1
