"""HTTP clients for the harness: a keep-alive JSON client, SSE followers and a load generator
(wrk when installed, else a Python client). Standard library only."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import shutil
import socket
import statistics
import struct
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

TERMINAL_EVENTS = ("execution.completed", "execution.failed", "execution.suspended")


class HttpError(RuntimeError):
    pass


class Api:
    """One keep-alive connection to the system's API (not thread-safe)."""

    def __init__(self, port: int, token: str, timeout: float = 120.0) -> None:
        self.port = port
        self.token = token
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=self.timeout
            )
        return self.connection

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, float]:
        """(status, body, seconds from sending the request to having read the whole answer)."""
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            connection = self._connect()
            try:
                started = time.perf_counter()
                connection.request(method, path, body=data, headers=headers)
                response = connection.getresponse()
                content = response.read()
                return response.status, content, time.perf_counter() - started
            except (http.client.HTTPException, ConnectionError):
                # A kept-alive connection the server closed: reconnect once.
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200,)):
        status, content, _ = self.call(method, path, body)
        if status not in expect:
            raise HttpError(f"{method} {path} -> {status}: {content[:500]!r}")
        return json.loads(content) if content else None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


# --- SSE -----------------------------------------------------------------------------------------
@dataclass
class Stream:
    """What one SSE client saw: (seq, event type, monotonic arrival) per framed event."""

    events: list[tuple[int | None, str, float]] = field(default_factory=list)
    snapshot_at: float | None = None
    terminal: str | None = None
    terminal_at: float | None = None
    ended_at: float | None = None
    error: str | None = None


def stream_request(execution_id: str, token: str) -> bytes:
    """The request for an execution's event stream. HTTP/1.0: the body is the raw event stream,
    no chunk framing to undo."""
    return (
        f"GET /api/v1/dag-executions/{execution_id}/events HTTP/1.0\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()


# Linux: the kernel stamps each received segment with the (real-time) clock when it reached the
# socket; asked for per connection with SO_TIMESTAMPNS and read back with recvmsg.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_STAMP_SPACE = socket.CMSG_SPACE(16)


def kernel_arrival(ancillary: list[tuple[int, int, bytes]], read: float, read_real: float) -> float:
    """When the bytes of one `recvmsg` reached the socket, on the `time.monotonic()` clock: the
    kernel's receive stamp (real-time clock, that of the last segment read) moved onto the
    monotonic clock by the two clocks' difference at `read`. Without a stamp, `read` itself."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return min(read, read - (read_real - (seconds + nanoseconds / 1e9)))
    return read


class _SseConnection:
    """One SSE connection read by callbacks from the loop's selector (no task woken per read):
    a single process can follow hundreds of streams and still say when each frame arrived."""

    def __init__(self, stream: Stream, until_terminal: bool, on_frame) -> None:
        self.stream = stream
        self.until_terminal = until_terminal
        self.on_frame = on_frame
        self.buffer = b""
        self.head_done = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def readable(self, sock: socket.socket) -> None:
        try:
            data, ancillary, _flags, _address = sock.recvmsg(1 << 16, _STAMP_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self.stream.error = self.stream.error or str(error)
            data, ancillary = b"", []
        read, read_real = time.monotonic(), time.time()
        if not data:
            self.stream.ended_at = read
            self.finish()
            return
        self.received(data, kernel_arrival(ancillary, read, read_real), read)

    def received(self, data: bytes, arrived: float, read: float) -> None:
        stream = self.stream
        self.buffer += data
        if not self.head_done:
            if b"\r\n\r\n" not in self.buffer:
                return
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.head_done = True
            status_line = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status_line:
                stream.error = status_line.decode(errors="replace")
                self.finish()
                return
        while b"\n\n" in self.buffer and not self.done.done():
            frame, self.buffer = self.buffer.split(b"\n\n", 1)
            seq: int | None = None
            kind = ""
            for line in frame.split(b"\n"):
                if line.startswith(b"id: "):
                    seq = int(line[4:])
                elif line.startswith(b"event: "):
                    kind = line[7:].decode()
            if not kind:
                continue  # a heartbeat comment
            if seq is None:
                stream.snapshot_at = stream.snapshot_at or arrived
            else:
                stream.events.append((seq, kind, arrived))
            if self.on_frame is not None:
                self.on_frame(stream, seq, kind, arrived, read)
            if kind in TERMINAL_EVENTS and stream.terminal is None:
                stream.terminal, stream.terminal_at = kind, arrived
                if self.until_terminal:
                    self.finish()


async def follow_sse(
    port: int,
    token: str,
    execution_id: str,
    stream: Stream,
    *,
    until_terminal: bool = True,
    on_frame=None,
) -> Stream:
    """Read the execution's event stream until a terminal event (or the server ends it).

    HTTP/1.0, so the body is the raw event stream. A frame's time is when its bytes reached
    this client's socket (the kernel's receive stamp, see `kernel_arrival`), so a harness
    following many streams at once does not add its own backlog of reading to what it
    measures; `on_frame(stream, seq, kind, arrived, read)` also gets the moment this process
    read it."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    connection = _SseConnection(stream, until_terminal, on_frame)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, stream_request(execution_id, token))
        loop.add_reader(sock.fileno(), connection.readable, sock)
        try:
            await connection.done
        finally:
            loop.remove_reader(sock.fileno())
    finally:
        sock.close()
    return stream


# --- load ----------------------------------------------------------------------------------------
def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "median_ms": round(statistics.median(values) * 1000, 3),
        "p95_ms": round(percentile(values, 0.95) * 1000, 3),
        "max_ms": round(max(values) * 1000, 3),
    }


def load(port: int, path: str, token: str, *, seconds: float, connections: int) -> dict:
    """`connections` keep-alive clients sending GET `path` back to back for `seconds`: wrk when
    installed (it costs the server's cores far less CPU), else Python clients in this process."""
    if shutil.which("wrk"):
        return load_wrk(port, path, token, seconds=seconds, connections=connections)
    return load_python(port, path, token, seconds=seconds, connections=connections)


def load_wrk(port: int, path: str, token: str, *, seconds: float, connections: int) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-H",
            f"Authorization: Token {token}",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout

    def ms(text: str) -> float:
        number = re.match(r"[\d.]+", text)
        assert number is not None
        unit = re.sub(r"[\d.]", "", text)
        return round(float(number.group()) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)

    def find(pattern: str) -> str:
        match = re.search(pattern, out)
        if match is None:
            raise RuntimeError(f"unexpected wrk output:\n{out}")
        return match.group(1)

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "client": "wrk -t1",
        "connections": connections,
        "seconds": seconds,
        "requests": int(find(r"(\d+) requests in")),
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1).strip() if socket_errors else None,
        "requests_per_second": float(find(r"Requests/sec:\s+([\d.]+)")),
        "p50_ms": ms(find(r"\s50%\s+(\S+)")),
        "p99_ms": ms(find(r"\s99%\s+(\S+)")),
    }


async def _python_client(
    port: int, request: bytes, deadline: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            chunked = False
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readline()).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            else:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


def load_python(port: int, path: str, token: str, *, seconds: float, connections: int) -> dict:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors: list[int] = []

    async def run() -> float:
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(
            *(
                _python_client(port, request, deadline, latencies, errors)
                for _ in range(connections)
            )
        )
        return time.perf_counter() - started

    elapsed = asyncio.run(run())
    return {
        "client": "python asyncio (wrk not installed)",
        "connections": connections,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "errors": len(errors),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
    }
