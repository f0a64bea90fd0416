"""HTTP through the project's ASGI application (config/asgi_http.py): a synchronous view's
request runs whole on a thread of the process's pool, reused with its database connection; a
slow request does not hold up others; the event streams are such views too; streaming responses
and bodies without a declared length work."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from config.asgi_http import is_async_view
from ops import views
from tests.sse_client import AsgiSseClient
from tools import views as tool_views

pytestmark = pytest.mark.django_db(transaction=True)


def start_call(method: str, path: str, token=None) -> AsgiSseClient:
    """A request through the project's ASGI application, not waiting for its response."""
    headers = {"authorization": f"Token {token.key}"} if token is not None else None
    return AsgiSseClient(path, method=method, headers=headers).start(wait=False)


def finished_status(client: AsgiSseClient) -> int:
    client.wait_finished(20)
    return client.status


def call(method: str, path: str, token=None) -> int:
    return finished_status(start_call(method, path, token))


TOOLS = "/api/v1/tools"


@pytest.fixture
def tool_reads(monkeypatch):
    """Record the thread (and its database connection) each tool-list read runs on; `gate`,
    when set, holds requests."""
    seen: list[tuple[str, int]] = []
    gate: dict[str, threading.Event | None] = {"event": None}
    entered = threading.Event()
    real_get = tool_views.ToolListApi.get

    def recording_get(self, request, *args, **kwargs):
        connection.ensure_connection()
        seen.append((threading.current_thread().name, id(connection.connection)))
        entered.set()
        if gate["event"] is not None:
            assert gate["event"].wait(10)
        return real_get(self, request, *args, **kwargs)

    monkeypatch.setattr(tool_views.ToolListApi, "get", recording_get)
    return seen, gate, entered


def test_every_view_even_an_event_stream_goes_to_the_request_pool():
    def scope(path: str) -> dict[str, Any]:
        return {"type": "http", "method": "GET", "path": path, "root_path": ""}

    # The streams check their request on a pool thread and stream from the event loop.
    assert not is_async_view(scope("/api/v1/dag-executions/abc/events"))
    assert not is_async_view(scope("/api/v1/runs/abc/events"))
    assert not is_async_view(scope("/api/v1/goals"))
    assert not is_async_view(scope("/health"))
    assert not is_async_view(scope("/admin/"))
    assert not is_async_view(scope("/no/such/route"))  # the JSON 404 handler


def test_requests_in_turn_reuse_one_pool_thread_and_its_connection(tool_reads, token):
    seen, _gate, _entered = tool_reads
    for _ in range(8):
        assert call("GET", TOOLS, token) == 200
    threads = {name for name, _ in seen}
    assert all(name.startswith("request") for name in threads)
    assert len(threads) < 8  # threads are reused...
    assert len(set(seen)) == len(threads)  # ...each with its database connection


def test_a_slow_request_does_not_hold_up_others(tool_reads, token):
    seen, gate, entered = tool_reads
    hold = gate["event"] = threading.Event()
    blocked = start_call("GET", TOOLS, token)
    try:
        assert entered.wait(10)
        gate["event"] = None  # only the first read is held
        # Another read of the same view, a write (405 here, but it goes through Django) and
        # the liveness probe all finish while the first read is still held.
        assert call("GET", TOOLS, token) == 200
        assert call("POST", TOOLS, token) == 405
        assert call("GET", "/health") == 200
        assert not blocked.finished
    finally:
        hold.set()
    assert finished_status(blocked) == 200
    assert seen[0][0] != seen[1][0]  # each ran on a thread of its own


def test_requests_never_use_more_threads_than_the_pool_has(monkeypatch):
    seen: list[str] = []
    real_get = views.ReadinessApi.get

    def recording_get(self, request, *args, **kwargs):
        seen.append(threading.current_thread().name)
        return real_get(self, request, *args, **kwargs)

    monkeypatch.setattr(views.ReadinessApi, "get", recording_get)
    clients = [start_call("GET", "/health/ready") for _ in range(settings.WEB_THREADS + 8)]
    assert all(finished_status(client) in (200, 503) for client in clients)
    assert len(set(seen)) <= settings.WEB_THREADS


def test_a_streaming_response_is_sent_whole():
    # Static files are streamed (WhiteNoise's file response).
    path = settings.BASE_DIR / "static" / "favicon.svg"
    client = AsgiSseClient("/static/favicon.svg").start()
    assert client.read_all() == path.read_bytes()
    assert client.status == 200


def test_work_left_for_after_the_response_starts_once_it_is_sent():
    """A request's deferred work (config/after_response.py) starts only after the event loop
    has handed the whole response to the server, not when Django closes the response on the
    pool thread (before the loop sends it)."""
    import asyncio

    from django.http import HttpResponse

    from config import after_response
    from config.asgi_http import SyncViewsOnThreads

    sent: list[dict[str, Any]] = []
    seen_when_run: list[int] = []
    ran = threading.Event()

    def job() -> None:
        seen_when_run.append(len(sent))
        ran.set()

    def wsgi_app(environ, start_response):
        after_response.defer(job)
        response = HttpResponse(b"done")
        start_response("200 OK", list(response.items()))
        return response  # its close() sends request_finished

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)  # a slow transport: the job must still wait for it
        sent.append(message)

    app = SyncViewsOnThreads(asgi_app=None, wsgi_app=wsgi_app, threads=1)  # type: ignore[arg-type]
    scope = {"type": "http", "method": "GET", "path": "/health", "headers": []}
    asyncio.run(app(scope, receive, send))
    assert ran.wait(10)
    assert seen_when_run == [2]  # the response's start and its body
    assert sent[1]["body"] == b"done"
