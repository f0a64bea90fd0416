"""The goal pages through Django's test client: forms and their validation, actions,
ownership, query counts."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask

from goals.models import Goal, Schedule
from runs.models import Run
from tests.factories import (
    DEFAULT_OWNER,
    AgentFactory,
    GoalFactory,
    RunFactory,
    ScheduleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

OBJECTIVE = "Collect the week's battery news and summarise it"


@pytest.fixture
def owner():
    return UserFactory(username=DEFAULT_OWNER)


@pytest.fixture
def browser_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def default_agent():
    return AgentFactory(name="defaultAgent", active=True)


def goal_data(**overrides) -> dict:
    data = {
        "objective": OBJECTIVE,
        "agent": "",
        "step_budget": "",
        "webhook_url": "",
        "schedules-TOTAL_FORMS": "0",
        "schedules-INITIAL_FORMS": "0",
        "schedules-MIN_NUM_FORMS": "0",
        "schedules-MAX_NUM_FORMS": "20",
    }
    data.update(overrides)
    return data


def with_schedules(data: dict, rows: list[dict]) -> dict:
    data = dict(data)
    data["schedules-TOTAL_FORMS"] = str(len(rows))
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"schedules-{index}-{key}"] = value
    return data


def query_count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(queries)


# --- access --------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/goals", "/goals/new"])
def test_goal_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/login?next={url}"


def test_someone_elses_goal_is_a_404_everywhere(browser_client):
    theirs = GoalFactory(owner=UserFactory(username="bob"))
    for url in (f"/goals/{theirs.id}", f"/goals/{theirs.id}/edit"):
        assert browser_client.get(url).status_code == 404
    for action in ("run", "pause", "delete"):
        response = browser_client.post(f"/goals/{theirs.id}/{action}")
        assert response.status_code == 302 and response["Location"] == "/goals"
    assert Goal.objects.filter(pk=theirs.id, status=Goal.Status.ACTIVE).exists()
    assert not Run.objects.filter(goal=theirs).exists()
    page = browser_client.get("/goals").content.decode()
    assert theirs.id not in page


def test_actions_are_post_only(browser_client):
    goal = GoalFactory()
    for action in ("run", "pause", "resume", "delete"):
        assert browser_client.get(f"/goals/{goal.id}/{action}").status_code == 405
    assert Goal.objects.filter(pk=goal.id).exists()


# --- create --------------------------------------------------------------------------------------
def test_create_a_goal_with_two_schedules_tools_and_budget(browser_client, owner, default_agent):
    other = AgentFactory(name="researcher", active=True)
    data = with_schedules(
        goal_data(agent=other.id, step_budget="7", webhook_url="https://example.com/hook"),
        [
            {"preset": "0 9 * * 1-5", "cron": "", "timezone": "Europe/Paris"},
            {"preset": "", "cron": "30 18 * * *", "timezone": "America/New_York"},
        ],
    )
    data["allowed_tools"] = ["webSearch", "writeFile"]
    response = browser_client.post("/goals/new", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    goal = Goal.objects.get()
    assert response["Location"] == f"/goals/{goal.id}"
    assert goal.owner == owner
    assert goal.agent_id == other.id
    assert goal.params == {"stepBudget": 7, "allowedTools": ["webSearch", "writeFile"]}
    assert goal.webhook_url == "https://example.com/hook"
    schedules = {(s.cron_expr, s.timezone) for s in goal.schedules.all()}
    assert schedules == {("0 9 * * 1-5", "Europe/Paris"), ("30 18 * * *", "America/New_York")}
    assert PeriodicTask.objects.filter(name__startswith="goal-schedule:", enabled=True).count() == 2
    detail = browser_client.get(response["Location"]).content.decode()
    assert "Goal created with 2 schedules." in detail
    assert "At 09:00 AM, Monday through Friday" in detail


def test_invalid_input_comes_back_with_messages_beside_fields_and_what_was_typed(
    browser_client, default_agent
):
    data = with_schedules(
        goal_data(objective="short", step_budget="5000", webhook_url="javascript:alert(1)"),
        [
            {"preset": "", "cron": "61 * * * *", "timezone": "Europe/Paris"},
            {"preset": "", "cron": "0 0 30 2 *", "timezone": "UTC"},
            {"preset": "", "cron": "0 9 * * *", "timezone": "Mars/Olympus"},
        ],
    )
    response = browser_client.post("/goals/new", data)
    assert response.status_code == 400
    page = response.content.decode()
    assert "The goal was not saved" in page
    assert "Too short: at least 10 characters" in page
    assert "Ensure this value is less than or equal to 1000." in page
    assert "Enter a valid URL." in page or "http:// or https://" in page
    assert "Invalid cron expression" in page
    assert "never fires" in page
    assert "Select a valid choice. Mars/Olympus" in page
    # What the user typed is still there.
    assert "\nshort</textarea>" in page or ">short</textarea>" in page
    assert 'value="61 * * * *"' in page
    assert 'value="5000"' in page
    assert not Goal.objects.exists()


def test_objective_length_limit(browser_client, default_agent):
    limit = settings.MAX_MESSAGE_LENGTH
    response = browser_client.post("/goals/new", goal_data(objective="x" * (limit + 1)))
    assert response.status_code == 400
    assert f"Too long: at most {limit} characters (it has {limit + 1})." in (
        response.content.decode()
    )
    response = browser_client.post("/goals/new", goal_data(objective="y" * limit))
    assert response.status_code == 302


def test_the_same_schedule_twice_is_refused(browser_client, default_agent):
    row = {"preset": "", "cron": "0 9 * * *", "timezone": "UTC"}
    response = browser_client.post("/goals/new", with_schedules(goal_data(), [row, row]))
    assert response.status_code == 400
    assert "The same schedule is listed twice." in response.content.decode()


def test_an_unknown_agent_is_a_message_beside_the_field(browser_client):
    response = browser_client.post("/goals/new", goal_data(agent="agent_gone"))
    assert response.status_code == 400
    assert "Select a valid choice. agent_gone is not one of the available choices." in (
        response.content.decode()
    )
    assert not Goal.objects.exists()


def test_add_schedule_without_javascript_adds_a_row_and_keeps_the_input(browser_client):
    data = with_schedules(
        goal_data(objective="typed so far, not saved"),
        [{"preset": "", "cron": "0 7 * * *", "timezone": "Asia/Tokyo"}],
    )
    data["add_schedule"] = "1"
    response = browser_client.post("/goals/new", data)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="schedules-TOTAL_FORMS" value="2"' in page
    assert 'name="schedules-1-cron"' in page
    assert 'value="0 7 * * *"' in page
    assert "typed so far, not saved" in page
    assert "errorlist" not in page
    assert not Goal.objects.exists()


def test_the_form_offers_active_agents_first_every_tool_and_every_zone(browser_client):
    AgentFactory(name="zeta", active=True)
    AgentFactory(name="alpha", active=False)
    page = browser_client.get("/goals/new").content.decode()
    assert page.index("zeta 1.0.0") < page.index("alpha 1.0.0 (inactive)")
    from tools.registry import all_tools

    for tool in all_tools():
        assert f'value="{tool.name}"' in page
    assert '<option value="Pacific/Chatham"' in page
    assert "data-browser-timezone" in page


def test_schedule_preview_describes_and_lists_next_runs_in_the_zone(browser_client):
    response = browser_client.get(
        "/goals/schedule-preview",
        {
            "row": "schedules-0",
            "schedules-0-cron": "0 9 * * *",
            "schedules-0-timezone": "Asia/Tokyo",
        },
    )
    page = response.content.decode()
    assert 'id="schedules-0-preview"' in page
    assert "At 09:00 AM" in page
    assert page.count("<li><time") == 5
    assert "09:00 JST" in page
    bad = browser_client.get("/goals/schedule-preview", {"cron": "nope nope", "timezone": "UTC"})
    assert "A cron expression has 5 fields" in bad.content.decode()


# --- edit ----------------------------------------------------------------------------------------
def test_edit_changes_fields_and_schedules_and_keeps_constraints(browser_client, default_agent):
    goal = GoalFactory(params={"constraints": "be brief", "stepBudget": 3})
    keep = ScheduleFactory(goal=goal, cron_expr="0 9 * * *", timezone="UTC")
    drop = ScheduleFactory(goal=goal, cron_expr="0 10 * * *", timezone="UTC")
    page = browser_client.get(f"/goals/{goal.id}/edit").content.decode()
    assert 'value="0 9 * * *"' in page and 'value="3"' in page
    data = with_schedules(
        goal_data(objective="A better objective for this goal", step_budget=""),
        [
            {"id": keep.id, "preset": "", "cron": "0 8 * * *", "timezone": "Europe/Berlin"},
            {"id": drop.id, "preset": "", "cron": "0 10 * * *", "timezone": "UTC", "DELETE": "on"},
            {"preset": "@hourly", "cron": "", "timezone": "UTC"},
        ],
    )
    data["schedules-INITIAL_FORMS"] = "2"
    response = browser_client.post(f"/goals/{goal.id}/edit", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    goal.refresh_from_db()
    assert goal.objective == "A better objective for this goal"
    assert goal.params == {"constraints": "be brief", "allowedTools": []}
    rows = {(s.id, s.cron_expr, s.timezone) for s in goal.schedules.all()}
    assert (keep.id, "0 8 * * *", "Europe/Berlin") in rows
    assert not Schedule.objects.filter(pk=drop.id).exists()
    assert {cron for _, cron, _ in rows} == {"0 8 * * *", "@hourly"}


# --- actions -------------------------------------------------------------------------------------
def test_pause_resume_run_and_delete(browser_client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    goal = GoalFactory()
    ScheduleFactory(goal=goal)
    response = browser_client.post(f"/goals/{goal.id}/pause", {"next": "/goals?status=paused"})
    assert response["Location"] == "/goals?status=paused"
    goal.refresh_from_db()
    assert goal.status == Goal.Status.PAUSED
    assert not goal.schedules.get().active
    response = browser_client.post(f"/goals/{goal.id}/run", follow=True)
    assert "This goal is paused" in response.content.decode()
    browser_client.post(f"/goals/{goal.id}/resume")
    goal.refresh_from_db()
    assert goal.status == Goal.Status.ACTIVE
    response = browser_client.post(f"/goals/{goal.id}/run")
    run = Run.objects.get(goal=goal)
    assert response["Location"] == f"/runs/{run.id}"
    response = browser_client.post(f"/goals/{goal.id}/delete", follow=True)
    assert "Goal deleted with its schedules and runs." in response.content.decode()
    assert not Goal.objects.filter(pk=goal.id).exists()


def test_an_open_next_is_not_followed(browser_client):
    goal = GoalFactory()
    response = browser_client.post(f"/goals/{goal.id}/pause", {"next": "https://evil.example/"})
    assert response["Location"] == f"/goals/{goal.id}"


# --- list and detail -----------------------------------------------------------------------------
def test_list_search_filter_sort_and_pages(browser_client):
    for index in range(25):
        GoalFactory(objective=f"Routine objective number {index:02d}")
    paused = GoalFactory(objective="Watch the zebra population", status=Goal.Status.PAUSED)
    page = browser_client.get("/goals").content.decode()
    assert "1\u201320 of 26 goals" in page
    page = browser_client.get("/goals", {"q": "zebra"}).content.decode()
    assert paused.id in page and "1\u20131 of 1" in page
    page = browser_client.get("/goals", {"status": "paused"}).content.decode()
    assert paused.id in page and "Routine objective" not in page
    page = browser_client.get("/goals", {"sort": "objective"}).content.decode()
    assert page.index("Routine objective number 00") < page.index("Routine objective number 01")


def test_detail_shows_every_run_of_the_goal_paginated(browser_client):
    goal = GoalFactory()
    ScheduleFactory(goal=goal, cron_expr="0 9 * * *", timezone="Asia/Tokyo")
    runs = [RunFactory(goal=goal) for _ in range(23)]
    RunFactory()  # another goal's run
    page = browser_client.get(f"/goals/{goal.id}").content.decode()
    assert "1\u201320 of 23 runs" in page
    assert "09:00 JST" in page
    second = browser_client.get(f"/goals/{goal.id}", {"page": 2}).content.decode()
    assert second.count('data-run-id="') == 3
    assert runs[0].id in second  # the oldest, on the last page


def test_list_and_detail_query_counts_do_not_grow_with_rows(browser_client):
    agent = AgentFactory()

    def grow(count: int) -> Goal:
        last = None
        for _ in range(count):
            last = GoalFactory(agent=agent)
            ScheduleFactory(goal=last)
            ScheduleFactory(goal=last, cron_expr="0 10 * * *")
            RunFactory(goal=last)
        return last

    goal = grow(3)
    for _ in range(3):
        RunFactory(goal=goal)
    small = (
        query_count(browser_client, "/goals"),
        query_count(browser_client, f"/goals/{goal.id}"),
    )
    goal = grow(30)
    for _ in range(30):
        RunFactory(goal=goal)
    large = (
        query_count(browser_client, "/goals"),
        query_count(browser_client, f"/goals/{goal.id}"),
    )
    assert large == small
