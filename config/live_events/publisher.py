"""Publishing stored events on Redis pub/sub from one thread per process, in order, without
making the emitter wait."""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from typing import Any

import orjson
import redis
from django.conf import settings

logger = logging.getLogger(__name__)

# Redis pub/sub channels of live events: this prefix + the store's group name.
CHANNEL_PREFIX = "aa:live:"

# How long the publisher waits for Redis to take a batch of events.
PUBLISH_TIMEOUT_SECONDS = 5.0


def channel_name(group: str) -> str:
    return CHANNEL_PREFIX + group


def encode(message: dict[str, Any]) -> bytes:
    """The bytes published for a stored event (`seq`, `event`, `data`); see hub.decode."""
    return orjson.dumps(message)


class Publisher:
    """One thread per process that publishes to Redis, in the order events were handed over.

    Callers hand an event over and go on: a DAG node does not wait for Redis before its LLM
    call, nor a finishing node before the next one. The thread takes every event handed over so
    far and publishes them in one pipelined round trip, in order, so each thread's events leave
    in commit order. A PUBLISH to a subject nobody follows is dropped by Redis: there is nothing
    to look up first. Events still queued when the process exits are flushed for a moment
    (`flush`); any lost anyway are in the database, where followers find them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (group, the messages of one commit) in order, or a flush marker.
        self._queue: queue.SimpleQueue[tuple[str, tuple[dict[str, Any], ...]] | threading.Event] = (
            queue.SimpleQueue()
        )
        self._pid: int | None = None

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            # Events of a parent process (before a fork) are not ours to send.
            self._queue = queue.SimpleQueue()
            client = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_timeout=PUBLISH_TIMEOUT_SECONDS,
                socket_connect_timeout=PUBLISH_TIMEOUT_SECONDS,
            )
            threading.Thread(
                target=self._run,
                args=(self._queue, client),
                name="live-events-publisher",
                daemon=True,
            ).start()
            self._pid = os.getpid()

    def send(self, group: str, messages: tuple[dict[str, Any], ...]) -> None:
        # Only one put on a lock-free queue per commit (each put may wake the thread): this runs
        # in every node's commit.
        self._ensure_thread()
        self._queue.put((group, messages))

    def _run(self, pending: queue.SimpleQueue, client: redis.Redis) -> None:
        while True:
            taken = [pending.get()]
            while True:
                try:
                    taken.append(pending.get_nowait())
                except queue.Empty:
                    break
            batch: list[tuple[str, dict[str, Any]]] = []
            for item in taken:
                if not isinstance(item, threading.Event):
                    group, messages = item
                    batch.extend((group, message) for message in messages)
            try:
                if batch:
                    self.send_batch(client, batch)
            except Exception:  # never let the thread die: later events would wait forever
                logger.warning("could not publish %d live events", len(batch), exc_info=True)
            finally:
                # Flush markers: everything handed over before them has been sent (or failed).
                for item in taken:
                    if isinstance(item, threading.Event):
                        item.set()

    @staticmethod
    def send_batch(client: redis.Redis, batch: list[tuple[str, dict[str, Any]]]) -> None:
        pipe = client.pipeline(transaction=False)
        for group, message in batch:
            pipe.publish(channel_name(group), encode(message))
        pipe.execute()

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until every event handed over so far has been sent (or failed)."""
        if self._pid != os.getpid():
            return True  # nothing was handed over in this process
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)


_publisher = Publisher()
# A short-lived process (a management command) may end right after its last event.
atexit.register(_publisher.flush)


def publish(group: str, *messages: dict[str, Any]) -> None:
    """Hand stored events (`seq`, `event`, `data`) of one subject over for publishing to its
    group, in order; never blocks on Redis. A failure is logged, never raised: the events are in
    the database and followers pick them up on their next gap check or heartbeat."""
    try:
        _publisher.send(group, messages)
    except Exception:
        seqs = [message.get("seq") for message in messages]
        logger.warning("could not publish events %s to %s", seqs, group, exc_info=True)


def flush_published(timeout: float = 2.0) -> bool:
    """Wait until the events handed to `publish` so far have left (for tests and shutdown)."""
    return _publisher.flush(timeout)
