"""One redis-py client per process for the commands our own code sends to Redis (the API
throttle's counters).

redis-py's clients and connection pools are thread-safe and notice a fork, so one client per
process serves every request thread; one per request would open a new connection (with its
handshake) each time.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_clients: dict[tuple[str, int, float], redis.Redis] = {}
_clients_lock = threading.Lock()


def shared_redis() -> redis.Redis:
    """This process's client of `REDIS_URL`.

    Its pool holds up to CACHE_REDIS_MAX_CONNECTIONS connections; a burst of requests waits up
    to CACHE_REDIS_POOL_TIMEOUT_SECONDS for a free one instead of failing at once, and then
    raises `redis.ConnectionError` like an unreachable server does.
    """
    key = (
        settings.REDIS_URL,
        settings.CACHE_REDIS_MAX_CONNECTIONS,
        settings.CACHE_REDIS_POOL_TIMEOUT_SECONDS,
    )
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                pool = redis.BlockingConnectionPool.from_url(
                    key[0],
                    max_connections=key[1],
                    timeout=key[2],
                    socket_connect_timeout=2,
                    socket_timeout=2,
                )
                client = _clients[key] = redis.Redis(connection_pool=pool)
    return client
