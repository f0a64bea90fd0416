"""Clients for testing Server-Sent Events: a frame parser, an in-process ASGI client that drives
`config.asgi.application` the way daphne does (including `http.disconnect`), and a real-socket
client for a running server."""

from __future__ import annotations

import asyncio
import http.client
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode


@dataclass
class SseFrame:
    id: int | None = None
    event: str | None = None
    data: Any = None
    comment: str | None = None

    @property
    def is_heartbeat(self) -> bool:
        return self.comment is not None


class SseParser:
    """Splits a byte stream into frames (`id:`, `event:`, `data:` lines, `:` comments)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SseFrame]:
        self._buffer += chunk
        frames = []
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            frame = SseFrame()
            data_lines = []
            for line in block.decode().split("\n"):
                if line.startswith(":"):
                    frame.comment = line[1:].strip()
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "id":
                    frame.id = int(value)
                elif name == "event":
                    frame.event = value
                elif name == "data":
                    data_lines.append(value)
            if data_lines:
                frame.data = json.loads("\n".join(data_lines))
            frames.append(frame)
        return frames


_END = object()


class ServerLoop:
    """One event loop thread for every in-process ASGI call, as daphne has one loop per process.

    Live events reach a process through one Redis subscription per event loop (config/
    live_events/hub.py), so concurrent streams share a loop, exactly as they do under daphne.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _lock = threading.Lock()

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                threading.Thread(target=run, name="test-asgi-loop", daemon=True).start()
                ready.wait(5)
                cls._loop = loop
            return cls._loop


def server_loop_stacks() -> str:
    """The stacks of every task on the shared server loop and of every thread (for failures)."""
    import io
    import sys
    import traceback

    out = io.StringIO()
    loop = ServerLoop.get()
    for task in asyncio.all_tasks(loop):
        out.write(f"--- task {task.get_name()} {task.get_coro()!r}\n")
        task.print_stack(file=out)
    for ident, frame in sys._current_frames().items():
        out.write(f"--- thread {ident}\n")
        out.write("".join(traceback.format_stack(frame)))
    return out.getvalue()


def run_in_server_loop(coroutine: Any, timeout: float = 30) -> Any:
    """Run a coroutine on the shared server loop and wait for its result."""
    return asyncio.run_coroutine_threadsafe(coroutine, ServerLoop.get()).result(timeout)


@dataclass
class _Response:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


class AsgiSseClient:
    """Runs one GET through the project's ASGI application on the shared server loop."""

    _open: ClassVar[set[AsgiSseClient]] = set()

    def __init__(
        self,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        method: str = "GET",
    ) -> None:
        self.method = method
        self.path = path
        self.query = urlencode(query or {})
        self.headers = {"host": "testserver", **(headers or {})}
        self.response = _Response()
        self._started = threading.Event()
        self._chunks: queue.Queue[Any] = queue.Queue()
        self._parser = SseParser()
        self._pending: list[SseFrame] = []
        self._disconnect: asyncio.Event | None = None
        self._future: Any = None
        self.error: BaseException | None = None
        self.body = b""

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 10, *, wait: bool = True) -> AsgiSseClient:
        """Send the request; with `wait`, return once the response has started."""
        from config.asgi import application

        self._open.add(self)
        self._future = asyncio.run_coroutine_threadsafe(self._run(application), ServerLoop.get())
        self._future.add_done_callback(self._done)
        if wait and not self._started.wait(timeout):
            raise TimeoutError("no response start")
        return self

    def _done(self, future: Any) -> None:
        self._open.discard(self)
        if not future.cancelled() and future.exception() is not None:
            self.error = future.exception()
        self._chunks.put(_END)
        self._started.set()

    @property
    def finished(self) -> bool:
        return self._future is not None and self._future.done()

    def disconnect(self, timeout: float = 10) -> None:
        """Send `http.disconnect`, as a server does when the client goes away, and wait until
        the application has returned."""
        loop = ServerLoop.get()
        if self._disconnect is not None:
            loop.call_soon_threadsafe(self._disconnect.set)
        self.wait_finished(timeout)

    def wait_finished(self, timeout: float = 10) -> None:
        try:
            self._future.result(timeout)
        except TimeoutError as error:
            raise TimeoutError(
                "the application did not return; where it waits:\n" + server_loop_stacks()
            ) from error

    @classmethod
    def close_all(cls) -> None:
        for client in list(cls._open):
            try:
                client.disconnect(5)
            except TimeoutError:
                client._future.cancel()

    async def _run(self, application: Any) -> None:
        self._disconnect = asyncio.Event()
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await self._disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.response.status = message["status"]
                self.response.headers = {
                    k.decode().lower(): v.decode() for k, v in message["headers"]
                }
                self._started.set()
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if chunk:
                    self._chunks.put(chunk)
                if not message.get("more_body", False):
                    self._chunks.put(_END)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": self.query.encode(),
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in self.headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        await application(scope, receive, send)

    # --- reading --------------------------------------------------------------------------------

    @property
    def status(self) -> int | None:
        return self.response.status

    def json(self, timeout: float = 10) -> Any:
        self.wait_finished(timeout)
        return json.loads(self.read_all(timeout))

    def read_all(self, timeout: float = 10) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            item = self._chunks.get(timeout=max(0.01, deadline - time.monotonic()))
            if item is _END:
                self._chunks.put(_END)
                return self.body
            self.body += item

    def next_frame(self, timeout: float = 10) -> SseFrame | None:
        """The next frame, or None when the stream has ended."""
        deadline = time.monotonic() + timeout
        while not self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no SSE frame in time")
            try:
                item = self._chunks.get(timeout=remaining)
            except queue.Empty as error:
                raise TimeoutError("no SSE frame in time") from error
            if item is _END:
                self._chunks.put(_END)
                return None
            self.body += item
            self._pending.extend(self._parser.feed(item))
        return self._pending.pop(0)

    def next_event(self, timeout: float = 10) -> SseFrame | None:
        """The next frame that is not a heartbeat, or None when the stream has ended."""
        while (frame := self.next_frame(timeout)) is not None and frame.is_heartbeat:
            pass
        return frame

    def events_until_end(self, timeout: float = 10, *, skip_heartbeats: bool = True) -> list:
        frames = []
        while (frame := self.next_frame(timeout)) is not None:
            if skip_heartbeats and frame.is_heartbeat:
                continue
            frames.append(frame)
        return frames


class HttpSseClient:
    """A real socket SSE client (http.client, chunked transfer decoded) for a live server."""

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str] | None = None):
        self.connection = http.client.HTTPConnection(host, port, timeout=10)
        self.connection.request("GET", path, headers=headers or {})
        self.response = self.connection.getresponse()
        self._parser = SseParser()
        self._pending: list[SseFrame] = []
        self.ended = False

    @property
    def status(self) -> int:
        return self.response.status

    def header(self, name: str) -> str | None:
        return self.response.getheader(name)

    def next_frame(self, timeout: float = 10) -> SseFrame | None:
        deadline = time.monotonic() + timeout
        while not self._pending:
            if self.ended:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no SSE frame in time")
            self.connection.sock.settimeout(remaining)
            chunk = self.response.read1(65536)
            if not chunk:
                self.ended = True
                return None
            self._pending.extend(self._parser.feed(chunk))
        return self._pending.pop(0)

    def next_event(self, timeout: float = 10) -> SseFrame | None:
        while (frame := self.next_frame(timeout)) is not None and frame.is_heartbeat:
            pass
        return frame

    def close(self) -> None:
        self.connection.close()


def group_member_count(group: str, *, writing: bool = False) -> int:
    """Followers of a group in this process (the in-process ASGI clients and consumers); with
    `writing`, those waiting with their writer lent to the hub (config/sse.py)."""
    from config.live_events.hub import follower_count

    return follower_count(group, writing=writing)


def subscribed_processes(group: str) -> int:
    """Redis connections subscribed to a group's channel: one per process with followers."""
    import redis
    from django.conf import settings

    from config.live_events.publisher import channel_name

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return dict(client.pubsub_numsub(channel_name(group))).get(channel_name(group).encode(), 0)
    finally:
        client.close()


def wait_until(predicate, timeout: float = 10, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
