"""A tool timeout stops the work itself: sockets are closed, retries and sleeps end, and the
tool's thread is gone when `tool_run` raises."""

from __future__ import annotations

import threading
import time

import pytest

from tests.fakes.http import Reply
from tools.base import ToolCancelled, ToolContext, ToolTimeout
from tools.services import tool_run


def tool_threads(name: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == f"tool-{name}"]


def test_timeout_closes_the_connection_of_a_download_that_never_ends(tool_settings, drip_server):
    started = time.monotonic()

    with pytest.raises(ToolTimeout, match=r"fetchPage tool did not finish within 0.5 s"):
        tool_run(name="fetchPage", params={"url": drip_server.url}, timeout=0.5)

    assert time.monotonic() - started < 3
    assert tool_threads("fetchPage") == []
    # The server notices that the client hung up: the download really stopped.
    assert drip_server.client_gone.wait(timeout=5)
    assert drip_server.connections == 1


def test_timeout_stops_retries_and_backoff(tool_settings, http_server):
    tool_settings.TOOLS_RETRY_BACKOFF_SECONDS = 30  # a retry would come much later than the timeout
    http_server.route("POST", "/hook", Reply(503, b"busy"))
    started = time.monotonic()

    # Long enough for the first attempt to reach the server on a loaded machine, far shorter
    # than the backoff before a retry.
    with pytest.raises(ToolTimeout):
        tool_run(
            name="sendWebhook",
            params={"url": http_server.url("/hook"), "payload": {}},
            timeout=2,
        )

    assert time.monotonic() - started < 6
    # The thread is gone, so no later attempt can ever be sent.
    assert tool_threads("sendWebhook") == []
    assert len(http_server.requests) == 1


def test_timeout_in_fetch_urls_stops_every_download(tool_settings, drip_server):
    tool_settings.TOOLS_FETCH_CONCURRENCY = 2
    urls = [f"{drip_server.url}?n={index}" for index in range(6)]

    with pytest.raises(ToolTimeout):
        tool_run(name="fetchURLs", params={"urls": urls}, timeout=0.5)

    assert tool_threads("fetchURLs") == []
    assert not [t for t in threading.enumerate() if t.name.startswith("fetchURLs")]
    # Only the first two downloads ever started; the queued ones never connected.
    assert drip_server.connections == 2


def test_the_caller_can_cancel(tool_settings, drip_server):
    context = ToolContext()
    threading.Timer(0.3, context.cancel.cancel).start()
    started = time.monotonic()

    with pytest.raises(ToolCancelled):
        tool_run(name="fetchPage", params={"url": drip_server.url}, context=context, timeout=30)

    assert time.monotonic() - started < 5
    assert drip_server.client_gone.wait(timeout=5)


def test_fast_calls_are_unaffected(tool_settings):
    result = tool_run(name="writeFile", params={"path": "a.txt", "content": "x"}, timeout=0.5)

    assert result["bytesWritten"] == 1
