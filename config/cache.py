"""Django's Redis cache with one client (and connection pool) per process.

Django keeps cache objects per async context, so under ASGI every request built a new cache
client with a new connection pool and opened a new Redis connection (with its handshake), and
every cache call built a new `redis.Redis` object. redis-py's pools and clients are thread-safe
and notice a fork, so one of each per process and configuration serves every request and thread.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


# The `type: ignore[attr-defined]` below: attributes Django's Redis cache has and its stubs do
# not declare.


class ReusedRedisCacheClient(RedisCacheClient):
    """Hands out one `redis.Redis` per server instead of a new one per call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redis: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)  # type: ignore[attr-defined]
        client = self._redis.get(index)
        if client is None:
            pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
            client = self._client(connection_pool=pool)  # type: ignore[attr-defined]
            self._redis[index] = client
        return client


class SharedRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusedRedisCacheClient

    @cached_property
    def _cache(self) -> ReusedRedisCacheClient:
        servers = self._servers  # type: ignore[attr-defined]
        options = self._options  # type: ignore[attr-defined]
        key = repr((servers, sorted(options.items(), key=lambda item: item[0])))
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(servers, **options)
        return client

    def redis(self) -> Any:
        """The process's `redis.Redis` client of this cache's (first) server, for commands the
        cache API has no word for (the throttle's counters)."""
        return self._cache.get_client(write=True)
