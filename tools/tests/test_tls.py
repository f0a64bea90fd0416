"""https through the guard: the connection goes to the checked address while SNI, the
certificate check and `Host` use the URL's host name."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme

from tools.base import ToolError
from tools.services import tool_run

PAGE = b"<html><head><title>Secure page</title></head><body><p>Over TLS.</p></body></html>"


class TlsServer:
    def __init__(self, ca: trustme.CA, certificate_for: str) -> None:
        self.server_names: list[str | None] = []
        self.hosts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.hosts.append(self.headers["Host"])
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(PAGE)))
                self.end_headers()
                self.wfile.write(PAGE)

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(certificate_for).configure_cert(context)
        context.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def ca(tool_settings, tmp_path) -> trustme.CA:
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    tool_settings.TOOLS_CA_BUNDLE = str(bundle)
    tool_settings.TOOLS_ALLOWED_HOSTS = ["secure.test"]
    return authority


@pytest.fixture
def resolve_to_loopback(monkeypatch) -> None:
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host == "secure.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


@pytest.fixture
def tls_server(ca, resolve_to_loopback) -> Iterator[TlsServer]:
    server = TlsServer(ca, "secure.test")
    yield server
    server.stop()


@pytest.fixture
def wrong_name_server(ca, resolve_to_loopback) -> Iterator[TlsServer]:
    server = TlsServer(ca, "other.test")
    yield server
    server.stop()


def test_https_uses_the_host_name_for_sni_certificate_and_host(tls_server):
    url = f"https://secure.test:{tls_server.port}/page"

    result = tool_run(name="fetchPage", params={"url": url}, timeout=20)

    assert result["title"] == "Secure page"
    assert tls_server.server_names == ["secure.test"]
    assert tls_server.hosts == [f"secure.test:{tls_server.port}"]


def test_a_certificate_for_another_name_is_refused(wrong_name_server):
    url = f"https://secure.test:{wrong_name_server.port}/page"

    with pytest.raises(ToolError, match=r"TLS error with secure\.test"):
        tool_run(name="fetchPage", params={"url": url}, timeout=20)

    assert wrong_name_server.hosts == []


def test_an_untrusted_certificate_is_refused(tool_settings, tls_server):
    tool_settings.TOOLS_CA_BUNDLE = ""
    url = f"https://secure.test:{tls_server.port}/page"

    with pytest.raises(ToolError, match=r"TLS error with secure\.test"):
        tool_run(name="fetchPage", params={"url": url}, timeout=20)

    assert tls_server.hosts == []
