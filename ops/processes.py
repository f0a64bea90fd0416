"""A small supervisor for the processes of a one-machine set-up (web, worker, beat, Redis).

Each child runs in a process group of its own, so a Ctrl-C in the terminal reaches only the
supervisor, which then stops the children in a known order: terminate, wait with a deadline,
kill what is left. On Linux each child also gets SIGTERM if the supervisor itself dies.

A child that exits on its own is reported and started again after a delay that doubles with
each quick failure (up to a cap), so one crash does not stop the system and a child that keeps
crashing at once does not spin. Only a stop signal (or the caller) stops the system.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

logger = logging.getLogger(__name__)

DUPLICATE_SIGNAL_WINDOW_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM the child when its parent exits."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def child_popen_options() -> dict[str, Any]:
    """Popen options for a supervised child: own process group, dies with the supervisor."""
    return {"process_group": 0, "preexec_fn": _die_with_parent}


Launcher = Callable[[], subprocess.Popen]


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    launch: Launcher | None = None  # how to start it again; None: not restarted
    started_at: float = field(default_factory=time.monotonic)
    quick_failures: int = 0  # exits in a row, each soon after its start
    restart_at: float | None = None  # when an exited child is due to start again

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass(frozen=True)
class Exit:
    """Why supervision ended: the stop signal that arrived."""

    signal_name: str | None = None


class Supervisor:
    def __init__(
        self,
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        restart_delay: float = 1.0,
        max_restart_delay: float = 60.0,
        stable_after: float = 30.0,
        report: Callable[[str], None] | None = None,
    ) -> None:
        """`restart_delay` doubles after each exit that came less than `stable_after` seconds
        after the child's start, up to `max_restart_delay`; `report` also gets each exit and
        restart (they are logged in any case)."""
        self.env = env
        self.cwd = cwd
        self.restart_delay = restart_delay
        self.max_restart_delay = max_restart_delay
        self.stable_after = stable_after
        self.report = report
        self.children: list[Child] = []
        self.stop_requested = threading.Event()
        self.force_requested = threading.Event()
        self._signal_name: str | None = None
        self._stop_signalled_at = 0.0
        self._previous_handlers: dict[int, Any] = {}

    # --- signals -------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """First SIGINT/SIGTERM asks for a clean stop; a second one kills what is left."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.stop_requested.is_set():
            # The same Ctrl-C can arrive twice (from the terminal and forwarded by a launcher
            # such as `uv run`); only a later, deliberate one means "kill now".
            if time.monotonic() - self._stop_signalled_at >= DUPLICATE_SIGNAL_WINDOW_SECONDS:
                self.force_requested.set()
            return
        self._signal_name = signal.Signals(signum).name
        self._stop_signalled_at = time.monotonic()
        self.stop_requested.set()

    # --- children ------------------------------------------------------------------------------
    def popen(self, args: list[str], *, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
        """A child process with the supervisor's environment and `child_popen_options()`."""
        return subprocess.Popen(
            args,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            pass_fds=pass_fds,
            **child_popen_options(),
        )

    def start(self, name: str, args: list[str]) -> Child:
        """Start and supervise `args`; started again the same way when it exits."""
        return self.launch(name, lambda: self.popen(args))

    def launch(self, name: str, launcher: Launcher) -> Child:
        """Start a child with `launcher`, which is called again for each restart."""
        return self.adopt(name, launcher(), launch=launcher)

    def adopt(
        self, name: str, process: subprocess.Popen, *, launch: Launcher | None = None
    ) -> Child:
        """Supervise a process started elsewhere (with `child_popen_options()`)."""
        child = Child(name, process, launch=launch)
        self.children.append(child)
        logger.info("started %s pid=%s", name, process.pid)
        return child

    def get(self, name: str) -> Child:
        return next(child for child in self.children if child.name == name)

    def tend(self) -> None:
        """Notice children that exited, and start again those whose delay is over."""
        if self.stop_requested.is_set():
            return
        moment = time.monotonic()
        for child in self.children:
            if child.alive():
                continue
            if child.restart_at is None:
                self._schedule_restart(child, moment)
            elif moment >= child.restart_at and child.launch is not None:
                self._restart(child, moment)

    def _schedule_restart(self, child: Child, moment: float) -> None:
        ran = moment - child.started_at
        code = child.process.returncode
        if child.launch is None:
            child.restart_at = float("inf")
            self._say(f"{child.name} (pid {child.pid}) exited with code {code}; not restarted.")
            return
        if ran >= self.stable_after:
            child.quick_failures = 0
        delay = min(self.restart_delay * 2**child.quick_failures, self.max_restart_delay)
        child.quick_failures += 1
        child.restart_at = moment + delay
        self._say(
            f"{child.name} (pid {child.pid}) exited with code {code} after {ran:.1f} s; "
            f"restarting it in {delay:g} s."
        )

    def _restart(self, child: Child, moment: float) -> None:
        try:
            # Only children with a launcher are restarted (the caller checks).
            child.process = cast(Launcher, child.launch)()
        except Exception as error:  # e.g. the port is taken for now: try again later
            delay = min(self.restart_delay * 2**child.quick_failures, self.max_restart_delay)
            child.quick_failures += 1
            child.restart_at = moment + delay
            self._say(f"could not restart {child.name}: {error}; trying again in {delay:g} s.")
            return
        child.started_at = time.monotonic()
        child.restart_at = None
        self._say(f"restarted {child.name} (pid {child.pid}).")

    def _say(self, message: str) -> None:
        logger.warning("%s", message)
        if self.report is not None:
            self.report(message)

    def wait(self, poll_seconds: float = 0.5) -> Exit:
        """Keep the children running (restarting those that exit) until a stop signal."""
        while True:
            self.tend()
            if self.stop_requested.wait(poll_seconds):
                return Exit(signal_name=self._signal_name)

    def wait_until(
        self, ready: Callable[[], bool], *, timeout: float, poll_seconds: float = 0.1
    ) -> Exit | None:
        """Poll `ready` until it is true (None) or a stop signal arrives (an Exit), restarting
        children that exit meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            self.tend()
            if self.stop_requested.is_set():
                return Exit(signal_name=self._signal_name)
            if ready():
                return None
            if time.monotonic() >= deadline:
                raise TimeoutError
            self.stop_requested.wait(poll_seconds)

    def stop(self, names: Iterable[str] | None = None, *, timeout: float = 20.0) -> list[Child]:
        """Terminate the named children (all when None), wait up to `timeout`, then kill what is
        left; returns the children that had to be killed."""
        wanted = set(names) if names is not None else None
        targets = [c for c in self.children if wanted is None or c.name in wanted]
        for child in targets:
            if child.alive():
                logger.info("stopping %s pid=%s", child.name, child.pid)
                _send(child, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(child.alive() for child in targets):
            if self.force_requested.is_set() or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        killed = [child for child in targets if child.alive()]
        for child in killed:
            logger.warning("%s pid=%s did not stop in time; killing it", child.name, child.pid)
            _send(child, signal.SIGKILL)
        for child in targets:
            child.process.wait()
        return killed


def _send(child: Child, signum: int) -> None:
    try:
        # The whole group, in case the child started helpers of its own.
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        child.process.send_signal(signum)
