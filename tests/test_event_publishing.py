"""Publishing stored events on Redis pub/sub and receiving them in a process (config/live_events/
publisher.py, hub.py): one PUBLISH per event, nothing to look up first, one subscription per
process and subject however many follow it, and a lost connection recovered from the database.
Real Redis throughout."""

from __future__ import annotations

import asyncio

import pytest
import redis
from django.conf import settings

import config.live_events as live_events
from config.live_events import RESYNC, StoredEvent, Subscription, publisher
from config.live_events.hub import WRITES_PER_LOOP_PASS, follower_count
from dags.events import EXECUTION_EVENTS
from tests.factories import DagExecutionFactory
from tests.sse_client import run_in_server_loop, subscribed_processes, wait_until


def publish_calls() -> int:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return int(client.info("commandstats").get("cmdstat_publish", {}).get("calls", 0))
    finally:
        client.close()


def test_an_event_costs_one_publish_whether_or_not_anyone_follows(redis_follower):
    receive = redis_follower("pub.watched")
    before = publish_calls()
    live_events.publish("pub.unwatched", {"seq": 1, "event": "x", "data": {}})
    live_events.publish("pub.watched", {"seq": 2, "event": "x", "data": {"k": "v"}})
    assert live_events.flush_published(10)
    assert publish_calls() - before == 2
    assert receive() == {"seq": 2, "event": "x", "data": {"k": "v"}}


def test_the_publisher_outlives_a_batch_that_breaks(redis_follower, monkeypatch):
    receive = redis_follower("pub.after-a-bug")
    real_send_batch = publisher.Publisher.send_batch
    failures = []

    def broken_once(client, batch):
        if not failures:
            failures.append(batch)
            raise redis.ConnectionError("Redis went away for a moment")
        real_send_batch(client, batch)

    monkeypatch.setattr(publisher.Publisher, "send_batch", staticmethod(broken_once))
    live_events.publish("pub.after-a-bug", {"seq": 1, "event": "x", "data": {}})
    assert live_events.flush_published(10)
    live_events.publish("pub.after-a-bug", {"seq": 2, "event": "x", "data": {}})
    assert live_events.flush_published(10)
    assert receive()["seq"] == 2  # 1 was lost in transit; followers read it from the database


def test_followers_in_one_process_share_one_subscription():
    group = "pub.shared"

    async def scenario() -> tuple[list[list[object]], int, int]:
        subscriptions = [Subscription(group) for _ in range(3)]
        assert all(await asyncio.gather(*(s.open() for s in subscriptions)))
        processes = await asyncio.to_thread(subscribed_processes, group)
        await asyncio.to_thread(
            lambda: (
                live_events.publish(group, {"seq": 7, "event": "x", "data": {}}),
                live_events.flush_published(10),
            )
        )
        received = []
        for subscription in subscriptions:
            async with asyncio.timeout(10):
                received.append([await subscription.inbox.get()])
        await subscriptions[0].close()
        still = follower_count(group)
        await asyncio.gather(*(s.close() for s in subscriptions[1:]))
        return received, processes, still

    received, processes, still = run_in_server_loop(scenario())
    assert processes == 1
    assert received == [[StoredEvent(7, "x", {})]] * 3
    assert still == 2
    assert follower_count(group) == 0
    assert wait_until(lambda: subscribed_processes(group) == 0)


def test_lent_writers_get_events_directly_and_a_failed_write_wakes_the_follower():
    """A follower that lent the hub a writer gets published events through it, not its inbox;
    when a write fails (the client went away), the follower is woken to find out."""
    group = "pub.writers"

    class Recording:
        def __init__(self, fail: bool) -> None:
            self.fail = fail
            self.written: list[int] = []

        def offer(self, event: StoredEvent):
            async def write() -> None:
                self.written.append(event.seq)
                if self.fail:
                    raise OSError("connection reset")

            return write()

    async def scenario() -> tuple[list[int], list[int], list[object], bool]:
        working, broken = Subscription(group), Subscription(group)
        assert await working.open() and await broken.open()
        good, bad = Recording(fail=False), Recording(fail=True)
        assert working.lend(good) and broken.lend(bad)
        await asyncio.to_thread(
            lambda: (
                live_events.publish(group, {"seq": 1, "event": "x", "data": {}}),
                live_events.flush_published(10),
            )
        )
        async with asyncio.timeout(10):
            woken = await broken.inbox.get()
        await asyncio.sleep(0.05)
        quiet = working.inbox.empty()
        await asyncio.gather(working.close(), broken.close())
        return good.written, bad.written, [woken], quiet

    good, bad, woken, quiet = run_in_server_loop(scenario())
    assert good == [1] and bad == [1]
    assert woken == [RESYNC]
    assert quiet  # the working follower's inbox (and task) was never involved


def test_the_loop_runs_a_pass_between_batches_of_direct_writes():
    """With many writers the hub lets the event loop run a pass every WRITES_PER_LOOP_PASS
    writes (so a server that sends on its next pass sends the first clients' bytes early); a
    follower that takes its writer back during such a pass gets the event in its inbox
    instead, and no follower misses it or gets it twice."""
    group = "pub.batches"
    followers = 2 * WRITES_PER_LOOP_PASS + 8

    async def scenario() -> tuple[dict[int, list[int]], dict[int, list[object]]]:
        loop = asyncio.get_running_loop()
        subscriptions = [Subscription(group) for _ in range(followers)]
        assert all(await asyncio.gather(*(s.open() for s in subscriptions)))
        written: dict[int, list[int]] = {}

        async def nothing_to_wait_for() -> None:
            return None

        class Recording:
            def __init__(self, index: int) -> None:
                self.index = index

            def offer(self, event: StoredEvent):
                if not written:
                    # Whoever is not written before the loop's next pass takes its writer
                    # back in that pass, as a follower woken by something else would.
                    for other in subscriptions:
                        loop.call_soon(other.take_back)
                written.setdefault(self.index, []).append(event.seq)
                return nothing_to_wait_for()

        for index, subscription in enumerate(subscriptions):
            assert subscription.lend(Recording(index))
        await asyncio.to_thread(
            lambda: (
                live_events.publish(group, {"seq": 1, "event": "x", "data": {}}),
                live_events.flush_published(10),
            )
        )

        def reached() -> int:
            return sum(map(len, written.values())) + sum(s.inbox.qsize() for s in subscriptions)

        async with asyncio.timeout(10):
            while reached() < followers:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # anything more (a duplicate) would have arrived by now
        queued = {
            index: [s.inbox.get_nowait() for _ in range(s.inbox.qsize())]
            for index, s in enumerate(subscriptions)
            if s.inbox.qsize()
        }
        await asyncio.gather(*(s.close() for s in subscriptions))
        return written, queued

    written, queued = run_in_server_loop(scenario())
    assert len(written) == WRITES_PER_LOOP_PASS  # the first batch, before the loop's pass
    assert all(seqs == [1] for seqs in written.values())
    assert set(queued) == set(range(followers)) - set(written)
    assert all(items == [StoredEvent(1, "x", {})] for items in queued.values())


def test_a_malformed_message_is_ignored():
    group = "pub.malformed"

    async def scenario() -> object:
        subscription = Subscription(group)
        assert await subscription.open()
        try:
            client = redis.asyncio.Redis.from_url(settings.REDIS_URL)
            await client.publish(publisher.channel_name(group), b"not json")
            await client.publish(
                publisher.channel_name(group),
                publisher.encode({"seq": 1, "event": "x", "data": {}}),
            )
            await client.aclose()
            async with asyncio.timeout(10):
                return await subscription.inbox.get()
        finally:
            await subscription.close()

    assert run_in_server_loop(scenario()) == StoredEvent(1, "x", {})


def kill_subscribers() -> int:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return int(client.execute_command("CLIENT", "KILL", "TYPE", "pubsub"))
    finally:
        client.close()


def test_after_a_lost_connection_followers_are_told_to_re_read():
    group = "pub.reconnect"

    async def scenario() -> list[object]:
        subscription = Subscription(group)
        assert await subscription.open()
        try:
            assert await asyncio.to_thread(kill_subscribers) >= 1
            async with asyncio.timeout(10):
                marker = await subscription.inbox.get()  # subscribed again: re-read
            await asyncio.to_thread(
                lambda: (
                    live_events.publish(group, {"seq": 3, "event": "x", "data": {}}),
                    live_events.flush_published(10),
                )
            )
            async with asyncio.timeout(10):
                event = await subscription.inbox.get()
            return [marker, event, subscription.live]
        finally:
            await subscription.close()

    assert run_in_server_loop(scenario()) == [RESYNC, StoredEvent(3, "x", {}), True]


@pytest.mark.django_db(transaction=True)
def test_a_stream_re_reads_the_database_when_its_process_reconnects(monkeypatch):
    """An event lost in transit while the connection was down arrives when the process has
    subscribed again, long before the next heartbeat."""
    import config.sse as sse
    from dags.events import emit_execution_event

    execution = DagExecutionFactory(status="running")

    async def scenario() -> list[bytes]:
        frames: list[bytes] = []
        stream = sse.follow(EXECUTION_EVENTS, execution.id, 0, heartbeat=60)
        try:
            async with asyncio.timeout(20):
                frames.append(await anext(stream))  # the snapshot: subscribed by now

                def lose_an_event_then_the_connection() -> None:
                    with monkeypatch.context() as patch:
                        patch.setattr(publisher, "publish", lambda group, message: None)
                        emit_execution_event(
                            execution_id=execution.id,
                            type="substep.started",
                            payload={"subStepId": "001", "description": "d"},
                        )
                    assert kill_subscribers() >= 1

                await asyncio.to_thread(lose_an_event_then_the_connection)
                frames.append(await anext(stream))
        finally:
            await stream.aclose()
        return frames

    frames = run_in_server_loop(scenario(), timeout=30)
    assert frames[1].startswith(b"id: 1\nevent: substep.started\n")


def client_ids(*, subscribed: bool = False) -> set[str]:
    """Ids of the Redis connections open now (only those subscribed to a channel, with
    `subscribed`), not counting the one asking."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        own = str(client.client_id())
        return {
            str(entry["id"])
            for entry in client.client_list()
            if str(entry["id"]) != own and (not subscribed or int(entry.get("sub", 0)) > 0)
        }
    finally:
        client.close()


def publish_now(group: str, seq: int) -> None:
    live_events.publish(group, {"seq": seq, "event": "x", "data": {}})
    assert live_events.flush_published(10)


def test_a_follower_after_the_last_one_left_reuses_the_process_connection():
    """A stream opened after the previous one ended subscribes on the connection the process
    already has: no new connection to Redis (and none of the cost of opening one)."""

    async def scenario() -> tuple[set[str], object]:
        first = Subscription("pub.idle-first")
        assert await first.open()
        await first.close()
        before = await asyncio.to_thread(client_ids)
        second = Subscription("pub.idle-second")
        assert await second.open()
        try:
            opened = await asyncio.to_thread(client_ids) - before
            await asyncio.to_thread(publish_now, "pub.idle-second", 4)
            async with asyncio.timeout(10):
                return opened, await second.inbox.get()
        finally:
            await second.close()

    opened, received = run_in_server_loop(scenario())
    assert opened == set()
    assert received == StoredEvent(4, "x", {})


def kill_client(client_id: str) -> int:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return int(client.client_kill_filter(_id=client_id))
    finally:
        client.close()


def idle_connection(group: str) -> str:
    """Follow `group` and stop: the id of the connection the process keeps afterwards."""

    async def scenario() -> set[str]:
        subscription = Subscription(group)
        assert await subscription.open()
        carrying = await asyncio.to_thread(client_ids, subscribed=True)
        await subscription.close()
        return carrying

    carrying = run_in_server_loop(scenario())
    assert len(carrying) == 1
    return next(iter(carrying))


def test_an_idle_connection_is_let_go_after_a_while(monkeypatch):
    from config.live_events import hub

    monkeypatch.setattr(hub, "IDLE_SECONDS", 0.2)
    kept = idle_connection("pub.idle-let-go")
    assert wait_until(lambda: kept not in client_ids())


def follow_and_receive(group: str, seq: int) -> object:
    """Follow `group`, publish one event on it, and return what arrives first."""

    async def scenario() -> object:
        subscription = Subscription(group)
        assert await subscription.open()
        try:
            await asyncio.to_thread(publish_now, group, seq)
            async with asyncio.timeout(10):
                return await subscription.inbox.get()
        finally:
            await subscription.close()

    return run_in_server_loop(scenario())


def test_an_idle_connection_that_breaks_is_let_go_quietly(caplog):
    """Nobody follows anything on it: no warning and no reconnecting; the next follower gets a
    new connection."""
    caplog.set_level("DEBUG", logger="config.live_events.hub")
    assert kill_client(idle_connection("pub.idle-broken")) == 1
    assert wait_until(
        lambda: any("idle live events connection" in r.message for r in caplog.records)
    )
    assert follow_and_receive("pub.idle-broken", 9) == StoredEvent(9, "x", {})
    assert not [record for record in caplog.records if record.levelname == "WARNING"]
