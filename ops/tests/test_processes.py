from __future__ import annotations

import os
import signal
import sys
import threading
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


def run_until(supervisor: Supervisor, seconds: float) -> None:
    """Supervise for `seconds`, then stop as a signal would."""
    timer = threading.Timer(seconds, supervisor.stop_requested.set)
    timer.start()
    try:
        supervisor.wait(poll_seconds=0.02)
    finally:
        timer.cancel()


def test_a_child_that_keeps_crashing_is_restarted_with_a_capped_back_off(tmp_path):
    starts = tmp_path / "starts"
    crasher = [
        sys.executable,
        "-c",
        f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(3)",
    ]
    reports: list[str] = []
    supervisor = Supervisor(
        restart_delay=0.2, max_restart_delay=0.8, stable_after=60, report=reports.append
    )
    try:
        sleeper = supervisor.start("sleeper", SLEEPER)
        supervisor.start("crasher", crasher)
        run_until(supervisor, 4.0)
    finally:
        supervisor.stop(timeout=2)

    # Started at about 0, 0.2, 0.6, 1.4, 2.2, 3.0 s (plus start-up time): a few, not hundreds.
    assert 3 <= len(starts.read_text()) <= 7, reports
    delays = [line.rsplit("restarting it in ", 1)[1] for line in reports if "restarting" in line]
    assert delays[:3] == ["0.2 s.", "0.4 s.", "0.8 s."]
    assert set(delays[3:]) <= {"0.8 s."}  # capped
    assert all("exited with code 3" in line for line in reports if "restarting" in line)
    assert any(line.startswith("restarted crasher (pid ") for line in reports)
    # The others were left alone, and stop() ended them.
    assert sleeper.process.returncode == -signal.SIGTERM
    assert "sleeper" not in " ".join(reports)


def test_a_killed_child_is_restarted_and_a_stable_one_gets_the_short_delay_again():
    reports: list[str] = []
    supervisor = Supervisor(
        restart_delay=0.1, max_restart_delay=5, stable_after=0.5, report=reports.append
    )
    try:
        child = supervisor.start("worker", SLEEPER)
        for _ in range(2):
            old_pid = child.pid
            time.sleep(0.7)  # longer than stable_after: counts as a fresh failure each time
            os.kill(old_pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while child.pid == old_pid or not child.alive():
                assert time.monotonic() < deadline, reports
                supervisor.tend()
                time.sleep(0.02)
    finally:
        supervisor.stop(timeout=2)

    restarts = [line for line in reports if "restarting it in" in line]
    assert len(restarts) == 2
    assert all(f"exited with code {-signal.SIGKILL}" in line for line in restarts)
    assert all(line.endswith("restarting it in 0.1 s.") for line in restarts)


def test_no_restart_once_a_stop_is_requested():
    supervisor = Supervisor(restart_delay=0.01)
    try:
        child = supervisor.start("crasher", [sys.executable, "-c", "raise SystemExit(1)"])
        child.process.wait()
        supervisor.stop_requested.set()
        first = child.pid
        for _ in range(5):
            supervisor.tend()
            time.sleep(0.02)
        assert child.pid == first and not child.alive()
    finally:
        supervisor.stop(timeout=1)


def test_a_signal_ends_the_wait_and_stop_terminates_every_child(supervisor):
    supervisor.install_signal_handlers()
    try:
        first = supervisor.start("one", SLEEPER)
        second = supervisor.start("two", SLEEPER)
        os.kill(os.getpid(), signal.SIGTERM)
        outcome = supervisor.wait(poll_seconds=0.05)
    finally:
        supervisor.restore_signal_handlers()

    assert outcome.signal_name == "SIGTERM"
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
