"""The network guard: private addresses in every spelling, redirects and DNS are refused before
anything is fetched; allowed hosts pass; the checked address is the one connected to."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from tests.fakes.http import Reply
from tools.base import ToolError
from tools.netguard import (
    UnsafeUrlError,
    blocked_reason,
    check_url,
    guarded_request,
    parse_numeric_host,
)
from tools.services import tool_run

SECRET_PAGE = Reply(
    200, b"<html><title>secret</title><body>internal</body></html>", {"Content-Type": "text/html"}
)
PAGE = Reply(
    200,
    b"<html><head><title>Public page</title></head><body><p>Hello there.</p></body></html>",
    {"Content-Type": "text/html; charset=utf-8"},
)


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("2852039166", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("10.1", "10.0.0.1"),
        ("8.8.8.8", "8.8.8.8"),
        ("example.com", None),
        ("1e100.net", None),
    ],
)
def test_numeric_host_spellings(spelling, address):
    parsed = parse_numeric_host(spelling)

    assert (str(parsed) if parsed else None) == address


@pytest.mark.parametrize("spelling", ["0999.0.0.1", "256.256.256.256", "1.2.3.4294967296"])
def test_malformed_numeric_hosts_are_refused(spelling):
    with pytest.raises(UnsafeUrlError):
        parse_numeric_host(spelling)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.2.3.4", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("100.64.0.1", "non-public"),
        ("100.100.100.200", "cloud metadata"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("fd00:ec2::254", "cloud metadata"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback (IPv4 inside IPv6)"),
        ("::ffff:169.254.169.254", "cloud metadata (IPv4 inside IPv6)"),
        ("::ffff:10.0.0.1", "private (IPv4 inside IPv6)"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata (IPv4 inside IPv6)"),
        ("2002:7f00:1::", "loopback (IPv4 inside IPv6)"),
        ("::127.0.0.1", "loopback (IPv4 inside IPv6)"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_address_classification(address, reason):
    assert blocked_reason(ipaddress.ip_address(address)) == reason


# Every row: refused with a clear error, and the local server (the only thing listening on
# 127.0.0.1:<port>) received nothing. 127.0.0.1 itself is allowed in these tests.
REFUSED_URLS = [
    "http://2130706433:{port}/secret",
    "http://0x7f000001:{port}/secret",
    "http://0177.0.0.1:{port}/secret",
    "http://0x7f.0.0.1:{port}/secret",
    "http://127.1:{port}/secret",
    "http://[::ffff:127.0.0.1]:{port}/secret",
    "http://[::ffff:7f00:1]:{port}/secret",
    "http://[::1]:{port}/secret",
    "http://[::]:{port}/secret",
    "http://0.0.0.0:{port}/secret",
    "http://0:{port}/secret",
    "http://localhost:{port}/secret",
    "http://LOCALHOST.:{port}/secret",
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://100.100.100.200/latest/meta-data/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
]


@pytest.mark.parametrize("template", REFUSED_URLS)
def test_fetch_page_refuses_private_addresses(tool_settings, http_server, template):
    http_server.route("GET", "*", SECRET_PAGE)
    url = template.format(port=http_server.port)

    with pytest.raises(ToolError) as caught:
        tool_run(name="fetchPage", params={"url": url}, timeout=10)

    assert "Refusing to request" in caught.value.message
    assert http_server.requests == []


@pytest.mark.parametrize("template", REFUSED_URLS[:12])
def test_webhook_refuses_private_addresses(tool_settings, http_server, template):
    http_server.route("POST", "*", Reply(200, {"ok": True}))
    url = template.format(port=http_server.port)

    with pytest.raises(ToolError, match="Refusing to request"):
        tool_run(name="sendWebhook", params={"url": url, "payload": {"a": 1}}, timeout=10)

    assert http_server.requests == []


def test_allowed_host_is_fetched(tool_settings, http_server):
    http_server.route("GET", "/page", PAGE)

    result = tool_run(name="fetchPage", params={"url": http_server.url("/page")}, timeout=10)

    assert result["title"] == "Public page"
    assert len(http_server.requests) == 1


def test_nothing_is_allowed_by_default(settings, http_server):
    settings.TOOLS_ALLOWED_HOSTS = []
    http_server.route("GET", "*", PAGE)

    with pytest.raises(ToolError, match="loopback"):
        tool_run(name="fetchPage", params={"url": http_server.url("/page")}, timeout=10)

    assert http_server.requests == []


def test_subdomain_allow_entry(settings):
    settings.TOOLS_ALLOWED_HOSTS = [".corp.test"]
    from tools.netguard import host_is_allowed

    assert host_is_allowed("search.corp.test")
    assert host_is_allowed("corp.test")
    assert not host_is_allowed("evilcorp.test")


@pytest.mark.parametrize(
    "location",
    [
        "http://localhost:{port}/secret",  # a name that resolves to loopback, not allowed
        "http://2130706433:{port}/secret",
        "http://[::ffff:127.0.0.1]:{port}/secret",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
    ],
)
def test_redirect_to_a_private_address_is_refused(tool_settings, http_server, location):
    http_server.route(
        "GET", "/start", Reply(302, b"", {"Location": location.format(port=http_server.port)})
    )
    http_server.route("GET", "/secret", SECRET_PAGE)

    with pytest.raises(ToolError, match=r"Redirect to .* refused"):
        tool_run(name="fetchPage", params={"url": http_server.url("/start")}, timeout=10)

    assert [request.path for request in http_server.requests] == ["/start"]


def test_redirect_from_an_allowed_name_to_127_0_0_1_is_refused(settings, http_server):
    # `localhost` is allowed by name; the address 127.0.0.1 is not.
    settings.TOOLS_ALLOWED_HOSTS = ["localhost"]
    http_server.route("GET", "/start", Reply(302, b"", {"Location": http_server.url("/secret")}))
    http_server.route("GET", "/secret", SECRET_PAGE)
    start = f"http://localhost:{http_server.port}/start"

    with pytest.raises(ToolError, match=r"Redirect to .* refused.*loopback"):
        tool_run(name="fetchPage", params={"url": start}, timeout=10)

    assert [request.path for request in http_server.requests] == ["/start"]


def test_redirects_are_followed_up_to_five(tool_settings, http_server):
    for hop in range(5):
        http_server.route("GET", f"/hop{hop}", Reply(301, b"", {"Location": f"/hop{hop + 1}"}))
    http_server.route("GET", "/hop5", PAGE)

    result = tool_run(name="fetchPage", params={"url": http_server.url("/hop0")}, timeout=10)

    assert result["title"] == "Public page"
    assert result["url"] == http_server.url("/hop0")
    assert result["finalUrl"] == http_server.url("/hop5")
    assert len(http_server.requests) == 6


def test_a_sixth_redirect_is_not_followed(tool_settings, http_server):
    for hop in range(6):
        http_server.route("GET", f"/hop{hop}", Reply(302, b"", {"Location": f"/hop{hop + 1}"}))
    http_server.route("GET", "/hop6", PAGE)

    with pytest.raises(ToolError, match="Too many redirects"):
        tool_run(name="fetchPage", params={"url": http_server.url("/hop0")}, timeout=10)

    assert "/hop6" not in [request.path for request in http_server.requests]


def test_credentials_are_not_forwarded_to_another_host(settings, http_server):
    settings.TOOLS_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    http_server.route(
        "GET",
        "/start",
        Reply(302, b"", {"Location": f"http://localhost:{http_server.port}/next"}),
    )
    http_server.route("GET", "/next", PAGE)

    result = guarded_request(
        "GET", http_server.url("/start"), headers={"Authorization": "Bearer t", "X-Trace": "1"}
    )

    assert result.status == 200
    first, second = http_server.requests
    assert first.headers.get("Authorization") == "Bearer t"
    assert "Authorization" not in second.headers
    assert second.headers.get("X-Trace") == "1"


def test_connects_to_the_checked_address_with_the_original_host_header(
    settings, http_server, monkeypatch
):
    """DNS rebinding: the name is resolved once; a later, different answer is never used."""
    settings.TOOLS_ALLOWED_HOSTS = ["rebind.test"]
    http_server.route("GET", "/page", PAGE)
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host == "rebind.test":
            lookups.append(host)
            # First answer: the test server. Any later answer: an unreachable address.
            address = "127.0.0.1" if len(lookups) == 1 else "192.0.2.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    url = f"http://rebind.test:{http_server.port}/page"

    result = tool_run(name="fetchPage", params={"url": url}, timeout=10)

    assert result["title"] == "Public page"
    assert lookups == ["rebind.test"]
    assert http_server.requests[0].headers["Host"] == f"rebind.test:{http_server.port}"


def test_a_name_resolving_to_a_private_address_is_refused(settings, http_server, monkeypatch):
    settings.TOOLS_ALLOWED_HOSTS = []
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host == "innocent.test":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            ]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)

    with pytest.raises(UnsafeUrlError, match=r"innocent.test \(127.0.0.1\).*loopback"):
        check_url(f"http://innocent.test:{http_server.port}/")
    assert http_server.requests == []


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "file:///etc/passwd", "gopher://127.0.0.1:70/", "http:///nohost"],
)
def test_only_http_urls(url):
    with pytest.raises(UnsafeUrlError):
        check_url(url)


def test_response_size_is_capped(tool_settings, http_server):
    tool_settings.TOOLS_FETCH_MAX_BYTES = 2000
    big = b"<html><title>big</title><body>" + b"<p>word</p>" * 1000 + b"</body></html>"
    http_server.route("GET", "/big", Reply(200, big, {"Content-Type": "text/html"}))

    with pytest.raises(ToolError, match="larger than 2000 bytes"):
        tool_run(name="fetchPage", params={"url": http_server.url("/big")}, timeout=10)


def test_truncating_cap_keeps_the_first_bytes(tool_settings, http_server):
    http_server.route("GET", "/big", Reply(200, b"x" * 5000, {"Content-Type": "text/plain"}))

    result = guarded_request("GET", http_server.url("/big"), max_bytes=1000, oversize="truncate")

    assert result.body == b"x" * 1000
    assert result.truncated is True
