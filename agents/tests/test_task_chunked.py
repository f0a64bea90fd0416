"""`POST /api/v1/task` with a chunked multipart body (Transfer-Encoding: chunked, no
Content-Length) through a real daphne server: it is read and run like any other upload, and the
request size limit still holds."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from agents.seeding import agents_seed
from config.embedded_redis import free_port, wait_for_port
from tests.factories import TokenFactory
from tests.fakes.openai_server import ChatReply
from tests.processes import child_database_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

DAPHNE = Path(sys.executable).with_name("daphne")
LIMIT = 20_000


@pytest.fixture
def daphne_port(fake_llm, tmp_path) -> Iterator[int]:
    port = free_port()
    env = {
        **os.environ,
        **child_database_env(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ASYNC_AGENT_SKIP_DOTENV": "1",
        "REDIS_URL": settings.REDIS_URL,
        "OPENAI_BASE_URL": fake_llm.base_url,
        "OPENAI_API_KEY": "sk-test-fake",
        "LLM_PROVIDER": "openai",
        "LLM_MODEL": "gpt-4o-mini",
        "LLM_MAX_RETRIES": "0",
        "TASK_MAX_REQUEST_BYTES": str(LIMIT),
        "TASK_MAX_FILE_BYTES": str(LIMIT),
    }
    if connection.vendor == "sqlite":
        env.pop("DATABASE_URL", None)
    log = (tmp_path / "daphne.log").open("wb")
    process = subprocess.Popen(
        [str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=60)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = f"----test{uuid.uuid4().hex}"
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    for name, (filename, data) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: text/plain\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post_chunked(port: int, token: str, body: bytes, content_type: str) -> tuple[int, dict]:
    """Send `body` in 1000-byte chunks with Transfer-Encoding: chunked and no Content-Length."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.putrequest("POST", "/api/v1/task")
        connection.putheader("Authorization", f"Token {token}")
        connection.putheader("Content-Type", content_type)
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        for start in range(0, len(body), 1000):
            chunk = body[start : start + 1000]
            connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        connection.send(b"0\r\n\r\n")
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def test_a_chunked_upload_runs_the_task(daphne_port, fake_llm):
    agents_seed()
    token = TokenFactory().key
    fake_llm.enqueue(ChatReply(content="A fox, quick and brown.", prompt_tokens=40))
    body, content_type = multipart(
        {"taskName": "ParaphrasePro", "prompt": "Paraphrase the notes"},
        {"file": ("notes.txt", b"The quick brown fox. " * 300)},
    )
    assert len(body) > 5000  # several chunks

    status, payload = post_chunked(daphne_port, token, body, content_type)

    assert status == 200, payload
    assert payload["response"] == "A fox, quick and brown."
    assert payload["inputFiles"] == [{"filename": "notes.txt", "mimeType": "text/plain"}]
    assert "quick brown fox" in json.dumps(fake_llm.requests[-1])


def test_a_chunked_upload_over_the_limit_is_413_with_the_limit(daphne_port, fake_llm):
    agents_seed()
    token = TokenFactory().key
    body, content_type = multipart(
        {"taskName": "ParaphrasePro", "prompt": "Paraphrase the notes"},
        {"file": ("big.txt", b"z" * (LIMIT + 5000))},
    )

    status, payload = post_chunked(daphne_port, token, body, content_type)

    assert status == 413, payload
    assert "larger than the limit" in payload["error"]
    assert payload["limitBytes"] == LIMIT
    assert fake_llm.requests == []
