"""Publishing stored events to the Channels layer (config/live_events/, config/channel_layer.py):
only groups someone follows get them, a burst costs one membership lookup, and a failed lookup
still publishes. Real Redis throughout."""

from __future__ import annotations

import asyncio
import threading

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

import config.live_events as live_events
from config.channel_layer import EventChannelLayer


@pytest.fixture
def layer() -> EventChannelLayer:
    layer = get_channel_layer()
    assert isinstance(layer, EventChannelLayer)
    return layer


@pytest.fixture
def group_sends(layer, monkeypatch) -> list[tuple[str, int]]:
    """Every group_send the publisher makes, as (group, seq), still sent for real."""
    calls: list[tuple[str, int]] = []
    real = layer.group_send

    async def recording(group, message):
        calls.append((group, message["seq"]))
        await real(group, message)

    monkeypatch.setattr(layer, "group_send", recording)
    return calls


def test_groups_with_members_names_only_followed_groups(layer, layer_follower):
    layer_follower("pub.followed")
    # A member whose group_add is older than group_expiry counts as gone, as in group_send.
    stale_key = layer._group_key("pub.stale")
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.zadd(stale_key, {"specific.stale!x": 1})
    try:
        followed = async_to_sync(layer.groups_with_members)(
            ["pub.followed", "pub.nobody", "pub.stale", "pub.followed"]
        )
        assert followed == {"pub.followed"}
        assert client.zcard(stale_key) == 0  # dropped, as group_send would have
    finally:
        client.delete(stale_key)
        client.close()


def test_only_followed_groups_are_sent_to(layer, layer_follower, group_sends):
    receive = layer_follower("pub.watched")
    live_events.publish("pub.unwatched", {"type": "live.event", "seq": 1})
    live_events.publish("pub.watched", {"type": "live.event", "seq": 2})
    assert live_events.flush_published(10)
    assert group_sends == [("pub.watched", 2)]
    assert receive()["seq"] == 2


def test_a_burst_of_events_costs_one_membership_lookup(
    layer, layer_follower, group_sends, monkeypatch
):
    layer_follower("pub.burst-0")
    lookups: list[set[str]] = []
    first_lookup_entered = threading.Event()
    release = threading.Event()
    real = layer.groups_with_members

    async def slow_lookup(groups):
        lookups.append(set(groups))
        first_lookup_entered.set()
        while not release.is_set():  # the first lookup is slow: the rest pile up meanwhile
            await asyncio.sleep(0.005)
        return await real(groups)

    monkeypatch.setattr(layer, "groups_with_members", slow_lookup)
    try:
        live_events.publish("pub.burst-0", {"type": "live.event", "seq": 0})
        assert first_lookup_entered.wait(10)
        for seq in range(1, 20):
            live_events.publish(f"pub.burst-{seq % 4}", {"type": "live.event", "seq": seq})
        release.set()
        assert live_events.flush_published(10)
    finally:
        release.set()
    assert lookups == [{"pub.burst-0"}, {f"pub.burst-{n}" for n in range(4)}]
    # Sent to the followed group only, in the order handed over.
    assert group_sends == [("pub.burst-0", seq) for seq in (0, 4, 8, 12, 16)]


def test_a_failed_lookup_still_publishes(layer, layer_follower, group_sends, monkeypatch):
    receive = layer_follower("pub.lookup-fails")

    async def broken_lookup(groups):
        raise redis.ConnectionError("Redis went away for a moment")

    monkeypatch.setattr(layer, "groups_with_members", broken_lookup)
    live_events.publish("pub.lookup-fails", {"type": "live.event", "seq": 7})
    live_events.publish("pub.nobody-here", {"type": "live.event", "seq": 8})
    assert live_events.flush_published(10)
    assert group_sends == [("pub.lookup-fails", 7), ("pub.nobody-here", 8)]
    assert receive()["seq"] == 7


def test_the_publisher_outlives_a_batch_that_breaks(
    layer, layer_follower, group_sends, monkeypatch
):
    receive = layer_follower("pub.after-a-bug")
    real_lookup = layer.groups_with_members

    async def nonsense_lookup(groups):
        return 42  # not a set of groups: sending this batch fails past the lookup's guard

    monkeypatch.setattr(layer, "groups_with_members", nonsense_lookup)
    live_events.publish("pub.after-a-bug", {"type": "live.event", "seq": 1})
    assert live_events.flush_published(10)
    assert group_sends == []
    monkeypatch.setattr(layer, "groups_with_members", real_lookup)
    live_events.publish("pub.after-a-bug", {"type": "live.event", "seq": 2})
    assert live_events.flush_published(10)
    assert group_sends == [("pub.after-a-bug", 2)]
    assert receive()["seq"] == 2
