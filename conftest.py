"""Fixtures shared by every test: API clients, real servers (HTTP, chat completions, Celery)."""

from __future__ import annotations

# First: private Redis, temporary folders and settings, before Django reads its settings.
from tests import bootstrap

bootstrap.setup_django()

import asyncio  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402

import pytest  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from tests.factories import TokenFactory, UserFactory  # noqa: E402
from tests.fakes.http import LocalHttpServer  # noqa: E402
from tests.fakes.openai_server import FakeChatCompletions  # noqa: E402


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def token(user):
    return TokenFactory(user=user)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def api(token) -> APIClient:
    """A client that sends `Authorization: Token <key>` on every request."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def artifacts_dir(settings, tmp_path):
    path = tmp_path / "artifacts"
    path.mkdir()
    settings.ARTIFACTS_DIR = path
    return path


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[FakeChatCompletions]:
    server = FakeChatCompletions().start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(fake_llm_server: FakeChatCompletions, settings, monkeypatch) -> FakeChatCompletions:
    """The scripted chat-completions server, configured as the default OpenAI provider."""
    fake_llm_server.reset()
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm_server.base_url)
    settings.OPENAI_BASE_URL = fake_llm_server.base_url
    settings.OPENAI_API_KEY = "sk-test-fake"
    settings.LLM_PROVIDER = "openai"
    settings.LLM_MODEL = "gpt-4o-mini"
    return fake_llm_server


@pytest.fixture
def http_server() -> Iterator[LocalHttpServer]:
    server = LocalHttpServer().start()
    yield server
    server.stop()


@pytest.fixture
def celery_worker_thread(transactional_db) -> Iterator[object]:
    """A real Celery worker (thread pool) consuming from the real test Redis."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from config.workers import heartbeats_start, heartbeats_stop

    with start_worker(
        app,
        pool="threads",
        concurrency=8,
        perform_ping_check=False,
        shutdown_timeout=30,
        loglevel="WARNING",
    ) as worker:
        # An embedded worker gets no worker_ready signal: report it as the command line would.
        heartbeats_start(name=worker.hostname, concurrency=worker.concurrency)
        try:
            yield worker
        finally:
            heartbeats_stop()


@pytest.fixture
def layer_follower() -> Iterator[Callable[[str], Callable[[], dict]]]:
    """follow(group) -> receive: joins a new channel to `group` on a Channels layer of its own;
    receive() returns the next message sent to it.

    channels-redis guards receiving on all of a layer's own channels with one asyncio lock, which
    it releases from a clean-up task after each message. On the process's shared layer, other
    tests receive from their own event loops too, and in CI a receive found that lock held by
    another, finished loop ("bound to a different event loop"). So each test gets a layer no
    other test uses, and `receive` waits for the clean-up before its loop ends.
    """
    from asgiref.sync import async_to_sync
    from django.conf import settings

    from config.channel_layer import EventChannelLayer

    own_layer = EventChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])
    joined: list[tuple[str, str]] = []

    def follow(group: str) -> Callable[[], dict]:
        channel = async_to_sync(own_layer.new_channel)()
        async_to_sync(own_layer.group_add)(group, channel)
        joined.append((group, channel))

        async def receive() -> dict:
            message = await own_layer.receive(channel)
            await asyncio.gather(*list(own_layer.receive_cleaners))
            return message

        return async_to_sync(receive)

    yield follow
    for group, channel in joined:
        async_to_sync(own_layer.group_discard)(group, channel)
