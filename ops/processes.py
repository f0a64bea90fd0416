"""A small supervisor for the processes of a one-machine set-up (web, worker, beat, Redis).

Each child runs in a process group of its own, so a Ctrl-C in the terminal reaches only the
supervisor, which then stops the children in a known order: terminate, wait with a deadline,
kill what is left. On Linux each child also gets SIGTERM if the supervisor itself dies.
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
from dataclasses import dataclass
from typing import Any

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


@dataclass
class Child:
    name: str
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass(frozen=True)
class Exit:
    """Why supervision ended: a stop signal (`child` is None) or a child that exited."""

    child: str | None = None
    returncode: int | None = None
    signal_name: str | None = None


class Supervisor:
    def __init__(self, *, env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        self.env = env
        self.cwd = cwd
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
    def start(self, name: str, args: list[str], *, pass_fds: tuple[int, ...] = ()) -> Child:
        process = subprocess.Popen(
            args,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            pass_fds=pass_fds,
            **child_popen_options(),
        )
        return self.adopt(name, process)

    def adopt(self, name: str, process: subprocess.Popen) -> Child:
        """Supervise a process started elsewhere (with `child_popen_options()`)."""
        child = Child(name, process)
        self.children.append(child)
        logger.info("started %s pid=%s", name, process.pid)
        return child

    def get(self, name: str) -> Child:
        return next(child for child in self.children if child.name == name)

    def first_exited(self) -> Child | None:
        return next((child for child in self.children if not child.alive()), None)

    def wait(self, poll_seconds: float = 0.5) -> Exit:
        """Block until a stop signal arrives or a child exits, whichever comes first."""
        while True:
            exited = self.first_exited()
            if exited is not None:
                return Exit(child=exited.name, returncode=exited.process.returncode)
            if self.stop_requested.wait(poll_seconds):
                return Exit(signal_name=self._signal_name)

    def wait_until(
        self, ready: Callable[[], bool], *, timeout: float, poll_seconds: float = 0.1
    ) -> Exit | None:
        """Poll `ready` until it is true (None), or until a stop or a child's exit (an Exit)."""
        deadline = time.monotonic() + timeout
        while True:
            exited = self.first_exited()
            if exited is not None:
                return Exit(child=exited.name, returncode=exited.process.returncode)
            if self.stop_requested.is_set():
                return Exit(signal_name=self._signal_name)
            if ready():
                return None
            if time.monotonic() >= deadline:
                raise TimeoutError
            self.stop_requested.wait(poll_seconds)

    def stop(self, names: Iterable[str] | None = None, *, timeout: float = 20.0) -> None:
        """Terminate the named children (all when None), wait up to `timeout`, then kill."""
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
        for child in targets:
            if child.alive():
                logger.warning("%s pid=%s did not stop in time; killing it", child.name, child.pid)
                _send(child, signal.SIGKILL)
        for child in targets:
            child.process.wait()


def _send(child: Child, signum: int) -> None:
    try:
        # The whole group, in case the child started helpers of its own.
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        child.process.send_signal(signum)
