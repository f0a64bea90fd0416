"""`POST /api/v1/goals/:id/run`: status codes, the concurrency limit and lease recovery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils.timezone import now

from runs.models import Run
from runs.services import runs_recover
from tests.factories import GoalFactory, RunFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("body", [None, {}], ids=["no body", "empty JSON"])
def test_trigger_creates_a_pending_run(api, settings, body):
    settings.DEFAULT_STEP_BUDGET = 7
    goal = GoalFactory()

    if body is None:
        response = api.post(f"/api/v1/goals/{goal.id}/run")
    else:
        response = api.post(
            f"/api/v1/goals/{goal.id}/run", data=b"", content_type="application/json"
        )

    assert response.status_code == 200, response.content
    body = response.json()
    assert list(body) == ["runId", "message"]
    run = Run.objects.get(pk=body["runId"])
    assert (run.status, run.step_budget, run.trigger, run.goal_id) == (
        "pending",
        7,
        "manual",
        goal.id,
    )
    assert run.dispatched_at is not None


def test_trigger_uses_the_goals_step_budget(api):
    goal = GoalFactory(params={"stepBudget": 3})
    run_id = api.post(f"/api/v1/goals/{goal.id}/run").json()["runId"]
    assert Run.objects.get(pk=run_id).step_budget == 3


def test_unknown_goal_is_404_and_inactive_goal_is_409(api):
    assert api.post("/api/v1/goals/goal_missing/run").status_code == 404
    paused = GoalFactory(status="paused")
    response = api.post(f"/api/v1/goals/{paused.id}/run")
    assert response.status_code == 409
    assert response.json() == {
        "error": f"Goal is not active: {paused.id}",
        "currentStatus": "paused",
    }


def test_the_limit_counts_pending_and_running_runs(api, settings):
    settings.MAX_CONCURRENT_RUNS = 2
    goal = GoalFactory()
    RunFactory(status="running", lease_expires_at=now() + timedelta(minutes=1))
    RunFactory(status="completed")

    assert api.post(f"/api/v1/goals/{goal.id}/run").status_code == 200
    response = api.post(f"/api/v1/goals/{goal.id}/run")

    assert response.status_code == 429
    assert response.json() == {
        "error": "Maximum concurrent runs (2) exceeded. Current active runs: 2",
        "maxConcurrentRuns": 2,
        "activeRuns": 2,
    }


def test_a_run_whose_lease_lapsed_is_failed_and_frees_its_slot(api, settings):
    settings.MAX_CONCURRENT_RUNS = 1
    goal = GoalFactory()
    dead = RunFactory(status="running", lease_expires_at=now() - timedelta(seconds=1))

    response = api.post(f"/api/v1/goals/{goal.id}/run")

    assert response.status_code == 200
    dead.refresh_from_db()
    assert dead.status == "failed"
    assert "lease lapsed" in dead.error
    assert dead.ended_at is not None
    assert list(dead.events.values_list("type", flat=True)) == ["run.failed"]


def test_recovery_leaves_live_runs_alone_and_requeues_lost_pending_ones(settings):
    settings.RUN_DISPATCH_STALE_SECONDS = 60
    alive = RunFactory(status="running", lease_expires_at=now() + timedelta(seconds=30))
    legacy = RunFactory(status="running", started_at=now() - timedelta(hours=1))
    lost = RunFactory(status="pending", dispatched_at=now() - timedelta(minutes=5))
    fresh = RunFactory(status="pending", dispatched_at=now())

    counts = runs_recover()

    assert counts == {"failed": 1, "requeued": 1}
    assert Run.objects.get(pk=alive.pk).status == "running"
    assert Run.objects.get(pk=legacy.pk).status == "failed"
    assert Run.objects.get(pk=lost.pk).dispatched_at > now() - timedelta(seconds=5)
    assert Run.objects.get(pk=fresh.pk).status == "pending"
