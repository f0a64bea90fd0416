"""Fixtures shared by every test: API clients, real servers (HTTP, chat completions, Celery)."""

from __future__ import annotations

# First: private Redis, temporary folders and settings, before Django reads its settings.
from tests import bootstrap

bootstrap.setup_django()

import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402

import pytest  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from tests.factories import TokenFactory, UserFactory  # noqa: E402
from tests.fakes.http import LocalHttpServer  # noqa: E402
from tests.fakes.openai_server import FakeChatCompletions  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_list_pages() -> None:
    """Retire cached list pages, token lookups and kept agents before each test: a test's rows
    are rolled back (or flushed) without the commit that would have retired what was built from
    them."""
    from agents.cache import agents_retire
    from config.api.authentication import TOKENS_VERSION
    from config.list_cache import pages_retire, version_bump

    pages_retire()
    version_bump(TOKENS_VERSION)
    agents_retire()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Once a test's fixtures are gone, wait for the work its requests left for after their
    responses (the node hand-over of execute-dag): left running, it would write to the database
    during the next test. Waited for only now, after the test's own transaction has been rolled
    back: until then that transaction holds SQLite's write lock, which the work needs."""
    yield
    from config import after_response

    assert after_response.wait_idle(timeout=60), "work left after a response is still running"


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
def redis_follower() -> Iterator[Callable[[str], Callable[[], dict]]]:
    """follow(group) -> receive: subscribes to a group's live events on Redis (as a web
    process does); receive() returns the next message published there, decoded."""
    import orjson
    import redis
    from django.conf import settings

    from config.live_events.publisher import channel_name

    client = redis.Redis.from_url(settings.REDIS_URL)
    subscriptions = []

    def next_message(pubsub, kind: str) -> dict:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] == kind:
                return message
        raise TimeoutError(f"no {kind} message")

    def follow(group: str) -> Callable[[], dict]:
        pubsub = client.pubsub()
        subscriptions.append(pubsub)
        pubsub.subscribe(channel_name(group))
        next_message(pubsub, "subscribe")  # from now on, a PUBLISH reaches it
        return lambda: orjson.loads(next_message(pubsub, "message")["data"])

    yield follow
    for pubsub in subscriptions:
        pubsub.close()
    client.close()
