from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from ops.processes import Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
# Ignores SIGTERM, so only the kill after the deadline ends it.
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(120)",
]


@pytest.fixture
def supervisor():
    supervisor = Supervisor()
    yield supervisor
    supervisor.stop(timeout=1)


def test_a_dying_child_ends_the_wait_with_its_name_and_code(supervisor):
    supervisor.start("sleeper", SLEEPER)
    supervisor.start("crasher", [sys.executable, "-c", "raise SystemExit(3)"])

    outcome = supervisor.wait(poll_seconds=0.05)

    assert (outcome.child, outcome.returncode) == ("crasher", 3)
    supervisor.stop()
    assert not supervisor.get("sleeper").alive()


def test_a_signal_ends_the_wait_and_stop_terminates_every_child(supervisor):
    supervisor.install_signal_handlers()
    try:
        first = supervisor.start("one", SLEEPER)
        second = supervisor.start("two", SLEEPER)
        os.kill(os.getpid(), signal.SIGTERM)
        outcome = supervisor.wait(poll_seconds=0.05)
    finally:
        supervisor.restore_signal_handlers()

    assert outcome.child is None and outcome.signal_name == "SIGTERM"
    supervisor.stop(timeout=5)
    assert first.process.returncode == -signal.SIGTERM
    assert second.process.returncode == -signal.SIGTERM


def test_children_have_their_own_process_group(supervisor):
    child = supervisor.start("one", SLEEPER)
    assert os.getpgid(child.pid) == child.pid != os.getpgid(0)


def test_a_child_that_ignores_sigterm_is_killed_after_the_deadline(supervisor, tmp_path):
    import subprocess

    child = supervisor.adopt(
        "stubborn",
        subprocess.Popen(STUBBORN, stdout=subprocess.PIPE, text=True, process_group=0),
    )
    assert child.process.stdout.readline().strip() == "ready"
    started = time.monotonic()
    supervisor.stop(timeout=0.5)
    assert child.process.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 5
