"""HTTP for the ASGI application: request body caps, then Django.

Django's stock ASGI handler runs a synchronous view's request on a thread made for that request
and thrown away after it, and in between hops back and forth between that thread and the event
loop for every middleware (each `process_request`/`process_response` is a separate call on the
request's thread). For the small API reads that make most of the traffic those hops, the new
thread and the new database connection (connections are per thread) cost several times the
view's own work.

So requests for synchronous views (every view) are served by Django's WSGI handler, the whole
request (middleware, view, response) in one call on a thread of a process-wide pool of
WEB_THREADS threads: one hop per request, and the pool's threads keep their database
connections (closed by Django's request signals when older than CONN_MAX_AGE or broken, as
under any WSGI server). Each request has a thread of its own while it runs; a request waits
only when all WEB_THREADS are busy. An event stream is such a view too: it checks the request
on a pool thread and returns a response whose content is an asynchronous iterator, which the
event loop then sends until it ends or the client disconnects (`send_live`), so a stream holds
no thread while it waits. Work a request leaves for after its response
(config/after_response.py) starts once the loop has handed the response to the server. An
asynchronous view, if one is added, goes to Django's stock ASGI handler (a new thread per
request for its synchronous middleware, a hop per middleware).

The server's `send` of each request is kept in a context variable (`RequestSend`) for the event
streams, which write live events through it without going through Django's response handling
(config/sse.py).

Request bodies are capped before Django reads them (`request_body_limit`): a declared
Content-Length over the cap is answered 413 at once, and a body without one (chunked) is cut
off with a 413 as soon as it passes the cap, so an oversized body, authenticated or not, never
fills memory or a temporary file.
"""

from __future__ import annotations

import asyncio
import functools
import io
import sys
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from tempfile import SpooledTemporaryFile
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.urls import Resolver404, resolve

from config import after_response

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
AsgiApp = Callable[[Scope, Any, Any], Awaitable[None]]

# The server's own `send` for the HTTP request being handled (see RequestSend).
request_send: ContextVar[Send | None] = ContextVar("request_send", default=None)

# Multipart framing (boundaries, part headers) on top of the task endpoint's own upload limit.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024


# The task endpoint and the task page take file uploads.
UPLOAD_PATHS = frozenset({"/api/v1/task", "/task"})


def request_body_limit(path: str) -> int:
    """The largest body a request to `path` may send: file uploads to the task endpoint, and
    JSON (or a form in the admin) everywhere else."""
    if path.rstrip("/") in UPLOAD_PATHS:
        return settings.TASK_MAX_REQUEST_BYTES + MULTIPART_OVERHEAD_BYTES
    return max(settings.API_JSON_BODY_LIMIT, settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is too large (limit {limit} bytes)")
        self.limit = limit


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def capped_receive(receive: Receive, limit: int) -> Receive:
    """`receive`, raising BodyTooLarge once the body's chunks add up to more than `limit`."""
    received = 0

    async def receive_capped() -> dict[str, Any]:
        nonlocal received
        message = await receive()
        if message.get("type") == "http.request":
            received += len(message.get("body") or b"")
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return receive_capped


async def send_too_large(send: Send, limit: int) -> None:
    from config.api.exceptions import framework_body
    from config.api.renderers import dumps

    body = dumps(
        framework_body(
            413, f"Request body is too large (limit {limit} bytes)", "FST_ERR_CTP_BODY_TOO_LARGE"
        )
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is not read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestBodyLimit:
    """ASGI middleware answering 413 to a request whose body is over its path's limit, before
    the application reads more of it than the limit."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = request_body_limit(scope.get("path") or "/")
        length = declared_length(scope)
        if length is not None and length > limit:
            await send_too_large(send, limit)
            return
        started = False

        async def send_tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, capped_receive(receive, limit), send_tracked)
        except BodyTooLarge:
            # Raised while the body is read, which every handler does before it answers.
            if not started:
                await send_too_large(send, limit)


class RequestSend:
    """ASGI middleware making the server's `send` of each HTTP request available to the code
    handling it (`request_send`), past the wrappers in between: an event stream writes live
    events through it directly (config/sse.py)."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = request_send.set(send)
        try:
            await self.app(scope, receive, send)
        finally:
            request_send.reset(token)


def is_async_view(scope: Scope) -> bool:
    """Whether the request's path is served by an asynchronous view (the event streams)."""
    path = scope.get("path") or "/"
    root = scope.get("root_path") or ""
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path_is_async(path, settings.ROOT_URLCONF)


# Resolving a path costs about as much as a small view's own work, and Django resolves it again
# for the request: remember the answer for the paths seen last (the URLconf is fixed while a
# process runs; it is part of the key for tests that swap it).
@functools.lru_cache(maxsize=4096)
def path_is_async(path: str, urlconf: str) -> bool:
    try:
        return iscoroutinefunction(resolve(path, urlconf).func)
    except Resolver404:
        return False
    except Exception:  # an odd path: Django's own handler deals with it
        return True


async def read_body(receive: Receive) -> tuple[Any, int] | None:
    """The request body as a file and its size, or None when the client went away."""
    body: Any = None
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body") or b""
        if chunk:
            if body is None:
                body = SpooledTemporaryFile(  # noqa: SIM115 (closed by the caller)
                    max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b"
                )
            body.write(chunk)
            size += len(chunk)
        if not message.get("more_body"):
            break
    if body is None:
        return io.BytesIO(), 0
    body.seek(0)
    return body, size


def wsgi_environ(scope: Scope, body: Any, size: int) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) of an ASGI HTTP request whose body was read into `body`."""
    script_name = (scope.get("root_path") or "").encode("utf-8").decode("latin-1")
    path_info = scope["path"].encode("utf-8").decode("latin-1")
    if script_name and path_info.startswith(script_name):
        path_info = path_info[len(script_name) :]
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": (scope.get("query_string") or b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] if server[1] is not None else 0),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if scope.get("client"):
        environ["REMOTE_ADDR"] = scope["client"][0]
    for raw_name, raw_value in scope.get("headers") or []:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        key = name if name in ("CONTENT_LENGTH", "CONTENT_TYPE") else f"HTTP_{name}"
        value = raw_value.decode("latin-1")
        # Repeated headers are joined with commas (RFC 9110), as WSGI servers do.
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    if size and "CONTENT_LENGTH" not in environ:
        # A body sent without a length (chunked) has been read in full: its size is known, and
        # Django's parsers read exactly CONTENT_LENGTH bytes.
        environ["CONTENT_LENGTH"] = str(size)
    return environ


def response_start(status: str, headers: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "http.response.start",
        "status": int(status.split(" ", 1)[0]),
        "headers": [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
        ],
    }


class SyncViewsOnThreads:
    """HTTP requests for synchronous views through Django's WSGI handler on a thread pool (see
    the module docstring); asynchronous views through Django's ASGI handler."""

    def __init__(self, *, asgi_app: AsgiApp, wsgi_app: Any, threads: int) -> None:
        self.asgi_app = asgi_app
        self.wsgi_app = wsgi_app
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_async_view(scope):
            await self.asgi_app(scope, receive, send)
            return
        read = await read_body(receive)
        if read is None:
            return  # the client went away before sending its request
        body, size = read
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(
                self.pool, self.respond, wsgi_environ(scope, body, size), send, loop
            )
        finally:
            body.close()
        if answer is None:
            return
        start, content, deferred = answer
        if isinstance(content, bytes):
            await send(start)
            await send({"type": "http.response.body", "body": content})
            # Only now: started earlier, the work would compete with sending this answer.
            after_response.start(deferred)
        else:
            await self.send_live(start, content, receive, send)

    async def send_live(
        self, start: dict[str, Any], response: Any, receive: Receive, send: Send
    ) -> None:
        """Send a response whose content is an asynchronous iterator (an event stream) from the
        event loop, part by part, until it ends or the client disconnects, which cancels the
        iterator (as Django's ASGI handler does); then close the response on a pool thread
        (Django's request_finished signal, as for every other request)."""

        async def content() -> None:
            await send(start)
            async for part in response:
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        sending = asyncio.create_task(content())
        listening = asyncio.create_task(disconnected())
        try:
            await asyncio.wait((sending, listening), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sending, listening):
                task.cancel()
            # Cancelled tasks end with CancelledError, which is not this request's failure.
            await asyncio.gather(sending, listening, return_exceptions=True)
            await asyncio.get_running_loop().run_in_executor(self.pool, response.close)
        error = None if sending.cancelled() else sending.exception()
        if error is not None:
            raise error

    def respond(
        self, environ: dict[str, Any], send: Send, loop: asyncio.AbstractEventLoop
    ) -> tuple[dict[str, Any], Any, list[after_response.Job]] | None:
        """Runs the request on this pool thread. A response held in memory is returned, with its
        content and the work the request left for after it (config/after_response.py), for the
        event loop to send (no further hop); so is one whose content is an asynchronous
        iterator (an event stream: the loop iterates it, `send_live`). Any other streaming one
        (file downloads) is sent from here chunk by chunk, and None is returned."""
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            started[:] = [status, headers]

        result = self.wsgi_app(environ, start_response)
        if getattr(result, "is_async", False):
            return response_start(*started), result, []  # closed by send_live
        try:
            if getattr(result, "streaming", True) is False:  # Django's in-memory response
                content = b"".join(result)
                # Taken before `close` below, whose request_finished signal would start them.
                return response_start(*started), content, after_response.take_deferred()

            async def deliver(message: dict[str, Any]) -> None:
                await send(message)

            def send_now(message: dict[str, Any]) -> None:
                asyncio.run_coroutine_threadsafe(deliver(message), loop).result()

            head_sent = False
            for chunk in result:
                if not head_sent:
                    send_now(response_start(*started))
                    head_sent = True
                if chunk:
                    send_now({"type": "http.response.body", "body": chunk, "more_body": True})
            if not head_sent:
                send_now(response_start(*started))
            send_now({"type": "http.response.body", "body": b""})
            return None
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()  # Django's request_finished signal: closes stale DB connections


def http_application() -> AsgiApp:
    """The ASGI application for HTTP: body caps around Django (see the module docstring)."""
    from django.core.asgi import get_asgi_application
    from django.core.wsgi import get_wsgi_application

    asgi_app = get_asgi_application()  # sets Django up
    return RequestSend(
        RequestBodyLimit(
            SyncViewsOnThreads(
                asgi_app=asgi_app, wsgi_app=get_wsgi_application(), threads=settings.WEB_THREADS
            )
        )
    )
