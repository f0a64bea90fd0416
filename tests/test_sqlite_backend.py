"""The SQLite backend queues writers of one process on a lock, and times out like SQLite."""

import threading

import pytest
from django.db import OperationalError, connection, transaction

from goals.models import Goal

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_second_writer_waits_for_the_first_and_then_proceeds():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        with transaction.atomic():
            Goal.objects.create(objective="first writer holds the lock")
            inside.set()
            release.wait(5)
            order.append("first")

    def second() -> None:
        inside.wait(5)
        with transaction.atomic():
            order.append("second")
            Goal.objects.create(objective="second writer came after")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    inside.wait(5)
    release.set()
    for thread in threads:
        thread.join(10)
    assert order == ["first", "second"]
    assert Goal.objects.count() == 2


def test_a_writer_that_waits_too_long_gets_database_is_locked(monkeypatch):
    from config.sqlite_backend.base import DatabaseWrapper

    monkeypatch.setattr(DatabaseWrapper, "write_lock_timeout", lambda self: 0.2)
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    inside = threading.Event()
    release = threading.Event()
    errors: list[Exception] = []

    def holder() -> None:
        with transaction.atomic():
            Goal.objects.create(objective="holding the write lock")
            inside.set()
            release.wait(5)

    def waiter() -> None:
        try:
            with transaction.atomic():
                Goal.objects.create(objective="never written")
        except OperationalError as error:
            errors.append(error)

    holding = threading.Thread(target=holder)
    holding.start()
    inside.wait(5)
    waiting = threading.Thread(target=waiter)
    waiting.start()
    waiting.join(5)
    release.set()
    holding.join(5)
    assert errors and "locked" in str(errors[0])
    assert not Goal.objects.filter(objective="never written").exists()
