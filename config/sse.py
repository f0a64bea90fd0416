"""Server-Sent Events for stored live events (see config/live_events/).

A stream sends a snapshot of the subject (no `id:`, so it does not move the client's
Last-Event-ID), then the stored events after Last-Event-ID, then live ones, each framed as
`id: <seq>` / `event: <type>` / `data: <json>`, with `: heartbeat` comments while idle. It stays
open while the subject can still change (a suspended or failed execution can be resumed from
anywhere) and ends once nothing more can happen (the store's final event or status); a
reconnect then, with nothing left to send, gets 204, which tells EventSource to stop. The view
is synchronous (auth, ownership, 204 on a pool thread, in the same one hop as every other
request); the stream it returns is an async generator that the event loop sends
(config/asgi_http.py `send_live`), which ends as soon as the client disconnects (it is
cancelled then) and always leaves its group.

Live events normally skip the stream's own task: while a stream is caught up and waits, it lends
its follower's position and the request's ASGI `send` to its subscription (`DirectWriter`), and
the process's hub writes each published event, framed once, straight to every such client
(config/live_events/hub.py). Anything else (a gap, a terminal event, a reconnect of the hub, a
heartbeat) lands in the stream's inbox, which takes the writer back, and the stream goes on as
an ordinary async iterator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

from config.api.exceptions import PARAMS_LABEL
from config.api.renderers import dumps
from config.api.stream_auth import StreamAuthError, authenticate_http
from config.asgi_http import Send, request_send
from config.live_events import TICK, EventStore, Follower, StoredEvent, Subscription

logger = logging.getLogger(__name__)

HEARTBEAT = b": heartbeat\n\n"
# While Redis is unreachable, followers poll the database this often.
POLL_SECONDS = 1.0


def sse_frame(event_type: str, data: dict[str, Any], seq: int | None = None) -> bytes:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {event_type}\n".encode() + b"data: " + dumps(data) + b"\n\n"


# The frame of the event last framed, and its ASGI body message: a published event reaches
# every follower in the process as the same object, so it is serialized once, not once per
# client.
_last_framed: tuple[StoredEvent, bytes, dict[str, Any]] | None = None


def _framed(event: StoredEvent) -> tuple[StoredEvent, bytes, dict[str, Any]]:
    global _last_framed
    last = _last_framed
    if last is not None and last[0] is event:
        return last
    frame = sse_frame(event.type, event.data, event.seq)
    last = _last_framed = (
        event,
        frame,
        {"type": "http.response.body", "body": frame, "more_body": True},
    )
    return last


def _event_frame(event: StoredEvent) -> bytes:
    return _framed(event)[1]


class DirectWriter:
    """A waiting stream's stand-in for the hub (config/live_events/hub.py's `Writer`): the next
    event in sequence is sent at once through the request's ASGI `send`; a copy already sent is
    dropped; anything else (a gap, a terminal event) goes to the stream's inbox, which wakes it."""

    __slots__ = ("clock", "follower", "last_write", "put", "send", "terminal_types")

    def __init__(self, send: Send, follower: Follower, subscription: Subscription) -> None:
        self.send = send
        self.follower = follower
        self.terminal_types = follower.store.terminal_types
        self.put = subscription.put
        self.clock = asyncio.get_running_loop().time
        # Event loop time of the last direct write (it moves the next heartbeat on).
        self.last_write = 0.0

    def offer(self, event: StoredEvent) -> Awaitable[None] | None:
        follower = self.follower
        if event.seq == follower.position + 1 and event.type not in self.terminal_types:
            follower.position = event.seq
            self.last_write = self.clock()
            return self.send(_framed(event)[2])
        if event.seq > follower.position:
            self.put(event)  # a gap or the end: the stream's own task handles it
        return None


def json_response(body: dict[str, Any], status: int, **headers: str) -> HttpResponse:
    response = HttpResponse(dumps(body), status=status, content_type="application/json")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def parse_last_event_id(raw: str | None) -> int | None:
    """The position a client resumes from; None when it sent none. ValueError when malformed."""
    if raw is None or raw.strip() == "":
        return None
    value = int(raw.strip())
    if value < 0:
        raise ValueError("negative")
    return value


def heartbeat_seconds() -> float:
    return float(getattr(settings, "SSE_HEARTBEAT_SECONDS", 15.0))


def stream_events(request: HttpRequest, *, store: EventStore, subject_id: str) -> HttpResponseBase:
    """The whole SSE endpoint for one subject: auth, 404, 204 or the event stream.

    Synchronous, like every other view: the project's ASGI application runs it, middleware
    included, in one call on a thread of its request pool (config/asgi_http.py), and only the
    stream itself (`follow`) on the event loop. The stream reads the stored events itself after
    subscribing, so a fresh stream is read once; a reconnect is also read here, to answer 204
    when nothing is left to send.
    """
    if request.method != "GET":
        return json_response({"error": f'Method "{request.method}" not allowed.'}, 405, Allow="GET")
    try:
        user = authenticate_http(request)
    except StreamAuthError as error:
        return json_response({"error": error.message}, 401, WWW_Authenticate="Token")

    raw_position = request.headers.get("Last-Event-ID") or request.GET.get("lastEventId")
    try:
        position = parse_last_event_id(raw_position)
    except ValueError:
        return json_response(
            {
                "error": PARAMS_LABEL,
                "validation_errors": [
                    {
                        "path": ["lastEventId"],
                        "message": "Last-Event-ID must be a non-negative integer.",
                    }
                ],
            },
            400,
        )

    if not store.visible_to_user(subject_id, user):
        return json_response({"error": store.not_found_message(subject_id)}, 404)
    start = 0
    if position is not None:
        state = store.read(subject_id, position)
        if state is None:
            return json_response({"error": store.not_found_message(subject_id)}, 404)
        if not state.events and state.settled:
            # Finished and nothing new since the client's last event: 204 makes EventSource stop.
            return HttpResponse(status=204)
        # A position beyond the last stored event (a stale or invented id) would hide new events.
        start = min(position, state.last_seq)

    response = StreamingHttpResponse(
        follow(store, subject_id, start, heartbeat=heartbeat_seconds()),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def follow(
    store: EventStore,
    subject_id: str,
    position: int,
    *,
    heartbeat: float,
    send: Send | None = None,
) -> AsyncIterator[bytes]:
    """Frames for one subscriber: snapshot, replay after `position`, then live events.

    `send`: the request's ASGI send, through which the hub writes live events while the stream
    waits (see DirectWriter); by default the current request's (`request_send`, read when the
    stream starts, on the event loop). Without one every frame is yielded."""
    if send is None:
        send = request_send.get()
    subscription = Subscription(store.group_name(subject_id))
    try:
        # Subscribe first, then read: an event committed after the read is published after the
        # subscription exists, so it cannot fall between the two.
        await subscription.open()
        state = await database_sync_to_async(store.read)(subject_id, position)
        if state is None:
            return
        yield sse_frame(store.snapshot_type, state.snapshot)
        follower = Follower(store, subject_id, position)
        replay = follower.accept(state.events)
        for event in replay:
            yield _event_frame(event)
        if follower.ends_with_terminal(replay) or (
            state.settled and follower.position >= state.last_seq
        ):
            return

        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        next_heartbeat = loop.time() + heartbeat
        # Everything yielded so far has been sent by the time the stream waits again (Django
        # sends each part before it asks for the next), so direct writes follow it in order.
        writer = DirectWriter(send, follower, subscription) if send is not None else None
        # While live, the stream waits on its inbox alone; the heartbeat comes as a TICK from one
        # timer per heartbeat period rather than a timeout around every wait (the wait for each
        # event is the hot path of every stream).
        reminder: asyncio.TimerHandle | None = None
        try:
            while True:
                if task is not None and task.cancelling():
                    # Cancelled while a frame was being sent, and the CancelledError was
                    # swallowed there: waiting on the inbox now would never end.
                    raise asyncio.CancelledError
                if subscription.live:
                    if reminder is None:
                        reminder = subscription.remind(next_heartbeat)
                    if writer is not None:
                        subscription.lend(writer)
                    # A plain await keeps the cancellation when the client disconnects just as
                    # a message arrives (asyncio.wait_for on Python 3.11 dropped it).
                    message = await subscription.inbox.get()
                    if writer is not None:
                        subscription.take_back()
                        next_heartbeat = max(next_heartbeat, writer.last_write + heartbeat)
                else:
                    await asyncio.sleep(max(0.0, min(next_heartbeat - loop.time(), POLL_SECONDS)))
                    message = None
                if task is not None and task.cancelling():
                    # Cancelled, but something below swallowed the CancelledError: stop anyway.
                    raise asyncio.CancelledError

                if message is TICK:
                    reminder = None
                    if loop.time() < next_heartbeat:
                        continue  # events moved the heartbeat on meanwhile
                    message = None
                if message is not None:
                    events = follower.take(message)
                    if events is None:
                        events = await follower.on_message(message)
                    # Whatever else has arrived leaves in the same write.
                    while not subscription.inbox.empty() and not follower.finished:
                        more = subscription.inbox.get_nowait()
                        if more is TICK:
                            reminder = None
                            continue
                        taken = follower.take(more)
                        events += taken if taken is not None else await follower.on_message(more)
                else:
                    if loop.time() >= next_heartbeat:
                        yield HEARTBEAT
                        next_heartbeat = loop.time() + heartbeat
                        await subscription.refresh()
                    # Also covers anything lost in transit (a full inbox, a Redis hiccup).
                    events = await follower.catch_up()
                if events:
                    yield b"".join(_event_frame(event) for event in events)
                    next_heartbeat = loop.time() + heartbeat
                if follower.ends_with_terminal(events) or follower.finished:
                    return
        finally:
            subscription.take_back()
            if reminder is not None:
                reminder.cancel()
    finally:
        # Shielded: the cleanup must finish even though the request task is being cancelled.
        await asyncio.shield(subscription.close())
