"""The system page through Django's test client: staff see every check, workers from a real
Celery worker, beat, the LLM set-up and versions; others see ready / not ready; the page never
shows a configured secret; with no worker it still answers promptly."""

from __future__ import annotations

import time
from datetime import timedelta

import django
import pytest
from django.test import Client
from django.utils.timezone import now

from agents.models import LlmCheck
from config import health
from goals.models import SchedulerHeartbeat
from tests.factories import UserFactory

API_KEY = "sk-live-Zq81secretKEYvalue"
EMAIL_PASSWORD = "mail-password-9931"
WEBHOOK_SECRET = "whsec-7c1e0a2f"
SECRET_KEY = "django-secret-key-for-the-test-4411"


@pytest.fixture(autouse=True)
def _fresh_health_cache():
    health.reset_cache()
    yield
    health.reset_cache()


def logged_in(**fields) -> Client:
    client = Client()
    client.force_login(UserFactory(**fields))
    return client


def beat_ticked(*, seconds_ago: float) -> None:
    moment = now() - timedelta(seconds=seconds_ago)
    SchedulerHeartbeat.objects.update_or_create(
        name="beat", defaults={"ticked_at": moment, "started_at": moment, "hostname": "beat-host"}
    )


def page_and_checks(client: Client) -> tuple[str, str]:
    page = client.get("/system")
    checks = client.get("/system/checks")
    assert page.status_code == checks.status_code == 200
    return page.content.decode(), checks.content.decode()


@pytest.mark.django_db
def test_the_page_needs_a_login(client):
    for path in ("/system", "/system/checks"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login")


@pytest.mark.django_db
def test_staff_see_beat_the_llm_set_up_and_versions(settings):
    settings.SCHEDULER_STALE_SECONDS = 60
    beat_ticked(seconds_ago=5)
    LlmCheck.objects.create(
        provider="openai",
        model="gpt-4o-mini",
        configured=True,
        ok=True,
        latency_ms=321,
        used_by=["default"],
    )
    page, checks = page_and_checks(logged_in(username="operator", is_staff=True))

    assert "Ticking" in page and "beat-host" in page
    assert 'data-testid="llm-provider">openai<' in page
    assert "321 ms" in page
    assert f'<dd class="mono">{django.get_version()}</dd>' in page
    assert 'data-check="database"' in checks and 'data-check="redis"' in checks
    assert 'data-check="scheduler"' in checks


@pytest.mark.django_db
def test_a_stopped_beat_shows_as_not_ticking(settings):
    settings.SCHEDULER_STALE_SECONDS = 30
    beat_ticked(seconds_ago=600)
    page, checks = page_and_checks(logged_in(username="operator", is_staff=True))
    assert "Not ticking" in page
    assert 'data-testid="system-status"><span class="health health-down">Not ready' in checks


@pytest.mark.django_db
def test_others_see_only_ready_or_not(settings):
    beat_ticked(seconds_ago=1)
    LlmCheck.objects.create(provider="openai", model="gpt-4o-mini", ok=False, error="boom")
    page, checks = page_and_checks(logged_in(username="alice"))
    assert "Ready" in checks or "Not ready" in checks
    for detail in ("data-check=", "Versions", "boom", "gpt-4o-mini", "data-worker", "beat-host"):
        assert detail not in page + checks, detail


@pytest.mark.django_db
def test_others_are_told_not_ready_when_redis_is_down(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 0.3
    _, checks = page_and_checks(logged_in(username="alice"))
    assert "Not ready" in checks and "Connection" not in checks


def test_workers_are_listed_with_concurrency_and_tasks_in_flight(celery_worker_thread, settings):
    beat_ticked(seconds_ago=1)
    _, checks = page_and_checks(logged_in(username="operator", is_staff=True))
    assert 'data-testid="workers"' in checks
    assert f'data-worker="{celery_worker_thread.hostname}"' in checks
    assert 'data-testid="worker-concurrency">8<' in checks


@pytest.mark.django_db
def test_with_no_worker_the_checks_still_answer_promptly(settings):
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 0.5
    client = logged_in(username="operator", is_staff=True)
    started = time.monotonic()
    page = client.get("/system")
    page_seconds = time.monotonic() - started
    started = time.monotonic()
    checks = client.get("/system/checks").content.decode()
    checks_seconds = time.monotonic() - started
    assert page.status_code == 200
    # The page waits on nothing; the checks on one ping deadline, not on every inspection.
    assert page_seconds < 0.5, page_seconds
    assert checks_seconds < 2.5, checks_seconds
    assert 'data-testid="no-workers"' in checks


@pytest.mark.django_db
def test_no_configured_secret_is_ever_shown(settings):
    settings.OPENAI_API_KEY = API_KEY
    settings.EMAIL_HOST_PASSWORD = EMAIL_PASSWORD
    settings.WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.SECRET_KEY = SECRET_KEY
    settings.CELERY_BROKER_URL = f"redis://agent:{EMAIL_PASSWORD}x@127.0.0.1:6390/0"
    beat_ticked(seconds_ago=1)
    # A provider that echoes the key in its error, as some do.
    LlmCheck.objects.create(
        provider="openai",
        model="gpt-4o-mini",
        configured=True,
        ok=False,
        error=f"Incorrect API key provided: {API_KEY}. Webhook {WEBHOOK_SECRET}.",
    )
    client = logged_in(username="operator", is_staff=True)
    page, checks = page_and_checks(client)
    for secret in (API_KEY, EMAIL_PASSWORD, WEBHOOK_SECRET, SECRET_KEY, f"{EMAIL_PASSWORD}x"):
        assert secret not in page and secret not in checks, secret
    assert "Incorrect API key provided: ••••••" in page
    assert "redis://127.0.0.1:6390/0" in page  # the broker's address, without credentials
