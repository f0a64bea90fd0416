"""Receiving published events: one Redis pub/sub connection per process, shared by every local
follower of every subject.

Each web process subscribes once to the channel of each subject that at least one of its
streams follows, and hands every message to those streams' inboxes. Redis pushes a published
event straight to the subscribed processes (no polling, no per-follower Redis state), and a
subject nobody follows costs its publisher one PUBLISH that goes nowhere.

Pub/sub delivers at most once: while the connection is down, messages are lost. Followers
therefore treat the hub as a wake-up only. They read the stored events from the database when
they subscribe, after a gap, on every heartbeat, and when the hub tells them (`RESYNC`) that it
has reconnected and may have missed something.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import Awaitable
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import RedisError

from config.live_events.publisher import channel_name
from config.live_events.store import StoredEvent

logger = logging.getLogger(__name__)

# How long a new follower waits for Redis to confirm its subscription before it falls back to
# polling the database.
SUBSCRIBE_TIMEOUT_SECONDS = 5.0
# Pause before reconnecting after the connection broke, doubled up to the maximum.
RECONNECT_DELAY_SECONDS = 0.1
RECONNECT_DELAY_MAX_SECONDS = 5.0
# A follower's inbox; when full, later messages are dropped and the follower catches up from
# the database instead.
INBOX_SIZE = 1000
# How long a hub keeps its Redis connection once its last follower has left. Opening one costs
# more than the rest of a stream's start (a connection, its handshake, and redis-py reading its
# own package metadata for the client name), and pages and clients often open a stream right
# after another one ended; an idle connection costs Redis nothing but a socket.
IDLE_SECONDS = 30.0
# Direct writes the hub makes before it lets the event loop run a pass. An ASGI server may only
# buffer a write and send it on the loop's next pass (daphne does), so without a pass no client
# gets an event until it has been written for every follower in the process.
WRITES_PER_LOOP_PASS = 16


class _Resync:
    """Inbox marker: the hub may have missed messages; re-read the database."""

    def __repr__(self) -> str:
        return "RESYNC"


RESYNC = _Resync()


def decode(payload: bytes) -> StoredEvent | None:
    """A published message (see publisher.encode) as the event it carries; None if malformed."""
    try:
        message = orjson.loads(payload)
        return StoredEvent(int(message["seq"]), str(message["event"]), dict(message["data"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        logger.warning("ignoring a malformed live event message")
        return None


class HubClosed(Exception):
    """The hub let its connection go (its last follower left) while another was joining."""


class Writer(Protocol):
    """Writes a follower's published events itself, from the hub's task (see Listener.writer)."""

    def offer(self, event: StoredEvent) -> Awaitable[object] | None:
        """The write of `event` for the hub to await; None when there is nothing to write now
        (a copy already sent, or the writer handed the event to the inbox and let go)."""
        ...


class Listener:
    """One follower's membership: its inbox of events (and markers such as `RESYNC`).

    While `writer` is set, published events go to it instead of the inbox: the hub's task
    writes them to every such follower in turn, without waking the followers' own tasks (with
    many clients on one subject, one wake-up per event rather than one per client). A follower
    sets it only while its inbox is empty and it waits on it; anything put in the inbox takes
    it away again, so events never overtake what is already waiting there.
    """

    def __init__(self, group: str) -> None:
        self.group = group
        self.channel = channel_name(group)
        self.inbox: asyncio.Queue[object] = asyncio.Queue()
        self.writer: Writer | None = None

    def put(self, item: object) -> None:
        """Events beyond INBOX_SIZE are dropped (the follower's gap check recovers them);
        markers always go in."""
        self.writer = None
        if isinstance(item, StoredEvent) and self.inbox.qsize() >= INBOX_SIZE:
            logger.warning("inbox of %s full; dropping a live event", self.group)
            return
        self.inbox.put_nowait(item)


class Hub:
    """The subscriptions of one event loop (a daphne process has one) on one Redis connection."""

    def __init__(self, url: str) -> None:
        self._client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
        self._pubsub: Any = self._client.pubsub()
        self._listeners: dict[str, set[Listener]] = {}
        # Futures waiting for Redis to confirm a SUBSCRIBE, per channel, oldest first: Redis
        # answers each SUBSCRIBE once, in order.
        self._confirming: dict[str, deque[asyncio.Future[None]]] = {}
        # Channels subscribed again after a reconnect, whose followers must re-read.
        self._stale: set[str] = set()
        self._reader: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._closing: asyncio.Future[None] | None = None
        self._lock = asyncio.Lock()
        self.connected = False
        self.closed = False

    def follower_count(self, group: str, *, writing: bool = False) -> int:
        members = self._listeners.get(channel_name(group), ())
        if writing:
            return sum(1 for listener in members if listener.writer is not None)
        return len(members)

    async def join(self, listener: Listener) -> None:
        """Add the listener; returns once Redis has confirmed the subscription, so an event
        published from then on reaches it. Raises on a Redis error or timeout."""
        async with self._lock:
            if self.closed:
                raise HubClosed
            self._stop_idle_timer()
            if not self._listeners and self._reader is not None and self._reader.done():
                # The connection kept while nobody followed anything has broken (its reader
                # ended): a new hub makes a new one, and the caller joins that instead.
                await self._close()
                raise HubClosed
            members = self._listeners.setdefault(listener.channel, set())
            members.add(listener)
            waiting = self._confirming.get(listener.channel)
            if len(members) == 1:
                confirmed = asyncio.get_running_loop().create_future()
                self._confirming.setdefault(listener.channel, deque()).append(confirmed)
                try:
                    await self._pubsub.subscribe(listener.channel)
                except BaseException as error:
                    lost = isinstance(error, (RedisError, OSError))
                    if lost:
                        self._unwait(listener.channel, confirmed)
                    else:  # perhaps sent: its confirmation will come, and take this place
                        confirmed.cancel()
                    idle = len(self._listeners) == 1
                    await self._leave(listener)
                    if idle and isinstance(error, Exception):
                        # As above, found out only now (redis-py may fail in odd ways while its
                        # reader reconnects too).
                        await self._close()
                        raise HubClosed from error
                    raise
                if self._reader is None or self._reader.done():
                    self._reader = asyncio.create_task(self._read())
            elif waiting:  # another follower's subscription is still on its way
                confirmed = waiting[-1]
            else:
                return
        try:
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_SECONDS):
                await asyncio.shield(confirmed)
        except BaseException:
            await self.leave(listener)
            raise

    async def leave(self, listener: Listener) -> None:
        async with self._lock:
            await self._leave(listener)

    async def _leave(self, listener: Listener) -> None:
        members = self._listeners.get(listener.channel)
        if members is None or listener not in members:
            return
        members.discard(listener)
        if members:
            return
        del self._listeners[listener.channel]
        if self.closed:
            return
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.unsubscribe(listener.channel)
        if not self._listeners:
            # Nobody left on this loop: keep the connection for the next follower a while, then
            # let it go (and its reader task with it).
            self._idle = asyncio.get_running_loop().call_later(IDLE_SECONDS, self._idle_over)

    def _idle_over(self) -> None:
        """Let the connection go, unless a follower joins first."""
        self._stop_idle_timer()
        self._closing = asyncio.ensure_future(self._close_if_idle())

    async def _close_if_idle(self) -> None:
        async with self._lock:
            # A follower that came and went meanwhile started a new idle timer: that one decides.
            if not self._listeners and self._idle is None and not self.closed:
                await self._close()

    def _stop_idle_timer(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _unwait(self, channel: str, future: asyncio.Future[None]) -> None:
        waiting = self._confirming.get(channel)
        if waiting is not None and future in waiting:
            waiting.remove(future)
            if not waiting:
                del self._confirming[channel]

    async def _close(self) -> None:
        self.closed = True
        _forget(self)
        self._stop_idle_timer()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        for waiting in self._confirming.values():
            for future in waiting:
                future.cancel()
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()

    async def _read(self) -> None:
        delay = RECONNECT_DELAY_SECONDS
        while True:
            try:
                # Reconnecting (inside get_message) subscribes to every channel again.
                message = await self._pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except Exception:
                if not self._listeners:
                    # Idle: nothing to restore. The next follower makes a new connection.
                    logger.debug("the idle live events connection to Redis ended", exc_info=True)
                    self._idle_over()
                    return
                if self.connected:
                    logger.warning("lost the live events connection to Redis", exc_info=True)
                self._lost()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_DELAY_MAX_SECONDS)
                continue
            delay = RECONNECT_DELAY_SECONDS
            if message is not None:
                delivery = self._dispatch(message)
                if delivery is not None:
                    await self._deliver(*delivery)

    async def _deliver(self, event: StoredEvent, listeners: list[Listener]) -> None:
        """Hand a published event to each listener: written through its writer when it has
        lent one, else put in its inbox.

        Each write is awaited as soon as it is offered, so it is made while the writer still
        stands for a waiting follower (an ASGI server's `send` queues the bytes on its
        transport and returns; it does not wait for the client). Every WRITES_PER_LOOP_PASS
        writes the loop runs a pass, in which the server sends what has been queued so far:
        the first clients' bytes leave while the later ones are still being written. A
        follower whose task runs in that pass and takes its writer back gets the event in
        its inbox instead, as any follower without a writer does.
        """
        written = 0
        for listener in listeners:
            writer = listener.writer
            if writer is None:
                listener.put(event)
                continue
            write = writer.offer(event)
            if write is None:
                continue
            try:
                await write
            except Exception:
                # The client is most likely gone: its follower finds out on its own task.
                logger.debug("direct write to a follower of %s failed", listener.group)
                listener.put(RESYNC)
            written += 1
            if written % WRITES_PER_LOOP_PASS == 0:
                await asyncio.sleep(0)

    def _dispatch(self, message: dict[str, Any]) -> tuple[StoredEvent, list[Listener]] | None:
        """A published event and the listeners of its channel (to `_deliver` it to); other
        messages (subscription confirmations) are handled here."""
        kind = message["type"]
        channel = message["channel"]
        if isinstance(channel, bytes):
            channel = channel.decode()
        if kind == "message":
            members = self._listeners.get(channel)
            if members:
                event = decode(message["data"])
                if event is not None:
                    # A copy: followers may join or leave while the writes are on their way.
                    return event, list(members)
        elif kind == "subscribe":
            self.connected = True
            waiting = self._confirming.get(channel)
            if waiting:
                future = waiting.popleft()
                if not waiting:
                    del self._confirming[channel]
                if not future.done():
                    future.set_result(None)
            if channel in self._stale:
                self._stale.discard(channel)
                for listener in self._listeners.get(channel, ()):
                    listener.put(RESYNC)
        return None

    def _lost(self) -> None:
        """Every follower may miss events until the channels are subscribed again."""
        self.connected = False
        self._stale.update(self._listeners)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def _forget(hub: Hub) -> None:
    for loop, known in list(_hubs.items()):
        if known is hub:
            del _hubs[loop]


def hub() -> Hub:
    """This event loop's hub (made on first use)."""
    loop = asyncio.get_running_loop()
    current = _hubs.get(loop)
    if current is None or current.closed:
        current = _hubs[loop] = Hub(settings.REDIS_URL)
    return current


def follower_count(group: str, *, writing: bool = False) -> int:
    """Followers of `group` in this process, on every event loop (for tests and diagnostics);
    with `writing`, only those whose events the hub writes directly (Listener.writer)."""
    return sum(known.follower_count(group, writing=writing) for known in list(_hubs.values()))
