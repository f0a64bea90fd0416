"""Allow-list entries may name a port, and this service's own web and Redis ports are never
reachable through tools, even when their host is allow-listed. The fetch timeout is a deadline
for the whole answer, not for each read."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.fakes.http import Reply
from tools.base import ToolError
from tools.netguard import UnsafeUrlError, check_url, host_is_allowed
from tools.services import tool_run

PAGE = Reply(200, "<html><head><title>Local</title></head><body>hi</body></html>",
             {"Content-Type": "text/html"})  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "host", "port", "allowed"),
    [
        ("127.0.0.1", "127.0.0.1", 8081, True),
        ("127.0.0.1:8081", "127.0.0.1", 8081, True),
        ("127.0.0.1:8081", "127.0.0.1", 8082, False),
        ("[::1]:8081", "::1", 8081, True),
        ("[::1]:8081", "::1", 22, False),
        ("::1", "::1", 22, True),
        ("search.corp.test:443", "search.corp.test", 443, True),
        ("search.corp.test:443", "search.corp.test", 80, False),
        (".corp.test:8443", "a.corp.test", 8443, True),
        (".corp.test:8443", "a.corp.test", 443, False),
    ],
)
def test_allow_list_entries_take_an_optional_port(settings, entry, host, port, allowed):
    settings.TOOLS_ALLOWED_HOSTS = [entry]
    assert host_is_allowed(host, port=port) is allowed


def test_an_entry_with_a_port_opens_only_that_port(settings, artifacts_dir, http_server):
    http_server.route("GET", "/page", PAGE)
    port = urlsplit(http_server.url("/page")).port
    settings.TOOLS_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]

    result = tool_run(name="fetchPage", params={"url": http_server.url("/page")}, timeout=10)
    assert result["title"] == "Local"

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other_port = other.getsockname()[1]
    with pytest.raises(ToolError, match="loopback"):
        tool_run(name="fetchPage", params={"url": f"http://127.0.0.1:{other_port}/"}, timeout=10)


def test_redis_is_never_reachable_even_when_its_host_is_allowed(settings, artifacts_dir):
    redis_port = urlsplit(settings.REDIS_URL).port
    settings.TOOLS_ALLOWED_HOSTS = ["127.0.0.1", "localhost", f"127.0.0.1:{redis_port}"]
    for url in (f"http://127.0.0.1:{redis_port}/", f"http://localhost:{redis_port}/"):
        with pytest.raises(UnsafeUrlError, match="own Redis port"):
            check_url(url)
    with pytest.raises(ToolError, match="own Redis port"):
        tool_run(
            name="sendWebhook",
            params={"url": f"http://127.0.0.1:{redis_port}/", "payload": {"x": 1}},
            timeout=10,
        )


def test_the_web_ports_are_never_reachable_even_when_allowed(settings, artifacts_dir):
    settings.APP_PORTS = [8000, 8123]
    settings.TOOLS_ALLOWED_HOSTS = ["127.0.0.1", "127.0.0.1:8123"]
    for port in (8000, 8123):
        with pytest.raises(UnsafeUrlError, match="own web port"):
            check_url(f"http://127.0.0.1:{port}/admin/")
    # Other ports of the allowed host stay reachable.
    assert check_url("http://127.0.0.1:8124/").port == 8124


def test_a_redirect_to_the_web_port_is_refused(settings, artifacts_dir, http_server):
    settings.APP_PORTS = [8000]
    settings.TOOLS_ALLOWED_HOSTS = ["127.0.0.1"]
    http_server.route("GET", "/hop", Reply(302, b"", {"Location": "http://127.0.0.1:8000/admin/"}))
    with pytest.raises(ToolError, match="own web port"):
        tool_run(name="fetchPage", params={"url": http_server.url("/hop")}, timeout=10)


def test_a_slow_drip_server_is_cut_off_at_the_fetch_deadline(tool_settings, drip_server):
    tool_settings.TOOLS_FETCH_TIMEOUT_SECONDS = 1.0
    started = time.monotonic()

    with pytest.raises(ToolError, match=r"Timed out requesting .*within 1 s") as raised:
        # The tool's own timeout is far longer: the fetch deadline must end it.
        tool_run(name="fetchPage", params={"url": drip_server.url}, timeout=30)

    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 4, elapsed
    assert "fetchPage tool did not finish" not in str(raised.value)
    assert drip_server.client_gone.wait(timeout=5)


def test_fetch_timeout_setting_is_what_the_tools_use():
    assert settings.TOOLS_FETCH_TIMEOUT_SECONDS < settings.TOOL_TIMEOUT_SECONDS
