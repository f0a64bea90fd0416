"""Worker threads keep their database connection between tasks (config/celery.py): Celery's
Django fixup no longer closes it around every task, and CONN_MAX_AGE still applies."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.db import connection

from config.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


class _Task:
    request = SimpleNamespace(is_eager=False)


TASK = _Task()


def run_task_signals(fixup: DjangoWorkerFixup) -> None:
    fixup.on_task_prerun(sender=TASK)
    task_prerun.send(sender=TASK, task_id="t", task=TASK)
    task_postrun.send(sender=TASK, task_id="t", task=TASK)
    fixup.on_task_postrun(sender=TASK)


def test_the_connection_survives_tasks():
    connection.ensure_connection()
    opened = connection.connection
    fixup = DjangoWorkerFixup(app)
    for _ in range(3):
        run_task_signals(fixup)
    assert connection.connection is opened


def test_an_old_connection_is_still_closed_between_tasks(monkeypatch):
    # This connection's CONN_MAX_AGE is 0: it is too old as soon as it is open.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    connection.close()
    connection.ensure_connection()
    assert connection.connection is not None
    run_task_signals(DjangoWorkerFixup(app))
    assert connection.connection is None
