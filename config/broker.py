"""The broker's epoch: noticing that the broker's Redis lost the messages queued in it.

The broker itself is kombu's stock Redis transport (chosen by the URL's scheme).
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import redis

_REDIS_SCHEMES = frozenset({"redis", "rediss", "socket"})


# --- noticing that the broker lost its messages ---------------------------------------------------
# A key the dispatcher keeps in the broker's Redis. Queued messages and this key live and die
# together: if it is gone, the broker restarted without its data (or was replaced), and every
# message handed to it before may be gone too.
EPOCH_KEY = "aa:broker-epoch"

# For messages the dispatcher sends again if they cannot be sent now: one quick retry (a pooled
# connection may be stale after a broker restart), so a request never hangs on a broker that is
# away.
SEND_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}

_epoch_clients: dict[str, redis.Redis] = {}


def _epoch_client(broker_url: str) -> redis.Redis:
    client = _epoch_clients.get(broker_url)
    if client is None:
        url = broker_url
        if url.startswith("socket://"):  # kombu's name for a Unix socket
            url = "unix://" + url[len("socket://") :]
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        _epoch_clients[broker_url] = client
    return client


def broker_lost_messages(broker_url: str) -> bool:
    """True when the broker no longer holds what was queued before (its epoch key is missing);
    sets a new key, so only one caller sees each loss. False for brokers other than Redis,
    which keep their queues by their own means.

    Raises redis.RedisError when the broker cannot be reached.
    """
    if urlsplit(broker_url).scheme not in _REDIS_SCHEMES:
        return False
    created = _epoch_client(broker_url).set(EPOCH_KEY, uuid.uuid4().hex, nx=True)
    return bool(created)
