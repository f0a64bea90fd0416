"""What a Celery worker process tells the rest of the system about itself, through Celery's
public signals:

- `worker_stopping()`: true once a warm shutdown began (SIGTERM, the first Ctrl-C). The DAG
  runtime then finishes the node in hand and sends the rest of a chain back to the queue
  instead of running it in this process, so the shutdown ends promptly and the next worker
  (after a restart, or another machine) carries on.
- A heartbeat every WORKER_HEARTBEAT_SECONDS (`heartbeat_record`): name, pool size and the
  tasks in flight, read by /health/ready and the system page (ops.selectors.worker_heartbeats),
  which thus never wait on a broadcast ping.

Heartbeats live in one Redis hash, a field per worker. A heartbeat is transient (it says only
that a worker was alive a moment ago and what it was doing), so it lives in Redis rather than
in the database: a write every few seconds per worker would otherwise compete with the
executions' own writes on SQLite, and nothing is lost with it. Readers judge freshness from the
recorded time; writers drop entries older than WORKER_HEARTBEAT_KEEP_SECONDS, so a worker that
vanished stays visible (as stale) for a while.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import Counter

import redis
from celery.signals import (
    celeryd_after_setup,
    task_postrun,
    task_prerun,
    worker_ready,
    worker_shutdown,
    worker_shutting_down,
)
from django.conf import settings

logger = logging.getLogger(__name__)

HEARTBEATS_KEY = "aa:worker-heartbeats"

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()
_stopping = threading.Event()
_finished = threading.Event()
_lock = threading.Lock()
_in_flight: Counter[str] = Counter()
_identity: dict[str, object] = {"name": None, "concurrency": None, "started_at": time.time()}
_thread: threading.Thread | None = None


def heartbeat_client() -> redis.Redis:
    """One client (and connection pool) per process for REDIS_URL, with short timeouts."""
    url = settings.REDIS_URL
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
            client = redis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
            _clients[url] = client
        return client


def heartbeat_record(
    *,
    name: str,
    concurrency: int | None,
    tasks: dict[str, int],
    started_at: float,
    state: str = "running",
    now: float | None = None,
) -> None:
    """Record that the worker `name` is alive, with what it is doing, and
    drop other workers' entries older than WORKER_HEARTBEAT_KEEP_SECONDS.

    `state` is "running", "stopping" (a warm shutdown began) or "stopped". Raises
    redis.RedisError when Redis cannot be reached.
    """
    moment = time.time() if now is None else now
    beat = {
        "name": name,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "concurrency": concurrency,
        "active": sum(tasks.values()),
        "tasks": tasks,
        "startedAt": started_at,
        "seenAt": moment,
        "state": state,
    }
    client = heartbeat_client()
    client.hset(HEARTBEATS_KEY, name, json.dumps(beat))
    keep = settings.WORKER_HEARTBEAT_KEEP_SECONDS
    old = []
    for field, value in client.hgetall(HEARTBEATS_KEY).items():
        try:
            seen = float(json.loads(value)["seenAt"])
        except (ValueError, KeyError, TypeError):
            seen = 0.0
        if moment - seen > keep:
            old.append(field)
    if old:
        client.hdel(HEARTBEATS_KEY, *old)


def worker_stopping() -> bool:
    """Whether this process is a worker whose warm shutdown has begun."""
    return _stopping.is_set()


@worker_shutting_down.connect
def _on_shutting_down(**kwargs) -> None:
    # Runs in the signal handler: only set the flag; the heartbeat thread reports it.
    _stopping.set()


@celeryd_after_setup.connect
def _on_setup(sender=None, instance=None, **kwargs) -> None:
    _identity["name"] = str(sender)
    _identity["concurrency"] = getattr(instance, "concurrency", None)
    _identity["started_at"] = time.time()


def work_started(name: str) -> None:
    """Count one more piece of work named `name` in flight in this process (the heartbeat's
    `tasks`): every task, and each node a task runs on a node thread besides its own."""
    with _lock:
        _in_flight[name] += 1


def work_finished(name: str) -> None:
    with _lock:
        _in_flight[name] -= 1
        if _in_flight[name] <= 0:
            del _in_flight[name]


def work_in_flight() -> dict[str, int]:
    """What this process is running now, by name (what its next heartbeat reports)."""
    with _lock:
        return dict(_in_flight)


@task_prerun.connect
def _on_task_start(sender=None, **kwargs) -> None:
    work_started(getattr(sender, "name", "?"))


@task_postrun.connect
def _on_task_end(sender=None, **kwargs) -> None:
    work_finished(getattr(sender, "name", "?"))


def heartbeats_start(*, name: str, concurrency: int | None) -> None:
    """Start recording this process's worker heartbeat as `name` (until worker_shutdown).

    The command-line worker starts it when it is ready; a worker embedded in another program
    (celery.contrib.testing's start_worker sends no worker_ready) calls it itself.
    """
    global _thread
    _identity["name"] = name
    _identity["concurrency"] = concurrency
    _identity["started_at"] = time.time()
    _stopping.clear()
    _finished.clear()
    _thread = threading.Thread(target=_beat_forever, name="worker-heartbeat", daemon=True)
    _thread.start()


@worker_ready.connect
def _on_ready(sender=None, **kwargs) -> None:
    heartbeats_start(
        name=str(_identity["name"] or getattr(sender, "hostname", None) or "worker"),
        concurrency=_identity["concurrency"],  # type: ignore[arg-type]
    )


def heartbeats_stop() -> None:
    """Record this worker as stopped and end its heartbeat thread (see heartbeats_start)."""
    _finished.set()
    if _thread is not None:
        _thread.join(settings.HEALTH_CHECK_TIMEOUT_SECONDS * 2)


@worker_shutdown.connect
def _on_shutdown(**kwargs) -> None:
    heartbeats_stop()


def _beat(state: str) -> None:
    tasks = work_in_flight()
    try:
        heartbeat_record(
            name=str(_identity["name"]),
            concurrency=_identity["concurrency"],  # type: ignore[arg-type]
            tasks=tasks,
            started_at=float(_identity["started_at"]),  # type: ignore[arg-type]
            state=state,
        )
    except Exception as error:  # Redis away: readiness reports it; try again next time
        logger.info("could not record the worker heartbeat: %s", error)


def _beat_forever() -> None:
    reported_stopping = False
    while True:
        if _finished.is_set():
            _beat("stopped")
            return
        stopping = _stopping.is_set()
        _beat("stopping" if stopping else "running")
        reported_stopping = reported_stopping or stopping
        # Wake early for a shutdown, so the system page shows it at once.
        deadline = time.monotonic() + settings.WORKER_HEARTBEAT_SECONDS
        while time.monotonic() < deadline and not _finished.is_set():
            if _stopping.is_set() and not reported_stopping:
                break
            _finished.wait(0.2)
