"""Oversized request bodies are refused before they are read, authenticated or not, with a JSON
413: by the web server (a real daphne process) and by the ASGI application itself."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection

from config.asgi_http import http_application, request_body_limit
from config.daphne_server import largest_body_limit
from config.embedded_redis import free_port, wait_for_port
from tests.processes import child_database_env

HUGE = 200 * 1024 * 1024


@pytest.fixture(scope="module")
def web_server(django_db_setup, tmp_path_factory) -> Iterator[int]:
    """`python -m config.daphne_server`, the command ./scripts/start and docker-compose run."""
    log_path = tmp_path_factory.mktemp("web") / "web.log"
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ASYNC_AGENT_SKIP_DOTENV": "1",
        "REDIS_URL": settings.REDIS_URL,
        **child_database_env(),
    }
    if connection.vendor == "sqlite":
        env.pop("DATABASE_URL", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "config.daphne_server"),
                *("-b", "127.0.0.1", "-p", str(port), "config.asgi:application"),
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, timeout=120)  # Django's start-up, on a busy machine
            yield port
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def read_response(sock: socket.socket, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """Status, headers and body of the reply, read until the server closes the connection."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def test_a_huge_declared_body_is_refused_before_it_is_sent(web_server):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", web_server), timeout=5) as sock:
        # Anonymous: no token, and not one byte of the 200 MB body.
        sock.sendall(
            b"POST /api/v1/goals HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n" + f"Content-Length: {HUGE}\r\n\r\n".encode()
        )
        status, headers, body = read_response(sock)
    assert status == 413
    assert headers["content-type"] == "application/json; charset=utf-8"
    payload = json.loads(body)
    assert payload["statusCode"] == 413
    assert payload["error"] == "Payload Too Large"
    assert str(largest_body_limit()) in payload["message"]
    assert time.monotonic() - started < 3


def test_a_chunked_body_is_cut_off_once_past_the_limit(web_server):
    chunk = b"x" * (1024 * 1024)
    sent = 0
    with socket.create_connection(("127.0.0.1", web_server), timeout=5) as sock:
        sock.sendall(
            b"POST /api/v1/task HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        try:
            while sent < HUGE:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what this test wants
        status, _, body = read_response(sock)
    assert status == 413
    assert json.loads(body)["error"] == "Payload Too Large"
    # Cut off past the limit (what socket buffers took in before the server closed them
    # counts as sent), far from the 200 MB the client meant to send.
    assert sent < HUGE / 2


def test_small_bodies_still_reach_the_application(web_server):
    with socket.create_connection(("127.0.0.1", web_server), timeout=5) as sock:
        body = b'{"objective": "a goal"}'
        sock.sendall(
            b"POST /api/v1/goals HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status, _, reply = read_response(sock)
    assert status == 401
    assert json.loads(reply) == {"error": "Authentication credentials were not provided."}


# --- the application's own cap, per path -----------------------------------------------------


def run_asgi(scope_path: str, headers: list, chunks: list[bytes]) -> tuple[int, dict, list]:
    """Calls the ASGI application; returns the status, body and how many chunks it read."""
    application = http_application()
    sent: list[dict] = []
    pending = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    read: list[bytes] = []

    async def receive() -> dict:
        if pending:
            message = pending.pop(0)
            read.append(message["body"])
            return message
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": scope_path,
        "raw_path": scope_path.encode(),
        "root_path": "",
        "scheme": "http",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(application(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), read


def test_the_application_refuses_a_declared_length_over_its_path_limit(db):
    limit = request_body_limit("/api/v1/goals")
    assert limit < request_body_limit("/api/v1/task")
    status, body, read = run_asgi(
        "/api/v1/goals", [(b"content-length", str(limit + 1).encode())], [b"{}"]
    )
    assert status == 413
    assert body["message"] == f"Request body is too large (limit {limit} bytes)"
    assert read == []  # not one chunk was read


def test_the_application_stops_reading_a_body_past_its_path_limit(db):
    limit = request_body_limit("/api/v1/goals")
    chunk = b"x" * (256 * 1024)
    chunks = [chunk] * (limit // len(chunk) + 40)
    status, body, read = run_asgi("/api/v1/goals", [], chunks)
    assert status == 413
    assert body["error"] == "Payload Too Large"
    assert len(read) == limit // len(chunk) + 1  # stopped at the first chunk past the limit


@pytest.mark.django_db(transaction=True)
def test_a_body_without_a_declared_length_reaches_the_view_whole(token):
    # Chunked: no Content-Length header; the view must still parse the whole JSON body.
    body = json.dumps({"objective": "a goal sent in chunks"}).encode()
    status, reply, read = run_asgi(
        "/api/v1/goals",
        [(b"authorization", f"Token {token.key}".encode()), (b"content-type", b"application/json")],
        [body[:10], body[10:]],
    )
    assert status == 201, reply
    assert reply["objective"] == "a goal sent in chunks"
    assert len(read) == 2
