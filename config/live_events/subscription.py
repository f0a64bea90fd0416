"""Membership of a private channel in a subject's group on the Channels layer, with bounded,
retried layer calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

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
