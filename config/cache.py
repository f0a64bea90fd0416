"""Django's Redis cache with one client (and connection pool) per process.

Django keeps cache objects per async context, so under ASGI every request built a new cache
client with a new connection pool and opened a new Redis connection (with its handshake) for
the throttle's two commands. redis-py's pools are thread-safe and notice a fork, so one client
per process and configuration serves every request and thread.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


class SharedRedisCache(RedisCache):
    @cached_property
    def _cache(self) -> Any:
        key = repr((self._servers, sorted(self._options.items(), key=lambda item: item[0])))
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
