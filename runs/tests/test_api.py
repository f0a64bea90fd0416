import pytest

from runs.models import Output, Run, Step
from tests.factories import GoalFactory, OutputFactory, RunFactory, StepFactory

pytestmark = pytest.mark.django_db

RUN_KEYS = ["id", "goalId", "status", "startedAt", "endedAt", "workingMemory", "stepBudget",
            "stepsExecuted", "error", "createdAt",
            # additions (not in the original): what started it, tokens and USD of its LLM calls
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


def test_list_is_newest_first_and_capped_at_50(api, django_assert_max_num_queries):
    goal = GoalFactory()
    runs = [RunFactory(goal=goal) for _ in range(55)]
    with django_assert_max_num_queries(3):
        body = api.get("/api/v1/runs").json()
    assert len(body) == 50
    assert body[0]["id"] == runs[-1].id


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
