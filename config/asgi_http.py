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
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.urls import Resolver404, resolve

QUICK_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
    def create_request(self, scope: dict[str, Any], body_file: Any):
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
        # Every thread-sensitive call of the request runs on this executor's one thread.
        async with ThreadSensitiveContext(executor=executor):
            await self.handle(scope, receive, send)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
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
