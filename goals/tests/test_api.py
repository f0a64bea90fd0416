import pytest

from config.api.ids import id_pattern
from goals.models import Goal, Schedule
from runs.models import Run, Step
from tests.factories import (
    AgentFactory,
    GoalFactory,
    MemoryFactory,
    RunFactory,
    ScheduleFactory,
    StepFactory,
)

pytestmark = pytest.mark.django_db

GOAL_KEYS = ["id", "objective", "params", "webhookUrl", "agentId", "status", "createdAt",
             "updatedAt"]  # fmt: skip
SCHEDULE_KEYS = ["id", "goalId", "cronExpr", "timezone", "active", "lastRunAt", "createdAt",
                 "error", "errorAt"]  # fmt: skip
OBJECTIVE = "Summarise the week's news about solar power"


def test_create_uses_defaults_and_the_active_default_agent(api):
    default = AgentFactory(name="defaultAgent", active=True)

    response = api.post("/api/v1/goals", {"objective": OBJECTIVE}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert list(body) == GOAL_KEYS
    assert id_pattern("goal").match(body["id"])
    assert body["status"] == "active"
    assert body["params"] == {}
    assert body["webhookUrl"] is None
    assert body["agentId"] == default.id


def test_create_without_any_agent_leaves_agent_null(api):
    body = api.post("/api/v1/goals", {"objective": OBJECTIVE}, format="json").json()
    assert body["agentId"] is None


def test_create_resolves_agent_by_name_then_id(api):
    named = AgentFactory(name="Researcher", active=True)
    inactive = AgentFactory(name="Old", active=False)

    by_name = api.post(
        "/api/v1/goals", {"objective": OBJECTIVE, "agentName": "Researcher"}, format="json"
    )
    by_id = api.post(
        "/api/v1/goals", {"objective": OBJECTIVE, "agentId": inactive.id}, format="json"
    )

    assert by_name.json()["agentId"] == named.id
    assert by_id.json()["agentId"] == inactive.id


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"agentName": "Ghost"}, "No active agent found with name: Ghost"),
        ({"agentId": "agent_nope"}, "Agent not found with id: agent_nope"),
    ],
)
def test_create_with_unknown_agent_is_400(api, extra, message):
    response = api.post("/api/v1/goals", {"objective": OBJECTIVE, **extra}, format="json")
    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert not Goal.objects.exists()


def test_create_keeps_known_params_and_drops_unknown_ones(api):
    params = {
        "stepBudget": 5,
        "allowedTools": ["writeFile"],
        "constraints": ["be brief"],
        "temperature": 3,
    }
    body = api.post(
        "/api/v1/goals", {"objective": OBJECTIVE, "params": params}, format="json"
    ).json()
    assert body["params"] == {
        "stepBudget": 5,
        "allowedTools": ["writeFile"],
        "constraints": ["be brief"],
    }


def test_create_with_schedule_stores_it(api):
    response = api.post(
        "/api/v1/goals",
        {"objective": OBJECTIVE, "schedule": {"cronExpr": "@daily", "timezone": "Europe/Paris"}},
        format="json",
    )
    assert response.status_code == 201
    assert "schedules" not in response.json()
    schedule = Schedule.objects.get(goal_id=response.json()["id"])
    assert (schedule.cron_expr, schedule.timezone, schedule.active) == (
        "@daily",
        "Europe/Paris",
        True,
    )


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, ["objective"]),
        ({"objective": "too short"}, ["objective"]),
        ({"objective": 12345678901}, ["objective"]),
        ({"objective": OBJECTIVE, "params": {"stepBudget": 0}}, ["params", "stepBudget"]),
        ({"objective": OBJECTIVE, "params": {"stepBudget": "x"}}, ["params", "stepBudget"]),
        (
            {"objective": OBJECTIVE, "params": {"allowedTools": "writeFile"}},
            ["params", "allowedTools"],
        ),
        ({"objective": OBJECTIVE, "params": {"constraints": 5}}, ["params", "constraints"]),
        ({"objective": OBJECTIVE, "webhookUrl": "not a url"}, ["webhookUrl"]),
        ({"objective": OBJECTIVE, "webhookUrl": "ftp://x.example/hook"}, ["webhookUrl"]),
        (
            {"objective": OBJECTIVE, "schedule": {"cronExpr": "61 * * * *"}},
            ["schedule", "cronExpr"],
        ),
        (
            {"objective": OBJECTIVE, "schedule": {"cronExpr": "* * * * * *"}},
            ["schedule", "cronExpr"],
        ),
        (
            {"objective": OBJECTIVE, "schedule": {"cronExpr": "@daily", "timezone": "Mars/Base"}},
            ["schedule", "timezone"],
        ),
        ({"objective": OBJECTIVE, "schedule": {}}, ["schedule", "cronExpr"]),
    ],
)
def test_invalid_goal_is_400_never_500(api, body, path):
    response = api.post("/api/v1/goals", body, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "Invalid input parameters"
    assert any(e["path"] == path and e["message"] for e in body["validation_errors"])
    assert not Goal.objects.exists()


def test_objective_longer_than_the_limit_is_rejected(api, settings):
    settings.MAX_MESSAGE_LENGTH = 20
    response = api.post("/api/v1/goals", {"objective": "x" * 21}, format="json")
    assert response.status_code == 400


def test_non_object_body_is_400(api):
    response = api.post("/api/v1/goals", [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["validation_errors"][0]["path"] == []


def test_list_includes_schedules_and_agent_newest_first(api):
    agent = AgentFactory(active=True)
    older = GoalFactory(agent=agent)
    newer = GoalFactory()
    ScheduleFactory(goal=older)

    body = api.get("/api/v1/goals").json()

    assert [g["id"] for g in body] == [newer.id, older.id]
    assert list(body[1]) == [*GOAL_KEYS, "schedules", "agent"]
    assert list(body[1]["schedules"][0]) == SCHEDULE_KEYS
    assert body[1]["agent"]["id"] == agent.id
    assert body[0]["agent"] is None
    assert body[0]["schedules"] == []


def test_list_with_dangling_agent_id_gives_null_agent(api):
    agent = AgentFactory()
    agent_id = agent.id
    goal = GoalFactory(agent=agent)
    agent.delete()
    body = api.get("/api/v1/goals").json()
    assert body[0]["agentId"] == agent_id
    assert body[0]["agent"] is None
    assert goal.id == body[0]["id"]


@pytest.mark.parametrize("microsecond", [0, 123456, 999999])
def test_list_timestamps_read_as_every_other_endpoint_writes_them(api, microsecond):
    """The list has its timestamps formatted by the database; they must equal the Python
    formatting of the detail endpoints (truncated milliseconds, UTC, `Z`)."""
    from datetime import UTC, datetime

    from config.api.formatting import iso

    moment = datetime(2026, 11, 23, 19, 45, 17, microsecond, tzinfo=UTC)
    agent = AgentFactory()
    goal = GoalFactory(agent=agent)
    ScheduleFactory(goal=goal)
    ScheduleFactory(goal=goal)
    Goal.objects.filter(pk=goal.pk).update(created_at=moment, updated_at=moment)
    Schedule.objects.filter(goal=goal).update(last_run_at=moment)
    never_run = Schedule.objects.filter(goal=goal).order_by("created_at").first()
    Schedule.objects.filter(pk=never_run.pk).update(last_run_at=None)
    type(agent).objects.filter(pk=agent.pk).update(created_at=moment)

    listed = api.get("/api/v1/goals").json()[0]
    detail = api.get(f"/api/v1/goals/{goal.id}").json()
    agent_detail = api.get(f"/api/v1/agents/{agent.id}").json()

    assert listed["createdAt"] == listed["updatedAt"] == iso(moment) == detail["createdAt"]
    assert listed["agent"]["createdAt"] == agent_detail["createdAt"] == iso(moment)
    assert listed["agent"]["updatedAt"] == agent_detail["updatedAt"]
    assert listed["schedules"] == detail["schedules"]
    assert [s["lastRunAt"] for s in listed["schedules"]] == [None, iso(moment)]


def test_list_filters_by_status(api):
    GoalFactory(status="paused")
    active = GoalFactory()
    assert [g["id"] for g in api.get("/api/v1/goals?status=active").json()] == [active.id]
    assert api.get("/api/v1/goals?status=bogus").json() == []


def test_list_uses_a_constant_number_of_queries(api, django_assert_max_num_queries):
    for _ in range(30):
        ScheduleFactory(goal=GoalFactory(agent=AgentFactory()))
    # auth token, goals+agents join, their schedules (the whole list: nothing to count)
    with django_assert_max_num_queries(3):
        response = api.get("/api/v1/goals")
    assert len(response.json()) == 30


def test_list_pages_with_limit_and_offset_and_keeps_the_bare_array(api):
    goals = [GoalFactory() for _ in range(5)]
    newest_first = [goal.id for goal in reversed(goals)]
    for goal in goals:
        ScheduleFactory(goal=goal)

    first = api.get("/api/v1/goals?status=active&limit=2")
    second = api.get("/api/v1/goals?status=active&limit=2&offset=2")
    last = api.get("/api/v1/goals?status=active&limit=2&offset=4")

    assert [g["id"] for g in first.json()] == newest_first[:2]
    assert [g["id"] for g in second.json()] == newest_first[2:4]
    assert [g["id"] for g in last.json()] == newest_first[4:]
    # Each goal keeps its own schedules on every page.
    assert all(len(g["schedules"]) == 1 for g in second.json())
    assert {g["id"] for g in second.json()} == {g["schedules"][0]["goalId"] for g in second.json()}
    assert first["X-Total-Count"] == second["X-Total-Count"] == last["X-Total-Count"] == "5"
    assert first["X-Limit"] == "2" and second["X-Offset"] == "2"
    assert second["Link"].endswith('/api/v1/goals?status=active&limit=2&offset=4>; rel="next"')
    assert "Link" not in last


def test_list_answers_every_goal_up_to_100_by_default(api, django_assert_max_num_queries):
    for _ in range(101):
        GoalFactory()
    with django_assert_max_num_queries(4):  # token, goals+agents, schedules, count
        response = api.get("/api/v1/goals")
    assert len(response.json()) == 100
    assert response["X-Total-Count"] == "101"
    assert response["Link"].endswith('offset=100&limit=100>; rel="next"')
    assert len(api.get("/api/v1/goals?limit=500").json()) == 101


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=501", "limit=ten", "offset=-1", "offset=x", "limit=1&limit=2"]
)
def test_list_refuses_bad_paging_with_a_json_400(api, query):
    response = api.get(f"/api/v1/goals?{query}")
    assert response.status_code == 400
    assert response.json()["validation_errors"]


def test_get_includes_schedules_but_not_agent(api):
    goal = GoalFactory()
    ScheduleFactory(goal=goal)
    body = api.get(f"/api/v1/goals/{goal.id}").json()
    assert list(body) == [*GOAL_KEYS, "schedules"]
    assert len(body["schedules"]) == 1


def test_get_unknown_goal_is_404(api):
    response = api.get("/api/v1/goals/goal_missing")
    assert response.status_code == 404
    assert response.json() == {"error": "Goal not found"}


def test_patch_replaces_given_fields(api):
    goal = GoalFactory(params={"stepBudget": 3})
    response = api.patch(
        f"/api/v1/goals/{goal.id}",
        {"params": {"allowedTools": ["readFile"]}, "webhookUrl": None, "status": "archived"},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["params"] == {"allowedTools": ["readFile"]}
    assert body["status"] == "archived"
    assert "schedules" not in body


@pytest.mark.parametrize(
    "body", [{"status": "done"}, {"objective": "short"}, {"webhookUrl": "nope"}]
)
def test_patch_invalid_is_400(api, body):
    goal = GoalFactory()
    assert api.patch(f"/api/v1/goals/{goal.id}", body, format="json").status_code == 400


def test_patch_unknown_goal_is_404(api):
    response = api.patch("/api/v1/goals/goal_missing", {"status": "paused"}, format="json")
    assert response.status_code == 404


def test_delete_cascades_to_schedules_runs_steps_and_memories(api):
    goal = GoalFactory()
    ScheduleFactory(goal=goal)
    MemoryFactory(goal=goal)
    StepFactory(run=RunFactory(goal=goal))

    response = api.delete(f"/api/v1/goals/{goal.id}")

    assert response.status_code == 204
    assert not Goal.objects.exists()
    assert not Schedule.objects.exists()
    assert not Run.objects.exists()
    assert not Step.objects.exists()


def test_delete_unknown_goal_is_404(api):
    assert api.delete("/api/v1/goals/goal_missing").status_code == 404


@pytest.mark.parametrize("body", [None, ""])
def test_pause_and_resume_toggle_goal_and_schedules(api, body):
    goal = GoalFactory()
    ScheduleFactory(goal=goal)
    ScheduleFactory(goal=goal)
    kwargs = {} if body is None else {"data": body, "content_type": "application/json"}

    paused = api.post(f"/api/v1/goals/{goal.id}/pause", **kwargs)
    assert paused.status_code == 200
    assert paused.json() == {"message": "Goal paused"}
    goal.refresh_from_db()
    assert goal.status == "paused"
    assert not goal.schedules.filter(active=True).exists()

    resumed = api.post(f"/api/v1/goals/{goal.id}/resume", **kwargs)
    assert resumed.json() == {"message": "Goal resumed"}
    goal.refresh_from_db()
    assert goal.status == "active"
    assert not goal.schedules.filter(active=False).exists()


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pause_and_resume_unknown_goal_is_404(api, action):
    response = api.post(f"/api/v1/goals/goal_missing/{action}")
    assert response.status_code == 404
    assert response.json() == {"error": "Goal not found"}
