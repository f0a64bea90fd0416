"""Celery plumbing that the worker's per-message cost depends on: the Redis transport keeping one
client per channel (config/broker.py) and the result backend class found once (config/celery.py).
Real Redis."""

from __future__ import annotations

import threading

import pytest
import redis
from celery.app import backends
from django.conf import settings

from config import broker
from config.celery import app


def test_plain_redis_urls_get_the_shared_client_transport_and_others_keep_theirs():
    assert broker.transport_for("redis://127.0.0.1:6379/0") == "config.broker:Transport"
    assert broker.transport_for("rediss://:secret@cache.example:6380/1") == (
        "config.broker:Transport"
    )
    assert broker.transport_for("socket:///run/redis.sock") == "config.broker:Transport"
    assert broker.transport_for("sentinel://10.0.0.1:26379") is None
    assert broker.transport_for("amqp://guest@localhost//") is None


def test_a_delivered_message_is_tracked_and_acked_through_one_client(monkeypatch):
    created: list[redis.Redis] = []
    real_create = broker.Channel._create_client

    def counting_create(self, asynchronous=False):
        client = real_create(self, asynchronous=asynchronous)
        if not asynchronous:
            created.append(client)
        return client

    monkeypatch.setattr(broker.Channel, "_create_client", counting_create)
    raw = redis.Redis.from_url(settings.REDIS_URL)
    with app.connection_for_write() as connection:
        assert isinstance(connection.default_channel, broker.Channel)
        queue = connection.SimpleQueue("broker-test-late-ack", no_ack=False)
        try:
            for n in range(3):
                queue.put({"n": n})
            for n in range(3):
                message = queue.get(timeout=5)
                assert message.payload == {"n": n}
                tag = message.delivery_tag
                # Late acknowledgement: until acked, the message is in the unacked index, from
                # where a lost worker's messages are restored.
                assert raw.hexists("unacked", tag)
                message.ack()
                assert not raw.hexists("unacked", tag)
        finally:
            queue.clear()
            queue.close()
    raw.close()
    # Putting, tracking and acking six times over: one client, reused.
    assert len(created) == 1


def test_a_new_pool_gets_a_new_client():
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as again:
            assert first is again
        channel._pool = None  # as after kombu drops its connections
        with channel.conn_or_acquire() as renewed:
            assert renewed is not first
            assert renewed.connection_pool is channel.pool


@pytest.fixture
def backend_lookups(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = backends.load_extension_class_names

    def counting(namespace):
        calls.append(namespace)
        return real(namespace)

    monkeypatch.setattr(backends, "load_extension_class_names", counting)
    return calls


def test_worker_threads_share_one_result_backend_lookup(backend_lookups):
    made: list[object] = []

    def first_task_of_a_thread() -> None:
        made.append(app._get_backend())

    threads = [threading.Thread(target=first_task_of_a_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(backend) for backend in made}) == 4  # still one backend per thread
    assert {type(backend).__name__ for backend in made} == {"RedisBackend"}
    assert len(backend_lookups) <= 1  # at most the first ever; the class is then known
