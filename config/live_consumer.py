"""WebSocket delivery of stored live events (see config/live_events/), for the browser UI.

Messages are JSON `{"id": seq, "event": type, "data": {...}}`: first the snapshot (`id` null),
then the stored events after `?lastEventId=` (all of them without it), then live events. While
the subject can still change, the socket stays open, with a `{"id": null, "event": "heartbeat"}`
message every SSE_HEARTBEAT_SECONDS (each also re-reads the database, in case an event was
lost in transit); the server closes with 1000 once nothing more can happen. Refusals are an
`{"error": ...}` message and a close code: 4400 bad lastEventId, 4401 not authenticated,
4404 unknown subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from config.api.renderers import dumps
from config.api.stream_auth import StreamAuthError, authenticate_scope
from config.live_events import EventStore, Follower, StoredEvent, Subscription
from config.sse import heartbeat_seconds, parse_last_event_id

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
HEARTBEAT_EVENT = "heartbeat"


class LiveEventsConsumer(AsyncJsonWebsocketConsumer):
    """Subclasses set `store` and `subject_kwarg` (the URL route's keyword for the id)."""

    store: EventStore
    subject_kwarg: str

    async def connect(self) -> None:
        self.subscription: Subscription | None = None
        self.follower: Follower | None = None
        self.heartbeats: asyncio.Task | None = None
        self.listening: asyncio.Task | None = None
        # Live events and the heartbeat's catch-up both advance the follower: one at a time,
        # so events leave in order.
        self.sending = asyncio.Lock()
        subject_id = str(self.scope["url_route"]["kwargs"][self.subject_kwarg])
        await self.accept()
        try:
            user = await database_sync_to_async(authenticate_scope)(self.scope)
        except StreamAuthError as error:
            await self._refuse(error.message, CLOSE_UNAUTHORIZED)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
        try:
            position = parse_last_event_id((query.get("lastEventId") or [None])[0]) or 0
        except ValueError:
            await self._refuse("lastEventId must be a non-negative integer.", CLOSE_BAD_REQUEST)
            return

        # Join the group before reading, as the SSE stream does; events that arrive meanwhile
        # wait in the inbox until the replay is sent and are then deduplicated by the follower.
        self.subscription = Subscription(self.store.group_name(subject_id))
        await self.subscription.open()
        visible = await database_sync_to_async(self.store.visible_to_user)(subject_id, user)
        state = (
            await database_sync_to_async(self.store.read)(subject_id, position) if visible else None
        )
        if state is None:
            await self._refuse(self.store.not_found_message(subject_id), CLOSE_NOT_FOUND)
            return
        await self._send_event(None, self.store.snapshot_type, state.snapshot)
        self.follower = Follower(self.store, subject_id, min(position, state.last_seq))
        replay = self.follower.accept(state.events)
        for event in replay:
            await self._send_stored(event)
        if self.follower.ends_with_terminal(replay) or (
            state.settled and self.follower.position >= state.last_seq
        ):
            await self._finish(CLOSE_NORMAL)
            return
        self.heartbeats = asyncio.create_task(self._beat(heartbeat_seconds()))
        self.listening = asyncio.create_task(self._listen(self.subscription))

    async def _listen(self, subscription: Subscription) -> None:
        """Sends the subscription's events as they arrive."""
        while True:
            message = await subscription.inbox.get()
            async with self.sending:
                if self.follower is None:
                    return
                await self._deliver(await self.follower.on_message(message))
                if self.follower is None:  # finished
                    return

    async def _deliver(self, events: list[StoredEvent]) -> None:
        follower = self.follower
        for event in events:
            await self._send_stored(event)
        if follower is not None and (follower.ends_with_terminal(events) or follower.finished):
            await self._finish(CLOSE_NORMAL)

    async def _beat(self, interval: float) -> None:
        """Heartbeats while the subject can still change; each picks up events that were lost
        in transit, and subscribes again if Redis was unavailable."""
        while True:
            await asyncio.sleep(interval)
            async with self.sending:
                if self.follower is None:
                    return
                await self._send_event(None, HEARTBEAT_EVENT, {})
                if self.subscription is not None:
                    await self.subscription.refresh()
                await self._deliver(await self.follower.catch_up())
                if self.follower is None:  # finished
                    return

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Clients have nothing to say on this socket; their messages are ignored."""

    async def disconnect(self, code: int) -> None:
        self.follower = None
        await self._stop_beating()
        await self._leave()

    async def _stop_beating(self) -> None:
        for task in (self.heartbeats, self.listening):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.heartbeats = self.listening = None

    async def _send_stored(self, event: StoredEvent) -> None:
        await self._send_event(event.seq, event.type, event.data)

    async def _send_event(self, seq: int | None, event_type: str, data: dict[str, Any]) -> None:
        await self.send(text_data=dumps({"id": seq, "event": event_type, "data": data}).decode())

    async def _refuse(self, message: str, code: int) -> None:
        await self.send(text_data=dumps({"error": message}).decode())
        await self._finish(code)

    async def _finish(self, code: int) -> None:
        self.follower = None
        await self._stop_beating()
        await self._leave()
        await self.close(code=code)

    async def _leave(self) -> None:
        subscription, self.subscription = self.subscription, None
        if subscription is not None:
            # Shielded: leaving must finish even when the consumer is being cancelled.
            await asyncio.shield(subscription.close())

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return dumps(content).decode()
