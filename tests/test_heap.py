"""Long-running processes keep their start-up objects out of full garbage collections
(config/heap.py): the web process once its views are imported, the worker once it is ready."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref

import pytest

from config.heap import freeze_startup_objects
from tests.processes import ROOT


class _Node:
    pass


def test_frozen_start_up_objects_leave_later_garbage_collectable():
    try:
        assert freeze_startup_objects() > 1000
        assert gc.get_freeze_count() > 1000
        cycle = _Node()
        cycle.self = cycle
        alive = weakref.ref(cycle)
        del cycle
        gc.collect()
        assert alive() is None
    finally:
        gc.unfreeze()


def _frozen_count_after(code: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport gc\nprint(gc.get_freeze_count())"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_the_web_process_freezes_its_views_and_settings_at_start():
    # A full Django stack is well over 100,000 objects.
    assert _frozen_count_after("import config.asgi") > 100_000


@pytest.mark.parametrize(
    "signal",
    [
        "worker_ready",  # the thread-pool worker (the default): the process that runs the nodes
        "worker_process_init",  # each child of a prefork worker
    ],
)
def test_a_worker_process_freezes_when_it_is_ready(signal):
    # The task modules stay unimported: their own worker_ready receivers would queue a recovery
    # sweep on the tests' Redis.
    code = (
        "import django\n"
        "django.setup()\n"
        "import gc\n"
        "import config.celery\n"
        "assert gc.get_freeze_count() == 0\n"
        f"from celery.signals import {signal}\n"
        f"{signal}.send(sender=None)"
    )
    assert _frozen_count_after(code) > 100_000
