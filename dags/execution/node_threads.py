"""Threads on which a worker runs the nodes of a several-node message beyond the first (the
first runs on the worker's own thread that took the message; see `services.nodes_run`).

A worker process has WORKER_NODE_THREADS of them, made as they are first needed. A message
reserves threads before its nodes are claimed and takes only as many nodes as it got threads
for, so a claimed node never waits for a thread, and what one worker cannot start at once is
left for the others (sent again, a message per node).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections

from config.workers import work_finished, work_started

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_free = 0


def _pool() -> ThreadPoolExecutor:
    global _executor, _free
    with _lock:
        if _executor is None:
            _free = settings.WORKER_NODE_THREADS
            _executor = ThreadPoolExecutor(
                max_workers=max(1, settings.WORKER_NODE_THREADS), thread_name_prefix="node"
            )
        return _executor


def node_threads_reserve(wanted: int) -> int:
    """Reserve up to `wanted` node threads; returns how many were reserved (maybe none)."""
    global _free
    if wanted <= 0:
        return 0
    _pool()
    with _lock:
        taken = min(wanted, _free)
        _free -= taken
        return taken


def node_threads_release(count: int) -> None:
    """Give back reserved threads that will not be used."""
    global _free
    if count > 0:
        with _lock:
            _free += count


def node_threads_submit(job: Callable[[], None], *, name: str) -> Future[None]:
    """Run `job` on a node thread reserved for it; the thread is given back when it ends. It
    counts as work `name` in flight in the worker's heartbeat, as a task would.

    Like a worker's own threads, a node thread keeps its database connection between jobs
    (DATABASE_CONN_MAX_AGE), closing it when it is too old or broken."""

    def run() -> None:
        work_started(name)
        try:
            close_old_connections()
            job()
        finally:
            try:
                close_old_connections()
            finally:
                work_finished(name)
                node_threads_release(1)

    return _pool().submit(run)
