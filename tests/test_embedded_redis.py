"""The embedded Redis (used by the start script when REDIS_URL is not set) keeps queued messages
across a restart and a crash: append-only file on."""

from __future__ import annotations

import signal
import time

import pytest
import redis

from config.embedded_redis import free_port, start_redis


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["restart", "crash"])
def test_embedded_redis_keeps_its_data_across_restarts(tmp_path, stop):
    port = free_port()
    server = start_redis(tmp_path, port)
    try:
        client = redis.Redis(port=port)
        client.lpush("celery", "a queued message")
        time.sleep(1.5)  # the append-only file is flushed to disk every second
        server.send_signal(stop)
        server.wait(timeout=10)
        server = start_redis(tmp_path, port)
        assert redis.Redis(port=port).lrange("celery", 0, -1) == [b"a queued message"]
    finally:
        server.kill()
        server.wait(timeout=10)
