import os
import re
import signal
import subprocess
import time
from datetime import timedelta

import pytest
from django.utils.timezone import now
from rest_framework.test import APIClient

from config.workers import HEARTBEATS_KEY, heartbeat_client, heartbeat_record
from dags.execution.services import execution_launch
from dags.tests.planning_helpers import plan, task
from goals.models import SchedulerHeartbeat
from ops import health
from ops.selectors import worker_heartbeats
from tests.factories import (
    AgentFactory,
    DagFactory,
    GoalFactory,
    RunFactory,
    ScheduleFactory,
    TokenFactory,
    UserFactory,
)
from tests.fakes.openai_server import ChatReply
from tests.processes import worker_process
from tests.waiting import wait_for

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(autouse=True)
def _fresh_health_cache():
    health.reset_cache()
    heartbeat_client().delete(HEARTBEATS_KEY)  # other tests' workers
    yield
    health.reset_cache()
    heartbeat_client().delete(HEARTBEATS_KEY)


def worker_beat(*, seconds_ago: float = 0.0, name: str = "w1@host", state: str = "running"):
    heartbeat_record(
        name=name,
        concurrency=4,
        tasks={},
        started_at=time.time() - 600,
        state=state,
        now=time.time() - seconds_ago,
    )


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
    worker_beat()
    body = staff_client.get("/health/ready").json()
    assert (body["provider"], body["model"]) == ("openai", "gpt-4o-mini")
    assert body["llm"]["configured"] is False
    assert body["status"] == "degraded"


@pytest.mark.django_db(transaction=True)
def test_readiness_reads_live_workers_from_their_heartbeats(staff_client, settings, fake_llm):
    """A real worker process records heartbeats: readiness names it, with its pool size and
    the task in flight; a worker that cannot answer anything (stopped with SIGSTOP, so a
    broadcast ping would get no reply) still counts until its heartbeat is stale; then 503."""
    settings.OPENAI_API_KEY = "sk-test"
    settings.HEALTH_CACHE_SECONDS = 0
    beat_ticked(seconds_ago=1)
    fake_llm.responder = lambda request: ChatReply(content="slow answer", delay=3)
    worker = worker_process(fake_llm, {"WORKER_HEARTBEAT_SECONDS": "0.3"}, concurrency=3)
    try:
        # A worker process takes 10-20 s to start, far longer on a busy machine.
        wait_for(
            lambda: any(b["fresh"] for b in worker_heartbeats()),
            timeout=150,
            message="a heartbeat",
        )
        response = staff_client.get("/health/ready")
        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "ready"
        celery = body["checks"]["celery"]
        assert celery["ok"] is True and celery["workers"] == 1
        [beat] = celery["heartbeats"]
        assert celery["names"] == [beat["name"]] and beat["name"].startswith("test-")
        assert (beat["pid"], beat["concurrency"], beat["state"]) == (worker.pid, 3, "running")

        # A node in flight shows in the next heartbeats.
        dag = DagFactory(
            result=plan(
                task("t1", tool="InferenceAgent", params={"prompt": "p"}, action="inference")
            )
        )
        AgentFactory(name="InferenceAgent", active=True)
        execution_launch(dag=dag)
        wait_for(
            lambda: worker_heartbeats()[0]["tasks"] == {"dags.run_sub_step": 1},
            message="the running node in the heartbeat",
        )
        assert worker_heartbeats()[0]["active"] == 1

        # Frozen: no ping could be answered, yet the recent heartbeat keeps it ready.
        os.kill(worker.pid, signal.SIGSTOP)
        settings.WORKER_HEARTBEAT_STALE_SECONDS = 2
        response = staff_client.get("/health/ready")
        assert response.status_code == 200, response.json()
        # Then the heartbeat goes stale: not ready, and the reason names the worker.
        wait_for(lambda: staff_client.get("/health/ready").status_code == 503, timeout=10)
        celery = staff_client.get("/health/ready").json()["checks"]["celery"]
        assert celery["ok"] is False and celery["workers"] == 0
        assert "no Celery worker heartbeat in the last 2 s" in celery["error"]
        assert beat["name"] in celery["error"]
    finally:
        os.kill(worker.pid, signal.SIGCONT)
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
    # A worker that shut down says so.
    assert worker_heartbeats()[0]["state"] == "stopped"
    assert worker_heartbeats()[0]["fresh"] is False


@pytest.mark.django_db
def test_a_stale_worker_heartbeat_is_503_with_the_reason(staff_client, settings):
    settings.WORKER_HEARTBEAT_STALE_SECONDS = 20
    beat_ticked(seconds_ago=1)
    worker_beat(seconds_ago=45, name="old@box")
    response = staff_client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    celery = body["checks"]["celery"]
    assert celery["ok"] is False
    assert celery["error"].startswith(
        "no Celery worker heartbeat in the last 20 s (latest: old@box, running, 45"
    )
    assert [beat["name"] for beat in celery["heartbeats"]] == ["old@box"]


@pytest.mark.django_db
def test_no_worker_heartbeat_at_all_is_503(staff_client):
    beat_ticked(seconds_ago=1)
    body = staff_client.get("/health/ready").json()
    assert body["status"] == "unavailable"
    assert body["checks"]["celery"]["error"] == "no Celery worker has recorded a heartbeat"


@pytest.mark.django_db
def test_a_stopped_worker_is_not_counted(staff_client):
    beat_ticked(seconds_ago=1)
    worker_beat(name="gone@box", state="stopped")
    assert staff_client.get("/health/ready").status_code == 503
    worker_beat(name="alive@box")
    health.reset_cache()
    body = staff_client.get("/health/ready").json()
    assert body["checks"]["celery"]["names"] == ["alive@box"]


@pytest.mark.django_db
def test_heartbeats_older_than_the_keep_window_are_dropped(settings):
    settings.WORKER_HEARTBEAT_KEEP_SECONDS = 60
    worker_beat(name="ancient@box", seconds_ago=120)
    worker_beat(name="recent@box", seconds_ago=30)
    assert [beat["name"] for beat in worker_heartbeats()] == ["recent@box"]
    assert set(heartbeat_client().hkeys(HEARTBEATS_KEY)) == {b"recent@box"}


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
    worker_beat()
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
    worker_beat()
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
    worker_beat()
    response = staff_client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["scheduler"] == {
        **response.json()["checks"]["scheduler"],
        "ok": True,
        "required": False,
        "lastTickAt": None,
    }
