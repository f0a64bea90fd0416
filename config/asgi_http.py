"""Django's ASGI handler, tuned for many small API reads in one daphne process.

Django runs each request's synchronous code (middleware, DRF views, the ORM) on a thread made
for that request and discarded after it. That cost more than the work of a small API call:
every request paid for a thread, a new database connection and a new Redis connection (both are
per thread), and with a few requests in flight the threads fought over the GIL, so a process
served fewer requests per second with eight clients than with one.

Two changes, both keeping Django's rule that one request's synchronous code runs on one thread:

- *Quick* requests (GET/HEAD/OPTIONS of synchronous views not marked `runs_long` or
  `never_queued`) take turns on a few long-lived threads per process (`ASGI_QUICK_THREADS`),
  waiting for one to be free. Reads are short, so turns are short, and the threads keep their
  connections.
- Everything else (writes, async views such as the event streams, views marked `runs_long`
  such as planning, which waits on an LLM for minutes, and views marked `never_queued` such as
  the liveness probe, which must answer however busy the shared threads are) gets a thread of
  its own at once, as with Django. Those threads are reused too: up to `ASGI_IDLE_THREADS`
  wait for the next request.

Connections kept by reused threads are still closed when older than CONN_MAX_AGE or broken,
through Django's usual request signals.

Request bodies are capped before Django reads them (`request_body_limit`): a declared
Content-Length over the cap is answered 413 at once, and a body without one (chunked) is cut
off with a 413 as soon as it passes the cap, so an oversized body, authenticated or not, never
fills memory or a temporary file.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.urls import Resolver404, resolve

QUICK_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
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


def declared_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers") or []:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def capped_receive(receive: Any, limit: int) -> Any:
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


async def send_too_large(send: Any, limit: int) -> None:
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


def is_quick_request(scope: dict[str, Any]) -> bool:
    """A read served by a synchronous view that declares neither `runs_long = True` nor
    `never_queued = True`."""
    if scope.get("method") not in QUICK_METHODS:
        return False
    path = scope.get("path") or "/"
    root = scope.get("root_path") or ""
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    try:
        view = resolve(path).func
    except Resolver404:
        return True  # answered by the JSON 404 handler
    except Exception:  # an odd path: let Django deal with it on a thread of its own
        return False
    if iscoroutinefunction(view):
        return False
    view_class = getattr(view, "view_class", None) or getattr(view, "cls", None)
    return not (
        getattr(view_class, "runs_long", False) or getattr(view_class, "never_queued", False)
    )


class ApiASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []
        self._idle_lock = threading.Lock()
        # One set of quick threads per event loop (daphne has one; tests may run several).
        self._quick: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Queue] = (
            weakref.WeakKeyDictionary()
        )

    # --- requests -------------------------------------------------------------------------------
    def create_request(self, scope: Mapping[str, Any], body_file: Any):
        """Django's request, with CONTENT_LENGTH set for a body sent without one (chunked):
        the body is read in full by now, so its size is known, and the form parsers (which
        read exactly CONTENT_LENGTH bytes, and so saw an empty form) and the upload limits
        work on it as on any other body."""
        request, error_response = super().create_request(scope, body_file)
        if request is not None and "CONTENT_LENGTH" not in request.META:
            size = body_file.seek(0, 2)
            body_file.seek(0)
            if size:
                request.META["CONTENT_LENGTH"] = str(size)
        return request, error_response

    # --- threads of their own, reused ----------------------------------------------------------
    def _borrow_own(self) -> ThreadPoolExecutor:
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()  # the most recently used: its connections are warm
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def _give_back_own(self, executor: ThreadPoolExecutor) -> None:
        with self._idle_lock:
            if len(self._idle) < settings.ASGI_IDLE_THREADS:
                self._idle.append(executor)
                return
        executor.shutdown(wait=False)

    # --- quick threads, shared in turn ----------------------------------------------------------
    def _quick_threads(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        threads = self._quick.get(loop)
        if threads is None:
            threads = asyncio.Queue()
            for _ in range(max(1, settings.ASGI_QUICK_THREADS)):
                threads.put_nowait(
                    ThreadPoolExecutor(max_workers=1, thread_name_prefix="quick-request")
                )
            self._quick[loop] = threads
        return threads

    async def _handle_on(self, executor: ThreadPoolExecutor, scope, receive, send) -> None:
        limit = request_body_limit(scope.get("path") or "/")
        # Every thread-sensitive call of the request runs on this executor's one thread.
        async with ThreadSensitiveContext(executor=executor):
            try:
                await self.handle(scope, capped_receive(receive, limit), send)
            except BodyTooLarge:
                # Raised while Django reads the body, before anything was sent.
                await send_too_large(send, limit)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        limit = request_body_limit(scope.get("path") or "/")
        length = declared_length(scope)
        if length is not None and length > limit:
            await send_too_large(send, limit)
            return
        if is_quick_request(scope):
            threads = self._quick_threads()
            executor = await threads.get()
            try:
                await self._handle_on(executor, scope, receive, send)
            finally:
                threads.put_nowait(executor)
            return
        executor = self._borrow_own()
        try:
            await self._handle_on(executor, scope, receive, send)
        finally:
            self._give_back_own(executor)


def get_api_asgi_application() -> ApiASGIHandler:
    """Like django.core.asgi.get_asgi_application(), with the thread policy above."""
    import django

    django.setup(set_prefix=False)
    return ApiASGIHandler()
