"""The goal list's shared page cache: served while nothing changed, never after a change.

Writes are committed (transactional database) and every read after one runs on another thread
with its own database connection, as another web process would.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from agents.services import agent_activate
from config.list_cache import page_get, page_put
from goals import services
from goals.models import Goal, Schedule
from goals.ticks import goal_schedule_fire
from tests.bulk_writes import bulk_writes
from tests.elsewhere import run_elsewhere
from tests.factories import AgentFactory, GoalFactory, ScheduleFactory

pytestmark = pytest.mark.django_db(transaction=True)

LIST = "/api/v1/goals"


def read_elsewhere(token_key: str, path: str = LIST) -> Any:
    """The list as another thread (its own database connection) reads it."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
    response, _ = run_elsewhere(lambda: client.get(path))
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def listed(token):
    """Two goals of the API user, one with a schedule and an agent; the list read (cached)."""
    agent = AgentFactory(name="writer", active=True)
    first = GoalFactory(owner=token.user, agent=agent)
    ScheduleFactory(goal=first)
    GoalFactory(owner=token.user)
    assert len(read_elsewhere(token.key)) == 2
    return first


def goal_in(body: list[dict[str, Any]], goal_id: str) -> dict[str, Any]:
    return next(row for row in body if row["id"] == goal_id)


def test_a_repeated_read_is_served_without_goal_statements(api, listed):
    rendered_type = api.get("/api/v1/runs")["Content-Type"]
    first = api.get(LIST)
    with CaptureQueriesContext(connection) as captured:
        again = api.get(LIST)
    statements = [query["sql"] for query in captured]  # before another request clears them

    assert again.content == first.content
    assert again["X-Total-Count"] == "2"
    assert again["Content-Type"] == rendered_type
    # the token's lookup is cached too (tests/test_token_cache.py)
    assert statements == []


def test_api_writes_show_on_the_next_read(api, token, listed):
    created = api.post(LIST, {"objective": "A new goal to research"}, format="json").json()
    assert created["id"] in [row["id"] for row in read_elsewhere(token.key)]

    api.patch(f"{LIST}/{created['id']}", {"objective": "Renamed goal"}, format="json")
    assert goal_in(read_elsewhere(token.key), created["id"])["objective"] == "Renamed goal"

    api.post(f"{LIST}/{listed.id}/pause")
    row = goal_in(read_elsewhere(token.key), listed.id)
    assert row["status"] == "paused"
    assert [schedule["active"] for schedule in row["schedules"]] == [False]

    api.post(f"{LIST}/{listed.id}/resume")
    row = goal_in(read_elsewhere(token.key), listed.id)
    assert (row["status"], row["schedules"][0]["active"]) == ("active", True)

    api.delete(f"{LIST}/{created['id']}")
    assert created["id"] not in [row["id"] for row in read_elsewhere(token.key)]


def test_service_writes_show_on_the_next_read(token, listed):
    services.goal_pause(goal=listed)  # the schedules change through a bulk update
    row = goal_in(read_elsewhere(token.key), listed.id)
    assert [schedule["active"] for schedule in row["schedules"]] == [False]

    services.schedule_add(goal=listed, cron_expr="0 12 * * *")
    assert len(goal_in(read_elsewhere(token.key), listed.id)["schedules"]) == 2


def test_an_agent_activated_by_a_bulk_update_shows_on_the_next_read(token, listed):
    other = AgentFactory(name="writer", version="2.0.0", active=False)
    listed.agent.refresh_from_db()
    agent_activate(agent=other)  # deactivates the goal's agent with `.update()`
    assert goal_in(read_elsewhere(token.key), listed.id)["agent"]["active"] is False


def test_beat_ticks_show_on_the_next_read(token, listed):
    schedule = Schedule.objects.create(goal=listed, cron_expr="0 * * * *")
    read_elsewhere(token.key)
    with time_machine.travel(datetime(2026, 5, 1, 10, 0, 2, tzinfo=UTC), tick=False):
        assert goal_schedule_fire(schedule_id=schedule.id).outcome == "started"
    row = goal_in(read_elsewhere(token.key), listed.id)
    stamps = {item["id"]: item["lastRunAt"] for item in row["schedules"]}
    assert stamps[schedule.id] == "2026-05-01T10:00:02.000Z"


def test_admin_edits_show_on_the_next_read(admin_client, token, listed):
    admin_client.post(
        "/admin/goals/goal/",
        {"action": "pause_selected", "_selected_action": [listed.id]},
    )
    assert goal_in(read_elsewhere(token.key), listed.id)["status"] == "paused"

    admin_client.post(f"/admin/goals/goal/{listed.id}/delete/", {"post": "yes"})
    assert not Goal.objects.filter(pk=listed.id).exists()
    assert listed.id not in [row["id"] for row in read_elsewhere(token.key)]


def test_a_page_built_before_a_write_is_never_served_after_it(token, listed):
    version, _ = page_get("probe")
    assert version is not None
    services.goal_update(goal=listed, changes={"objective": "Changed meanwhile"})
    # a slow reader stores what it read before the write, under the version it read
    page_put("probe", version, b"stale")
    assert page_get("probe") == (page_get("probe")[0], None)
    assert goal_in(read_elsewhere(token.key), listed.id)["objective"] == "Changed meanwhile"


def test_a_page_read_while_a_write_is_uncommitted_is_not_kept(token, listed):
    with transaction.atomic():
        services.goal_update(goal=listed, changes={"objective": "Committed later"})
        # another process reads (and caches) the committed rows, under the bumped version
        assert goal_in(read_elsewhere(token.key), listed.id)["objective"] != "Committed later"
    assert goal_in(read_elsewhere(token.key), listed.id)["objective"] == "Committed later"


def test_without_redis_the_list_is_built_every_time(api, token, listed, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    assert api.get(LIST).status_code == 200
    GoalFactory(owner=token.user, objective="Written while Redis is away")
    body = api.get(LIST).json()
    assert body[0]["objective"] == "Written while Redis is away"


def test_each_viewer_gets_its_own_page(api, token, listed, admin_user):
    GoalFactory(owner=admin_user)
    assert len(api.get(LIST).json()) == 2
    staff = APIClient()
    staff.force_authenticate(admin_user)
    assert len(staff.get(LIST).json()) == 3
    assert len(staff.get(f"{LIST}?status=paused").json()) == 0
    assert len(api.get(f"{LIST}?limit=1").json()) == 1


# --- the writes that send no signal -----------------------------------------------------------
# Every `.update()` / `bulk_update()` / `bulk_create()` on a model the goal list shows, and the
# function that must call `lists_changed()` after it. A new one fails this test until it does.
BULK_WRITES = {
    ("agents/services.py", "agent_create"),
    ("agents/services.py", "agent_activate"),
    ("goals/services.py", "goal_pause"),
    ("goals/services.py", "goal_resume"),
    ("goals/ticks.py", "_claim_period"),
    ("goals/ticks.py", "goal_schedule_fire"),
    ("goals/schedules.py", "_goal_schedule_error_set"),
}
# Generic helpers that bulk-write a model they are handed, and why it is never a listed one.
GENERIC_NOT_LISTED = {
    ("config/leases.py", "_renew"),  # runs and DAG nodes being worked on
    ("config/live_events/store.py", "emit_many"),  # events
}
LISTED_MODELS = {"Goal", "Schedule", "Agent"}
LISTED_RELATIONS = {"schedules", "goals"}


def test_every_bulk_write_to_a_listed_model_retires_the_cached_pages():
    writes = {
        key: site
        for key, site in bulk_writes().items()
        if site.models & LISTED_MODELS or site.relations & LISTED_RELATIONS or site.generic
    }
    assert set(writes) == BULK_WRITES | GENERIC_NOT_LISTED
    for key, site in writes.items():
        if key not in GENERIC_NOT_LISTED:
            assert "lists_changed" in site.calls, f"{site.path}:{site.function} writes without it"
