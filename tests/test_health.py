import re
from datetime import timedelta

import pytest
from django.utils.timezone import now
from rest_framework.test import APIClient

from goals.models import SchedulerHeartbeat
from ops import health
from tests.factories import (
    DagFactory,
    GoalFactory,
    RunFactory,
    ScheduleFactory,
    TokenFactory,
    UserFactory,
)

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(autouse=True)
def _fresh_health_cache():
    health.reset_cache()
    yield
    health.reset_cache()


def beat_ticked(*, seconds_ago: float) -> None:
    moment = now() - timedelta(seconds=seconds_ago)
    SchedulerHeartbeat.objects.update_or_create(
        name="beat", defaults={"ticked_at": moment, "started_at": moment, "hostname": "h"}
    )


@pytest.fixture
def staff_client(db) -> APIClient:
    """Readiness details are for staff; everyone else gets only ready / not ready."""
    client = APIClient()
    staff = UserFactory(username="operator", is_staff=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=staff).key}")
    return client


def test_liveness(anon_client):
    body = anon_client.get("/health").json()
    assert body["status"] == "ok"
    assert ISO_MS.match(body["timestamp"])


@pytest.mark.django_db
def test_readiness_reports_schedules_and_runs_from_the_database(staff_client, settings):
    settings.MAX_CONCURRENT_RUNS = 4
    ScheduleFactory(goal=GoalFactory())
    ScheduleFactory(goal=GoalFactory(status="paused"), active=False)
    scheduled = DagFactory(cron_schedule="0 9 * * *", schedule_active=True)
    DagFactory(cron_schedule="0 9 * * *", schedule_active=False)
    RunFactory(status="running")
    RunFactory(status="pending")
    RunFactory(status="pending")

    body = staff_client.get("/health/ready").json()

    assert body["scheduler"] == {
        "activeSchedules": 1,
        "maxConcurrency": 4,
        "queue": {"size": 2, "pending": 1, "concurrency": 4, "isPaused": False},
    }
    assert body["dagScheduler"] == {"activeSchedules": 1, "schedules": [scheduled.id]}
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True


@pytest.mark.django_db
def test_readiness_reports_the_llm_setup(staff_client, settings):
    settings.LLM_PROVIDER = "openai"
    settings.LLM_MODEL = "gpt-4o-mini"
    settings.OPENAI_MODEL = ""
    settings.OPENAI_API_KEY = ""
    beat_ticked(seconds_ago=1)
    body = staff_client.get("/health/ready").json()
    assert (body["provider"], body["model"]) == ("openai", "gpt-4o-mini")
    assert body["llm"]["configured"] is False
    assert body["status"] == "degraded"


@pytest.mark.django_db(transaction=True)
def test_readiness_is_ready_with_a_live_worker(staff_client, settings, celery_worker_thread):
    settings.OPENAI_API_KEY = "sk-test"
    beat_ticked(seconds_ago=1)
    response = staff_client.get("/health/ready")
    body = response.json()
    assert response.status_code == 200
    assert body["checks"]["celery"]["ok"] is True
    assert body["checks"]["celery"]["workers"] >= 1
    assert body["status"] == "ready"


@pytest.mark.django_db
@pytest.mark.timeout(15)
def test_readiness_answers_503_fast_when_redis_is_down(staff_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = staff_client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["celery"]["ok"] is False


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["anonymous", "regular user", "bad token"])
def test_readiness_tells_others_only_ready_or_not(anon_client, token, who):
    if who == "regular user":
        anon_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    elif who == "bad token":
        anon_client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    beat_ticked(seconds_ago=1)
    response = anon_client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


@pytest.mark.django_db
def test_readiness_details_through_a_staff_session(anon_client):
    anon_client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    assert "checks" in anon_client.get("/health/ready").json()


@pytest.mark.django_db
@pytest.mark.timeout(15)
def test_readiness_says_not_ready_to_anonymous_callers_when_redis_is_down(anon_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = anon_client.get("/health/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready"}


@pytest.mark.django_db
def test_readiness_is_not_ready_when_beat_never_ticked(staff_client):
    response = staff_client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["scheduler"]["ok"] is False
    assert body["checks"]["scheduler"]["lastTickAt"] is None
    assert "never ticked" in body["checks"]["scheduler"]["error"]


@pytest.mark.django_db
def test_readiness_is_not_ready_when_beat_stopped_ticking(staff_client, settings):
    settings.SCHEDULER_STALE_SECONDS = 30
    beat_ticked(seconds_ago=45)
    response = staff_client.get("/health/ready")
    assert response.status_code == 503
    scheduler = response.json()["checks"]["scheduler"]
    assert scheduler["ok"] is False
    assert ISO_MS.match(scheduler["lastTickAt"])
    assert 44 <= scheduler["secondsSinceTick"] < 60
    assert "30 s" in scheduler["error"]


@pytest.mark.django_db
def test_readiness_reports_a_recent_beat_tick_and_failed_schedules(staff_client, settings):
    settings.SCHEDULER_STALE_SECONDS = 30
    beat_ticked(seconds_ago=2)
    ScheduleFactory(error="RuntimeError: unable to rollover")
    DagFactory(cron_schedule="0 9 * * *", schedule_error="RuntimeError: unable to rollover")
    response = staff_client.get("/health/ready")
    assert response.status_code == 200
    scheduler = response.json()["checks"]["scheduler"]
    assert scheduler["ok"] is True
    assert scheduler["secondsSinceTick"] < 30
    assert scheduler["failedSchedules"] == 2


@pytest.mark.django_db
def test_readiness_does_not_ask_for_beat_when_no_beat_is_meant_to_run(staff_client, settings):
    settings.SCHEDULER_REQUIRED = False
    response = staff_client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["scheduler"] == {
        **response.json()["checks"]["scheduler"],
        "ok": True,
        "required": False,
        "lastTickAt": None,
    }
