"""Durable live events: one way to store and publish them, one way to follow them.

An *event store* keeps the events of one kind of subject (a DAG execution, a goal run) in the
database with a per-subject sequence number, and publishes each event on commit to the subject's
group on the Channels layer (Redis). Followers (the SSE views and the WebSocket consumers)
subscribe to the group *before* reading the stored events, then drop live events they already
sent and re-read from the database when they notice a gap, so a subscriber that arrives late,
reconnects or loses a message on the layer still receives every event exactly once, in order.

The database is the source of truth; the layer is only transport. Nothing here keeps state that
another web or worker process would need to see.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import logging
import os
import re
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import orjson
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection, models, transaction
from django.utils.timezone import now

from config.access import acting_user, visible_to
from config.api.formatting import epoch_ms
from config.api.renderers import dumps
from config.db import insert_row, write_transaction
from config.errors import NotFound

logger = logging.getLogger(__name__)

# Channels message type of a published event; consumers handle it in `live_event()`.
LAYER_MESSAGE_TYPE = "live.event"
# A subject whose status is final but whose last event is not terminal (the terminal event may be
# a moment behind the status change, or was pruned) counts as settled after this long.
SETTLE_GRACE = timedelta(seconds=5)
# How long an emitter waits for the layer to accept a published event.
PUBLISH_TIMEOUT_SECONDS = 5.0

_GROUP_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,90}$")


@dataclass(frozen=True)
class EventLayout:
    """Where an event's own keys go on the wire: `leading` before `timestamp`, `trailing` after."""

    leading: tuple[str, ...] = ()
    trailing: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class FeedState:
    """What a follower needs at one moment: the snapshot, the events after a position, and
    whether the subject is finished with nothing more to come."""

    snapshot: dict[str, Any]
    events: list[StoredEvent]
    last_seq: int
    settled: bool


@dataclass
class EventStore:
    """Storage, wire format and publication of one kind of subject's events.

    `subject_model` has `status` and `last_event_seq`; `event_model` has a FK named
    `subject_field` to it plus `seq`, `type`, `payload` and `created_at`.
    """

    name: str
    subject_model: type[models.Model]
    event_model: type[models.Model]
    subject_field: str
    subject_key: str
    layouts: Mapping[str, EventLayout]
    terminal_types: frozenset[str]
    final_statuses: frozenset[str]
    snapshot_type: str
    snapshot_fields: Callable[[Any], dict[str, Any]]
    not_found_message: Callable[[str], str]
    settle_grace: timedelta = field(default=SETTLE_GRACE)

    # --- wire format ----------------------------------------------------------------------------

    def wire(self, event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """The event in the original's key order: `type`, the subject id, the layout's leading
        keys, `timestamp`, the trailing keys, then any other keys in the order given.

        Applied on every send, because PostgreSQL's jsonb does not keep the stored key order.
        """
        layout = self.layouts.get(event_type, EventLayout())
        ordered: dict[str, Any] = {"type": event_type, self.subject_key: data.get(self.subject_key)}
        for key in layout.leading:
            ordered[key] = data.get(key)
        ordered["timestamp"] = data.get("timestamp")
        for key in layout.trailing:
            ordered[key] = data.get(key)
        for key, value in data.items():
            if key not in ordered:
                ordered[key] = value
        return ordered

    def group_name(self, subject_id: str) -> str:
        """The subject's group on the Channels layer (whose names allow only [A-Za-z0-9._-])."""
        name = f"{self.name}.{subject_id}"
        if _GROUP_NAME_RE.match(name):
            return name
        return f"{self.name}.h.{hashlib.sha256(subject_id.encode()).hexdigest()[:40]}"

    def visible(self, subject_id: str, viewer: Any) -> bool:
        """Whether `viewer` may follow the subject (config/access.py's rule on its `owner`).

        Streams answer a subject the viewer may not see exactly as a missing one.
        """
        subjects = self.subject_model.objects.filter(pk=subject_id)
        return visible_to(subjects, viewer).exists()

    def visible_to_user(self, subject_id: str, user: Any) -> bool:
        """`visible` for a stream's authenticated user (or the anonymous user when the API's
        authentication is off, acting as the trusted local user). Synchronous: it may query."""
        return self.visible(subject_id, acting_user(user))

    # --- writing --------------------------------------------------------------------------------

    def emit(self, *, subject_id: str, event_type: str, payload: Mapping[str, Any] | None) -> Any:
        """Store the event with the subject's next sequence number and publish it on commit.

        Runs inside the caller's transaction when there is one (the event then becomes visible,
        and is published, only if that transaction commits), otherwise in its own.
        """
        if event_type not in self.layouts:
            raise ValueError(f"unknown {self.name} event type {event_type!r}")
        given = dict(payload or {})
        layout = self.layouts[event_type]
        missing = [key for key in (*layout.leading, *layout.trailing) if key not in given]
        if missing:
            logger.warning("%s event %s emitted without %s", self.name, event_type, missing)
        # Inside the caller's transaction the statements simply join it: a savepoint would only
        # add two statements per event, and an error here fails the caller's change anyway.
        scope = contextlib.nullcontext() if connection.in_atomic_block else write_transaction()
        with scope:
            seq = self._next_seq(subject_id)
            if seq is None:
                raise NotFound(self.not_found_message(subject_id))
            created_at = now()
            given.update(
                {
                    "type": event_type,
                    self.subject_key: subject_id,
                    "timestamp": epoch_ms(created_at),
                }
            )
            # Through JSON once, so live and replayed copies are identical (Decimal, datetime...).
            data = self.wire(event_type, orjson.loads(dumps(given)))
            event = self._insert(subject_id, seq, event_type, data, created_at)
            message = {"type": LAYER_MESSAGE_TYPE, "seq": seq, "event": event_type, "data": data}
            transaction.on_commit(partial(publish, self.group_name(subject_id), message))
        return event

    def _insert(
        self, subject_id: str, seq: int, event_type: str, data: dict[str, Any], created_at
    ) -> Any:
        """Store the event in SQL: the ORM's create cost ten times the statement itself, and
        every DAG node stores two events."""
        values = {
            f"{self.subject_field}_id": subject_id,
            "seq": seq,
            "type": event_type,
            "payload": data,
            "created_at": created_at,
        }
        pk = insert_row(self.event_model, values)
        return self.event_model(pk=pk, **values)

    def _next_seq(self, subject_id: str) -> int | None:
        """Take the subject's next sequence number (None when the subject does not exist).

        One statement that increments and returns, so it also locks the row until commit
        (UPDATE ... RETURNING: SQLite 3.35+ and PostgreSQL). Events are stored for every step
        of every node, so the usual read-then-update pair was worth folding.
        """
        meta = self.subject_model._meta
        quote = connection.ops.quote_name
        table, key = quote(meta.db_table), quote(meta.pk.column)
        seq = quote(meta.get_field("last_event_seq").column)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {seq} = {seq} + 1 WHERE {key} = %s RETURNING {seq}",
                [subject_id],
            )
            row = cursor.fetchone()
        return None if row is None else row[0]

    # --- reading --------------------------------------------------------------------------------

    def read(self, subject_id: str, after_seq: int) -> FeedState | None:
        """The snapshot and the stored events after `after_seq` (None when the subject is gone)."""
        subject = self.subject_model.objects.filter(pk=subject_id).first()
        if subject is None:
            return None
        # Everything below is bounded by the sequence number read with the subject: events up to
        # it were committed with (or before) that row. An event committed after the subject was
        # read must not count here, or a terminal event could make the feed "settled" without
        # being among the events returned, and the follower would stop one event short.
        last_seq = subject.last_event_seq
        own_events = self.event_model.objects.filter(
            **{f"{self.subject_field}_id": subject_id}, seq__lte=last_seq
        )
        events = [
            StoredEvent(e.seq, e.type, self.wire(e.type, e.payload))
            for e in own_events.filter(seq__gt=after_seq).order_by("seq")
        ]
        last = own_events.order_by("-seq").values_list("type", "created_at").first()
        snapshot = self.wire(
            self.snapshot_type,
            {
                self.subject_key: subject_id,
                "timestamp": epoch_ms(now()),
                **self.snapshot_fields(subject),
            },
        )
        return FeedState(
            snapshot=snapshot,
            events=events,
            last_seq=last_seq,
            settled=self._settled(subject.status, last),
        )

    def _settled(self, status: str, last: tuple[str, Any] | None) -> bool:
        """Finished, with no further event to expect."""
        if last is not None and last[0] in self.terminal_types:
            return True
        if status not in self.final_statuses:
            return False
        return last is None or last[1] <= now() - self.settle_grace


# --- publishing ----------------------------------------------------------------------------------


class _Publisher:
    """One event loop thread per process that publishes to the Channels layer, in order.

    Callers hand an event over and go on: a DAG node does not wait for Redis before its LLM
    call, nor a finishing node before the next one. The loop takes the events handed over so
    far as one batch, asks the layer once which of their groups anyone follows, and sends to
    those only, one event at a time in the order they were handed over, so each thread's events
    leave in commit order. An event nobody follows costs one Redis round trip instead of two,
    and a burst that piles up while the loop is busy costs one in all. Reusing a loop keeps the
    layer's Redis connection open between events. Events still queued when the process exits
    are flushed for a moment (`flush`); any lost anyway are in the database, where followers
    find them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._drainer: asyncio.Task | None = None  # referenced, so it is never collected
        self._pid: int | None = None
        # Guards the fields below; also signalled when everything handed over has been sent.
        self._idle = threading.Condition()
        self._pending: list[tuple[Any, str, dict[str, Any]]] = []
        self._unsent = 0
        self._draining = False

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or not self._loop.is_running():
                loop = asyncio.new_event_loop()
                started = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    self._wakeup = asyncio.Event()
                    self._drainer = loop.create_task(self._drain())
                    loop.call_soon(started.set)
                    loop.run_forever()

                with self._idle:  # events of a parent process or a stopped loop are not ours
                    self._pending, self._unsent, self._draining = [], 0, False
                threading.Thread(target=run, name="live-events-publisher", daemon=True).start()
                started.wait(5)
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def send(self, group: str, message: dict[str, Any]) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        loop = self._ensure_loop()
        with self._idle:
            self._pending.append((layer, group, message))
            self._unsent += 1
            wake = not self._draining
            self._draining = True
        if wake:  # the loop is asleep: one wake-up, however many events follow before it runs
            loop.call_soon_threadsafe(self._wakeup.set)

    async def _drain(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while True:
                with self._idle:
                    batch, self._pending = self._pending, []
                    if not batch:
                        self._draining = False
                        break
                try:
                    await self._send_batch(batch)
                except Exception:  # never let the drainer die: later events would wait forever
                    logger.exception("could not publish %d events", len(batch))
                finally:
                    with self._idle:
                        self._unsent -= len(batch)
                        if self._unsent <= 0:
                            self._idle.notify_all()

    async def _send_batch(self, batch: list[tuple[Any, str, dict[str, Any]]]) -> None:
        followed: dict[int, set[str] | None] = {}  # by layer; None: group_send decides
        for layer, group, message in batch:
            key = id(layer)
            if key not in followed:
                its_groups = {g for other, g, _ in batch if other is layer}
                followed[key] = await self._followed_groups(layer, its_groups)
            if followed[key] is not None and group not in followed[key]:
                continue
            try:
                async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                    await layer.group_send(group, message)
            except Exception:
                logger.warning(
                    "could not publish event %s to %s", message.get("seq"), group, exc_info=True
                )

    @staticmethod
    async def _followed_groups(layer: Any, groups: set[str]) -> set[str] | None:
        ask = getattr(layer, "groups_with_members", None)
        if ask is None:  # another layer (in-memory in some set-ups): group_send decides
            return None
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
                return await ask(groups)
        except Exception:
            logger.warning("could not look up followed event groups", exc_info=True)
            return None

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until every event handed over so far has been sent (or failed)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unsent <= 0, timeout)


_publisher = _Publisher()
# A short-lived process (a management command) may end right after its last event.
atexit.register(_publisher.flush)


def publish(group: str, message: dict[str, Any]) -> None:
    """Hand a stored event over for sending to its group; never blocks on Redis. A failure is
    logged, never raised: the event is in the database and followers pick it up on their next
    gap check or heartbeat."""
    try:
        _publisher.send(group, message)
    except Exception:
        logger.warning("could not publish event %s to %s", message.get("seq"), group, exc_info=True)


def flush_published(timeout: float = 2.0) -> bool:
    """Wait until the events handed to `publish` so far have left (for tests and shutdown)."""
    return _publisher.flush(timeout)


# --- following -----------------------------------------------------------------------------------


class Follower:
    """One subscriber's position in a subject's event sequence.

    Live events at or below the position are dropped (already sent from the replay or twice on
    the layer); a live event beyond the next number means something was missed, so the missing
    ones are read from the database first.
    """

    def __init__(self, store: EventStore, subject_id: str, position: int) -> None:
        self.store = store
        self.subject_id = subject_id
        self.position = position
        self.finished = False

    def accept(self, events: Iterable[StoredEvent]) -> list[StoredEvent]:
        fresh = []
        for event in events:
            if event.seq > self.position:
                fresh.append(event)
                self.position = event.seq
        return fresh

    async def on_message(self, message: Mapping[str, Any]) -> list[StoredEvent]:
        try:
            live = StoredEvent(int(message["seq"]), str(message["event"]), dict(message["data"]))
        except (KeyError, TypeError, ValueError):
            logger.warning("ignoring malformed %s layer message", self.store.name)
            return []
        if live.seq <= self.position:
            return []
        if live.seq == self.position + 1:
            return self.accept([live])
        events = await self.catch_up()
        if live.seq > self.position:
            # Not in the database (yet): deliver rather than lose it.
            logger.warning(
                "%s %s: event %s arrived before %s",
                self.store.name,
                self.subject_id,
                live.seq,
                self.position + 1,
            )
            events += self.accept([live])
        return events

    async def catch_up(self) -> list[StoredEvent]:
        """Stored events after the position; marks the follower finished when the subject is
        gone or settled with nothing left."""
        state = await database_sync_to_async(self.store.read)(self.subject_id, self.position)
        if state is None:
            self.finished = True
            return []
        events = self.accept(state.events)
        if state.settled and self.position >= state.last_seq:
            self.finished = True
        return events

    def ends_with_terminal(self, events: list[StoredEvent]) -> bool:
        return bool(events) and events[-1].type in self.store.terminal_types


# Group membership changes share the layer's Redis connection pool (100 connections by default)
# with everything else in the process; a burst of new subscribers waits its turn here instead of
# failing with "Too many connections".
LAYER_CALL_CONCURRENCY = 16
LAYER_CALL_ATTEMPTS = 4
_layer_call_limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def layer_call(method: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Call a channel layer method with bounded concurrency, retrying brief failures."""
    loop = asyncio.get_running_loop()
    limit = _layer_call_limits.get(loop)
    if limit is None:
        limit = _layer_call_limits[loop] = asyncio.Semaphore(LAYER_CALL_CONCURRENCY)
    delay = 0.05
    for attempt in range(1, LAYER_CALL_ATTEMPTS + 1):
        try:
            async with limit:
                return await method(*args)
        except Exception:
            if attempt == LAYER_CALL_ATTEMPTS:
                raise
            await asyncio.sleep(delay)
            delay *= 2
    return None


class Subscription:
    """Membership of one private channel in a subject's group, with a task that moves the
    channel's messages into a bounded inbox (a full inbox drops messages; the follower's gap
    check recovers them from the database)."""

    INBOX_SIZE = 1000

    def __init__(self, group: str) -> None:
        self.group = group
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.INBOX_SIZE)
        self._pump: asyncio.Task | None = None

    async def open(self) -> bool:
        """Join the group; False (the follower then polls the database) when the layer is
        unavailable."""
        if self.layer is None:
            return False
        try:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
            await layer_call(self.layer.group_add, self.group, self.channel)
        except Exception:
            logger.warning(
                "channel layer unavailable; following %s by polling", self.group, exc_info=True
            )
            return False
        self._pump = asyncio.create_task(self._run())
        return True

    @property
    def live(self) -> bool:
        return self._pump is not None and not self._pump.done()

    async def _run(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception:
                # The follower notices (`live` turns false) and polls the database instead.
                logger.warning(
                    "lost the channel layer while following %s", self.group, exc_info=True
                )
                return
            try:
                self.inbox.put_nowait(message)
            except asyncio.QueueFull:
                logger.warning("inbox of %s full; dropping a live event", self.group)

    async def refresh(self) -> None:
        """Renew the membership, which the Redis layer expires after `group_expiry`, or try
        again to subscribe after the layer was unavailable."""
        if not self.live:
            await self.open()
            return
        try:
            await layer_call(self.layer.group_add, self.group, self.channel)
        except Exception:
            logger.warning("could not renew membership of %s", self.group, exc_info=True)

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self.channel is not None:
            try:
                await asyncio.wait_for(
                    layer_call(self.layer.group_discard, self.group, self.channel), 10
                )
            except Exception:
                logger.warning("could not leave %s", self.group, exc_info=True)
            self.channel = None
