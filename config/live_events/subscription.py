"""A follower's subscription to its subject's published events (through the process's hub)."""

from __future__ import annotations

import asyncio
import logging

from config.live_events.hub import RESYNC, Hub, HubClosed, Listener, Writer, hub

logger = logging.getLogger(__name__)

__all__ = ["RESYNC", "TICK", "Subscription"]


class _Tick:
    """Inbox marker: a reminder the follower asked for (`Subscription.remind`)."""

    def __repr__(self) -> str:
        return "TICK"


TICK = _Tick()


class Subscription:
    """Membership of one follower in a subject's group. Published events land in `inbox`, with
    a `RESYNC` marker when some may have been missed (the follower then re-reads the database);
    a full inbox drops events, which the follower's gap check recovers the same way."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._listener = Listener(group)
        self._joined: Hub | None = None

    @property
    def inbox(self) -> asyncio.Queue[object]:
        return self._listener.inbox

    def put(self, item: object) -> None:
        """Put an item in the inbox (which also takes back a lent writer)."""
        self._listener.put(item)

    def lend(self, writer: Writer) -> bool:
        """Let the hub write published events through `writer` instead of queueing them, until
        something is put in the inbox or `take_back` is called. Only while the inbox is empty:
        otherwise new events would overtake the ones waiting there (False then)."""
        if not self._listener.inbox.empty():
            return False
        self._listener.writer = writer
        return True

    def take_back(self) -> None:
        self._listener.writer = None

    def remind(self, at: float) -> asyncio.TimerHandle:
        """Put `TICK` in the inbox at event loop time `at`."""
        return asyncio.get_running_loop().call_at(at, self._listener.put, TICK)

    async def open(self) -> bool:
        """Join the group; returns once an event published from now on will arrive. False (the
        follower then polls the database) when Redis is unavailable."""
        for _attempt in range(2):  # the loop's hub may close just as this joins it: once more
            current = hub()
            try:
                await current.join(self._listener)
            except HubClosed:
                continue
            except Exception:
                logger.warning(
                    "live events unavailable; following %s by polling", self.group, exc_info=True
                )
                return False
            self._joined = current
            return True
        return False

    @property
    def live(self) -> bool:
        """Joined, and the process's connection to Redis is up."""
        return self._joined is not None and self._joined.connected and not self._joined.closed

    async def refresh(self) -> None:
        """Try again to subscribe after Redis was unavailable."""
        if self._joined is None or self._joined.closed:
            self._joined = None
            await self.open()

    async def close(self) -> None:
        joined, self._joined = self._joined, None
        if joined is not None:
            try:
                await asyncio.wait_for(joined.leave(self._listener), 10)
            except Exception:
                logger.warning("could not leave %s", self.group, exc_info=True)
