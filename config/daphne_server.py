"""The web server: daphne, refusing an oversized request body before it is sent, with
TCP_NODELAY on its connections (`no_delay`).

daphne (through Twisted) reads a request's whole body before it hands the request to the
application, so the application's own cap (config/asgi_http.py) would answer only after a
200 MB upload had arrived, been written to a temporary file and queued in memory. Here the
Twisted request refuses as soon as the headers declare a body over the largest cap any path
has, and stops a body without a declared length (chunked) as soon as it passes that cap: a
JSON 413, then the connection is closed without reading the rest.

Run it like daphne: `python -m config.daphne_server -b 127.0.0.1 -p 8000 config.asgi:application`.
"""

from __future__ import annotations

import logging
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server

logger = logging.getLogger(__name__)


def largest_body_limit() -> int:
    from config.asgi_http import request_body_limit

    return max(request_body_limit("/api/v1/task"), request_body_limit("/"))


def too_large_response(limit: int) -> bytes:
    from config.api.exceptions import framework_body
    from config.api.renderers import dumps

    body = dumps(
        framework_body(
            413, f"Request body is too large (limit {limit} bytes)", "FST_ERR_CTP_BODY_TOO_LARGE"
        )
    )
    head = (
        "HTTP/1.1 413 Payload Too Large\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def no_delay(transport: Any) -> None:
    """Turn Nagle's algorithm off on a TCP connection, as most HTTP servers do. With it on, a
    small write (an event stream's frame) waits while an earlier one is still unacknowledged,
    and a client delays its acknowledgement by up to 40 ms: live events would arrive late."""
    set_no_delay = getattr(transport, "setTcpNoDelay", None)  # not on a UNIX socket
    if set_no_delay is not None:
        set_no_delay(True)


class BodyLimitedRequest(WebRequest):
    """daphne's request, refusing a body over `largest_body_limit()` while it arrives."""

    refused = False
    body_bytes = 0

    def gotLength(self, length: int | None) -> None:
        no_delay(self.channel.transport if self.channel else None)
        self.body_limit = largest_body_limit()
        if length is not None and length > self.body_limit:
            super().gotLength(0)
            self.refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        self.body_bytes += len(data)
        if self.body_bytes > self.body_limit:
            self.refuse()
            return
        super().handleContentChunk(data)

    def refuse(self) -> None:
        self.refused = True
        logger.info("refused a request body over %d bytes", self.body_limit)
        transport = self.channel.transport if self.channel else None
        if transport is not None:
            transport.write(too_large_response(self.body_limit))
            transport.loseConnection()


class BodyLimitedHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BodyLimitedRequest
        return protocol

    def log(self, request: Any) -> None:
        """Twisted's own access line is not written: daphne sends Twisted's log nowhere (at its
        default verbosity) and writes its own access log, so formatting a second line for every
        request only cost CPU (about a tenth of a small request's)."""


class BodyLimitedServer(Server):
    """daphne's server, serving HTTP with BodyLimitedHTTPFactory."""

    @property
    def http_factory(self) -> HTTPFactory:
        return self._body_limited_factory

    @http_factory.setter
    def http_factory(self, factory: HTTPFactory) -> None:
        # Server.run() makes its HTTP factory and assigns it here; ours serves in its place.
        self._body_limited_factory = BodyLimitedHTTPFactory(self)


class WebServerCommand(CommandLineInterface):
    server_class = BodyLimitedServer


if __name__ == "__main__":
    WebServerCommand.entrypoint()
