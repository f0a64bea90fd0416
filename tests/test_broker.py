"""What durability relies on from the broker (kombu's stock Redis transport, real Redis): a task
message delivered for late acknowledgement stays in the unacked index until it is acked, from
where a lost worker's messages are restored; and a lost broker is noticed by its epoch key."""

from __future__ import annotations

import redis
from django.conf import settings

from config import broker
from config.celery import app


def test_a_delivered_message_stays_tracked_until_acked():
    raw = redis.Redis.from_url(settings.REDIS_URL)
    with app.connection_for_write() as connection:
        queue = connection.SimpleQueue("broker-test-late-ack", no_ack=False)
        try:
            for n in range(3):
                queue.put({"n": n})
            for n in range(3):
                message = queue.get(timeout=5)
                assert message.payload == {"n": n}
                tag = message.delivery_tag
                assert raw.hexists("unacked", tag)
                message.ack()
                assert not raw.hexists("unacked", tag)
        finally:
            queue.clear()
            queue.close()
    raw.close()


def test_the_broker_epoch_is_new_once_per_loss():
    raw = redis.Redis.from_url(settings.REDIS_URL)
    raw.delete(broker.EPOCH_KEY)
    try:
        assert broker.broker_lost_messages(settings.REDIS_URL)  # gone: noticed once...
        assert not broker.broker_lost_messages(settings.REDIS_URL)  # ...and only once
        raw.delete(broker.EPOCH_KEY)
        assert broker.broker_lost_messages(settings.REDIS_URL)
    finally:
        raw.close()


def test_brokers_other_than_redis_keep_their_queues_by_their_own_means():
    assert not broker.broker_lost_messages("amqp://guest@localhost//")
