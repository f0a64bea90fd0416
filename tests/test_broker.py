"""What durability relies on from the broker (kombu's stock Redis transport, real Redis): a task
message delivered for late acknowledgement stays in the unacked index until it is acked, from
where a lost worker's messages are restored; and a lost broker is noticed by its epoch key, with
a warning only when work had to be sent again."""

from __future__ import annotations

import logging

import pytest
import redis
from django.conf import settings
from django.utils.timezone import now

from config import broker
from config.celery import app
from config.dispatcher import dispatcher_pass
from dags.models import DagExecution
from tests.factories import DagExecutionFactory, SubStepFactory


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


@pytest.fixture
def fresh_broker():
    """The broker as a first start, or a restart that kept no data, leaves it: no epoch key."""
    import dags.tasks  # noqa: F401  (registers the nodes' and runs' redispatch)
    import runs.tasks  # noqa: F401

    raw = redis.Redis.from_url(settings.REDIS_URL)
    raw.delete(broker.EPOCH_KEY)
    yield
    raw.close()


@pytest.mark.django_db
def test_a_new_broker_with_nothing_in_flight_is_no_warning(fresh_broker, caplog):
    outcome = dispatcher_pass(broker_url=settings.REDIS_URL)

    assert outcome is not None and outcome["broker_lost"] is True
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "no queued work had to be sent again" in caplog.text


@pytest.mark.django_db
def test_a_broker_that_lost_queued_work_is_a_warning_naming_what_was_sent_again(
    fresh_broker, caplog
):
    execution = DagExecutionFactory(status=DagExecution.Status.RUNNING)
    SubStepFactory(execution=execution, dispatched_at=now(), queue_task_id="lost-message")

    outcome = dispatcher_pass(broker_url=settings.REDIS_URL)

    assert outcome is not None and outcome["nodes"]["stale"] == 1
    lost = [r for r in caplog.records if "lost its queued messages" in r.getMessage()]
    assert [r.levelno for r in lost] == [logging.WARNING]
    assert "'stale': 1" in lost[0].getMessage()
