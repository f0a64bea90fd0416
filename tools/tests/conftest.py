"""Real servers on loopback for the tool tests: SMTP (aiosmtpd) and a slow HTTP server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller

from config.embedded_redis import free_port
from tests.fakes.http import LocalHttpServer


@pytest.fixture
def tool_settings(settings, artifacts_dir):
    """Loopback allowed for the network tools, quick retries, a fresh artifacts folder."""
    settings.TOOLS_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.TOOLS_RETRY_BACKOFF_SECONDS = 0.01
    settings.WEBHOOK_SECRET = ""
    return settings


@pytest.fixture(scope="session")
def shared_http_server() -> Iterator[LocalHttpServer]:
    server = LocalHttpServer().start()
    yield server
    server.stop()


@pytest.fixture
def http_server(shared_http_server: LocalHttpServer) -> LocalHttpServer:
    """The root fixture's server, started once for these many short tests (its shutdown
    takes half a second), with routes and recorded requests cleared for each test."""
    shared_http_server.requests.clear()
    shared_http_server._routes.clear()
    return shared_http_server


# --- SMTP ---------------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class SmtpSink:
    host: str
    port: int
    messages: list[ReceivedMail] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd hook
        self.messages.append(
            ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
        )
        return "250 Message accepted"


@pytest.fixture
def smtp_server(settings) -> Iterator[SmtpSink]:
    """A real SMTP server on 127.0.0.1, configured as Django's mail server."""
    sink = SmtpSink("127.0.0.1", free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = sink.host
    settings.EMAIL_PORT = sink.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    settings.DEFAULT_FROM_EMAIL = "Async Agent <agent@example.com>"
    yield sink
    controller.stop()


# --- An HTTP server that never finishes its answer ----------------------------------------------


class DripServer:
    """Answers every request with headers and then a trickle of body bytes, until the client
    goes away; `client_gone` is set when a write fails (the client closed the connection)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.connections = 0
        self.client_gone = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slow"

    def start(self) -> DripServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _address = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(client,), daemon=True).start()

    def _drip(self, client: socket.socket) -> None:
        with client:
            client.recv(65536)
            try:
                client.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                    b"Connection: close\r\n\r\n<html><body>"
                )
                while not self._stop.wait(0.02):
                    client.sendall(b"<p>still loading</p>")
            except OSError:
                self.client_gone.set()


@pytest.fixture
def drip_server() -> Iterator[DripServer]:
    server = DripServer().start()
    yield server
    server.stop()
