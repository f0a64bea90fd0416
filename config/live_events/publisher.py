"""Publishing stored events to the Channels layer (Redis) from one event-loop thread per
process, in order, without making the emitter wait."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from typing import Any, cast

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

# How long an emitter waits for the layer to accept a published event.
PUBLISH_TIMEOUT_SECONDS = 5.0


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
            # `_ensure_loop` has created the event (cast: the attribute starts as None).
            loop.call_soon_threadsafe(cast(asyncio.Event, self._wakeup).set)

    async def _drain(self) -> None:
        while True:
            # Created before this task was (cast: the attribute starts as None).
            await cast(asyncio.Event, self._wakeup).wait()
            cast(asyncio.Event, self._wakeup).clear()
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
            groups = followed[key]
            if groups is not None and group not in groups:
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
