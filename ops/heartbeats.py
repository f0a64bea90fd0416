"""Where worker heartbeats live: one Redis hash, a field per worker.

A heartbeat is transient (it says only that a worker was alive a moment ago and what it was
doing), so it lives in Redis rather than in the database: a write every few seconds per worker
would otherwise compete with the executions' own writes on SQLite, and nothing is lost with it.
Readers judge freshness from the recorded time; the writers drop entries older than
WORKER_HEARTBEAT_KEEP_SECONDS, so a worker that vanished stays visible (as stale) for a while.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

HEARTBEATS_KEY = "aa:worker-heartbeats"

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


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
