"""The ASGI handler's thread policy (config/asgi_http.py): quick reads take turns on a shared
thread, other requests get reused threads of their own, and nothing quick can hold up a slow
or writing request."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from config.asgi_http import is_quick_request
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


TOOLS = "/api/v1/tools"  # a quick read


@pytest.fixture
def quick_threads(monkeypatch):
    """Record the thread each tool-list read runs on; `gate`, when set, holds requests."""
    seen: list[str] = []
    gate: dict[str, threading.Event | None] = {"event": None}
    entered = threading.Event()
    real_get = tool_views.ToolListApi.get

    def recording_get(self, request, *args, **kwargs):
        seen.append(threading.current_thread().name)
        entered.set()
        if gate["event"] is not None:
            assert gate["event"].wait(10)
        return real_get(self, request, *args, **kwargs)

    monkeypatch.setattr(tool_views.ToolListApi, "get", recording_get)
    return seen, gate, entered


def test_requests_are_classified_by_method_and_view():
    def scope(method: str, path: str) -> dict[str, Any]:
        return {"type": "http", "method": method, "path": path, "root_path": ""}

    assert is_quick_request(scope("GET", "/api/v1/goals"))
    assert is_quick_request(scope("GET", TOOLS))
    assert not is_quick_request(scope("GET", "/health"))  # never_queued
    assert is_quick_request(scope("GET", "/no/such/route"))
    assert not is_quick_request(scope("POST", "/api/v1/goals"))
    assert not is_quick_request(scope("DELETE", "/api/v1/goals/goal_x"))
    assert not is_quick_request(scope("GET", "/health/ready"))  # runs_long
    assert not is_quick_request(scope("GET", "/api/v1/dag-executions/abc/events"))  # async
    assert not is_quick_request(scope("GET", "/api/v1/runs/abc/events"))


def test_quick_reads_run_in_turn_on_one_long_lived_thread(quick_threads, token):
    seen, gate, entered = quick_threads
    for _ in range(3):
        assert call("GET", TOOLS, token) == 200
    assert len(set(seen)) == 1 and seen[0].startswith("quick-request")

    gate["event"] = threading.Event()
    entered.clear()
    first = start_call("GET", TOOLS, token)
    assert entered.wait(10)
    entered.clear()
    second = start_call("GET", TOOLS, token)
    assert not entered.wait(0.3)  # waits for the shared thread instead of taking another
    gate["event"].set()
    assert finished_status(first) == 200 and finished_status(second) == 200
    assert len(set(seen)) == 1


def test_a_busy_quick_thread_does_not_hold_up_other_requests(quick_threads, token):
    _seen, gate, entered = quick_threads
    gate["event"] = threading.Event()
    blocked = start_call("GET", TOOLS, token)
    assert entered.wait(10)
    try:
        # A write (405 here, but it goes through Django) and a long-running read both finish
        # while the quick thread is still busy.
        assert call("POST", TOOLS, token) == 405
        assert call("GET", "/health/ready") in (200, 503)
    finally:
        gate["event"].set()
    assert finished_status(blocked) == 200


def test_health_answers_promptly_while_the_quick_threads_are_busy(quick_threads, token, settings):
    settings.ASGI_QUICK_THREADS = 1
    _seen, gate, entered = quick_threads
    gate["event"] = threading.Event()
    blocked = start_call("GET", TOOLS, token)
    queued = None
    try:
        assert entered.wait(10)
        queued = start_call("GET", TOOLS, token)  # waits its turn behind the slow one
        started = time.monotonic()
        probe = start_call("GET", "/health")
        probe.wait_finished(5)
        assert probe.status == 200
        assert time.monotonic() - started < 2
        assert not queued.finished  # the quick path was still busy all along
    finally:
        gate["event"].set()
    assert finished_status(blocked) == 200
    assert finished_status(queued) == 200


def test_threads_of_other_requests_are_reused(monkeypatch):
    seen: list[str] = []
    real_get = views.ReadinessApi.get

    def recording_get(self, request, *args, **kwargs):
        seen.append(threading.current_thread().name)
        return real_get(self, request, *args, **kwargs)

    monkeypatch.setattr(views.ReadinessApi, "get", recording_get)
    for _ in range(3):
        call("GET", "/health/ready")
    assert len(seen) == 3 and len(set(seen)) == 1 and seen[0].startswith("request")
