"""Browser tests: Playwright's sync API driving Debian's Chromium against real processes.

Fixtures start a real web process (daphne) on the test database and Redis, optionally a real
Celery worker, both pointed at the scripted chat-completions server; pages are opened in a
fresh browser context per test, logged in through the login form.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.helpers import BrowserEvents, log_in
from tests.processes import WebServer, worker_process
from tests.waiting import wait_for

# Playwright's sync API keeps an asyncio loop in this thread; Django would then refuse the
# ORM calls that the tests make to set up rows. Nothing here runs inside that loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need it. Install Debian's "
            "package (`apt-get install -y --no-install-recommends chromium`) or set "
            "CHROMIUM_PATH.",
            pytrace=False,
        )
    return CHROMIUM


# Per module, not per session: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is open, and tests that run later (async_to_sync in streams and the event
# publisher) refuse to run inside a running loop.
@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True
        )
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def web_server(django_db_setup, fake_llm_server, tmp_path_factory) -> Iterator[WebServer]:
    """One web process per module; each test still gets clean tables (transactional_db)."""
    log = tmp_path_factory.mktemp("web") / "daphne.log"
    # One attempt per LLM call: a scripted failure is reported at once, not after back-offs.
    server = WebServer(log, fake_llm=fake_llm_server, extra_env={"LLM_MAX_RETRIES": "0"}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def worker(django_db_setup, fake_llm_server, tmp_path_factory) -> Iterator[subprocess.Popen]:
    """A real Celery worker process (thread pool) for the module."""
    from config.celery import app

    process = worker_process(fake_llm_server)
    try:
        wait_for(
            lambda: bool(app.control.ping(timeout=0.5)),
            timeout=60,
            message="a Celery worker answering pings",
        )
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def ui_user(transactional_db):
    from tests.factories import DEFAULT_OWNER, UserFactory

    # The factories' default owner: rows the tests make belong to the logged-in user.
    user = UserFactory(username=DEFAULT_OWNER)
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def operator(transactional_db):
    """A superuser who signs in to the Django admin."""
    from tests.factories import UserFactory

    user = UserFactory(username="operator", is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def browser_events() -> BrowserEvents:
    return BrowserEvents()


@pytest.fixture
def page(browser, web_server, browser_events, fake_llm):
    """A fresh browser context on the web process; console errors, page errors and dialogs
    are recorded in `browser_events` (dialogs are dismissed)."""
    context = browser.new_context(base_url=web_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    new_page = context.new_page()
    browser_events.attach(new_page)
    yield new_page
    context.close()


@pytest.fixture
def logged_in_page(page, ui_user):
    log_in(page, ui_user.username, PASSWORD)
    return page
