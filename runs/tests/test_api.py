import pytest

from runs.models import Output, Run, Step
from tests.factories import GoalFactory, OutputFactory, RunFactory, StepFactory

pytestmark = pytest.mark.django_db

RUN_KEYS = ["id", "goalId", "status", "startedAt", "endedAt", "workingMemory", "stepBudget",
            "stepsExecuted", "error", "createdAt",
            # additions (docs/api-differences.md): what started it, tokens and USD of its LLM calls
            "trigger", "usage", "costUsd"]  # fmt: skip
STEP_KEYS = ["id", "runId", "stepNo", "thought", "toolName", "toolInput", "observation",
             "durationMs", "error", "createdAt",
             # additions: every tool call of the step, tokens and USD of its LLM call
             "toolCalls", "usage", "costUsd"]  # fmt: skip


def test_list_embeds_goal_and_filters(api):
    goal = GoalFactory()
    mine = RunFactory(goal=goal, status="completed")
    RunFactory(goal=goal, status="failed")
    RunFactory()

    body = api.get(f"/api/v1/runs?goalId={goal.id}&status=completed").json()

    assert [r["id"] for r in body] == [mine.id]
    assert list(body[0]) == [*RUN_KEYS, "goal"]
    assert body[0]["goal"]["id"] == goal.id
    assert "schedules" not in body[0]["goal"]


def test_list_is_newest_first_and_pages_by_50(api, django_assert_max_num_queries):
    goal = GoalFactory()
    runs = [RunFactory(goal=goal) for _ in range(55)]
    with django_assert_max_num_queries(4):
        response = api.get("/api/v1/runs")
    body = response.json()
    assert len(body) == 50
    assert body[0]["id"] == runs[-1].id
    assert response["X-Total-Count"] == "55"
    assert response["Link"].endswith('/api/v1/runs?offset=50&limit=50>; rel="next"')


def test_list_pages_with_limit_and_offset_and_keeps_the_bare_array(api):
    goal = GoalFactory()
    runs = [RunFactory(goal=goal) for _ in range(5)]
    newest_first = [run.id for run in reversed(runs)]

    first = api.get(f"/api/v1/runs?goalId={goal.id}&limit=2")
    second = api.get(f"/api/v1/runs?goalId={goal.id}&limit=2&offset=2")
    last = api.get(f"/api/v1/runs?goalId={goal.id}&limit=2&offset=4")

    assert [r["id"] for r in first.json()] == newest_first[:2]
    assert [r["id"] for r in second.json()] == newest_first[2:4]
    assert [r["id"] for r in last.json()] == newest_first[4:]
    assert first["X-Total-Count"] == "5" and first["X-Limit"] == "2"
    assert second["X-Offset"] == "2"
    assert "offset=4" in second["Link"] and f"goalId={goal.id}" in second["Link"]
    assert "Link" not in last


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "offset=-1", "limit=abc"])
def test_list_refuses_bad_paging(api, query):
    response = api.get(f"/api/v1/runs?{query}")
    assert response.status_code == 400
    assert "error" in response.json()


def test_get_run_and_404(api):
    run = RunFactory(working_memory={"summary": "done"})
    body = api.get(f"/api/v1/runs/{run.id}").json()
    assert body["workingMemory"] == {"summary": "done"}
    assert body["goal"]["id"] == run.goal_id
    missing = api.get("/api/v1/runs/run_missing")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Run not found"}


def test_steps_in_order(api):
    run = RunFactory()
    StepFactory(run=run, step_no=2, tool_name="readFile", tool_input={"path": "a.md"})
    StepFactory(run=run, step_no=1)

    body = api.get(f"/api/v1/runs/{run.id}/steps").json()

    assert [s["stepNo"] for s in body] == [1, 2]
    assert list(body[0]) == STEP_KEYS
    assert body[1]["toolInput"] == {"path": "a.md"}
    assert api.get("/api/v1/runs/run_missing/steps").status_code == 404


def test_delete_cascades_to_steps_and_outputs(api):
    run = RunFactory()
    StepFactory(run=run)
    OutputFactory(run=run)

    assert api.delete(f"/api/v1/runs/{run.id}").status_code == 204
    assert not Run.objects.exists()
    assert not Step.objects.exists()
    assert not Output.objects.exists()
    assert api.delete(f"/api/v1/runs/{run.id}").status_code == 404
