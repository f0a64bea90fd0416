"""Work a request leaves for after its response: done by one background thread per process, so
that the answer waits neither for the work nor for what the work waits on (the broker).

A request's code calls `defer(job)`. Under the project's ASGI application the jobs are started
once the response has been handed to the server (config/asgi_http.py): started earlier, on a
2-core machine, the job's thread competes for the interpreter with the event loop that is
sending the answer, and the answer waits. Anywhere else (the test client, a WSGI server) they
start when Django's `request_finished` signal fires, as the response is closed.

A job must be safe to lose: the process may die before it runs (what it would do has to be
found and done by something else, such as the workers' dispatcher for undelivered nodes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from django.core.signals import request_finished
from django.db import close_old_connections
from django.dispatch import receiver

logger = logging.getLogger(__name__)

Job = Callable[[], None]

# The jobs of the request running on each thread.
_deferred = threading.local()
_background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="after-response")


def defer(job: Job) -> None:
    """Run `job` once the current request's response has been sent."""
    pending = getattr(_deferred, "jobs", None)
    if pending is None:
        pending = _deferred.jobs = []
    pending.append(job)


def take_deferred() -> list[Job]:
    """The jobs the request on this thread left (and forget them here): for the server
    application to start once it has sent the response (`start`)."""
    pending = getattr(_deferred, "jobs", None)
    if not pending:
        return []
    _deferred.jobs = []
    return pending


def start(jobs: Sequence[Job]) -> None:
    """Hand jobs to the background thread, in order."""
    for job in jobs:
        _background.submit(_run, job)


def wait_idle(timeout: float) -> bool:
    """Wait until every job handed over so far has run (False if `timeout` seconds pass first).

    The background thread runs jobs one at a time in order, so a marker job finishing means all
    earlier ones have. For tests: a job left by one test must not run into the next one."""
    try:
        _background.submit(lambda: None).result(timeout=timeout)
    except TimeoutError:
        return False
    return True


def _run(job: Job) -> None:
    close_old_connections()  # this thread's connection, as a request would (age, health)
    try:
        job()
    except Exception:  # a job is safe to lose (see the module docstring)
        logger.warning("work left for after a response failed", exc_info=True)


@receiver(request_finished, dispatch_uid="config.after_response")
def _start_when_finished(**_kwargs: object) -> None:
    start(take_deferred())
