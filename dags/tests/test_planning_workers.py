"""dag-experiments and create-and-execute-dag with a real Celery worker and the chat server."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from config.api.ids import id_pattern
from dags.models import Dag, DagExecution, SubStep
from dags.tests.planning_helpers import (
    PLANNER_TEMPLATE,
    TITLE_TEMPLATE,
    body,
    fenced,
    good_plan,
    plan,
    planner_agents,
    system_text,
    task,
)
from tests.fakes.openai_server import ChatReply
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PLANNER_MARK = PLANNER_TEMPLATE.split(".")[0]
TITLE_MARK = TITLE_TEMPLATE.split(".")[0]


def experiments_body(**extra):
    return {
        "goal-text": "Compare battery chemistries",
        "agentName": "DecomposerV8",
        "provider": "openai",
        "models": ["model-a", "model-b"],
        "temperatures": [0.2, 0.9],
        **extra,
    }


def test_experiments_plan_every_pair_in_parallel_and_store_each_plan(
    api, user, fake_llm, celery_worker_thread
):
    planner_agents(title=True)
    arrivals: list[float] = []

    def respond(request: dict) -> ChatReply:
        system = system_text(request)
        if system.startswith(TITLE_MARK):
            return ChatReply(content="Battery Chemistries")
        assert system.startswith(PLANNER_MARK)
        arrivals.append(time.monotonic())
        # Every planning call waits a little: run one after another, four would take 4x.
        return ChatReply(content=fenced(good_plan()), delay=0.4, cost=0.001)

    fake_llm.responder = respond

    response = api.post("/api/v1/dag-experiments", experiments_body(seed=None), format="json")

    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["status"] == "completed"
    assert data["totalExperiments"] == 4
    assert data["successCount"] == 4 and data["failureCount"] == 0
    pairs = [(r["model"], r["temperature"]) for r in data["results"]]
    assert pairs == [("model-a", 0.2), ("model-a", 0.9), ("model-b", 0.2), ("model-b", 0.9)]
    assert all(r["success"] and "error" not in r for r in data["results"])
    dag_ids = [r["dagId"] for r in data["results"]]
    assert all(id_pattern("dag").match(dag_id) for dag_id in dag_ids)
    assert Dag.objects.filter(pk__in=dag_ids).count() == 4 == Dag.objects.count()
    for result in data["results"]:
        dag = Dag.objects.get(pk=result["dagId"])
        assert dag.params["model"] == result["model"]
        assert dag.params["temperature"] == result["temperature"]
        assert dag.params["provider"] == "openai" and "seed" not in dag.params
        assert dag.result["sub_tasks"][1]["tool_or_prompt"]["params"] == {
            "urls": ["<Result from Task 001>"]
        }
        assert dag.dag_title == "Battery Chemistries"
        assert dag.owner == user  # planned on a worker, owned by the caller
        assert dag.planning_total_cost_usd > Decimal("0.001")
    planning = [r for r in fake_llm.requests if system_text(r).startswith(PLANNER_MARK)]
    assert sorted((r["model"], r["temperature"]) for r in planning) == sorted(pairs)
    # the four planning calls overlapped in time (one after another they start 0.4 s apart)
    assert len(arrivals) == 4
    assert max(arrivals) - min(arrivals) < 0.4


def test_experiment_failures_are_listed_with_their_reason(api, fake_llm, celery_worker_thread):
    planner_agents()

    def respond(request: dict) -> ChatReply:
        if request["model"] == "model-b":
            return ChatReply(content="no idea")
        if request["temperature"] == 0.9:
            question = plan(
                sub_tasks=[], clarification_needed=True, clarification_query="Which ones?"
            )
            return ChatReply(content=fenced(question))
        return ChatReply(content=fenced(good_plan()))

    fake_llm.responder = respond

    response = api.post("/api/v1/dag-experiments", experiments_body(seed=5), format="json")

    data = response.json()
    assert data["totalExperiments"] == 4
    assert data["successCount"] == 1 and data["failureCount"] == 3
    by_pair = {(r["model"], r["temperature"]): r for r in data["results"]}
    assert by_pair[("model-a", 0.2)]["success"] is True
    clarification = by_pair[("model-a", 0.9)]
    assert clarification["success"] is False and clarification["dagId"] is None
    assert "Clarification required" in clarification["error"]
    assert "Which ones?" in clarification["error"]
    for temperature in (0.2, 0.9):
        failed = by_pair[("model-b", temperature)]
        assert failed["success"] is False and failed["dagId"] is None
        assert failed["error"].startswith("LLM response is not valid JSON after multiple attempts")
    assert Dag.objects.count() == 1
    assert Dag.objects.get().params["seed"] == 5
    assert all(r["seed"] == 5 for r in fake_llm.requests)


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"provider": "zzz"}, 400, "Invalid LLM provider configuration"),
        ({"agentName": "Nobody"}, 404, "Agent 'Nobody' not found OR not active"),
        ({"temperatures": [2.5]}, 400, "Invalid input parameters"),
        ({"models": []}, 400, "Invalid input parameters"),
        ({"models": [f"m{i}" for i in range(13)]}, 400, "Invalid input parameters"),
    ],
)
def test_experiments_are_validated_before_anything_runs(api, fake_llm, change, status, error):
    planner_agents()

    response = api.post("/api/v1/dag-experiments", experiments_body(**change), format="json")

    assert response.status_code == status
    assert response.json()["error"] == error
    assert fake_llm.requests == []


def test_create_and_execute_plans_stores_and_runs(
    api, fake_llm, celery_worker_thread, artifacts_dir
):
    planner_agents(title=True)
    job = plan(
        task("w", action="inference", tool="InferenceAgent", params={"prompt": "Write"}),
        task(
            "save",
            tool="writeFile",
            params={"path": "notes/out.md", "content": "<Result from Task w>"},
            deps=["w"],
        ),
    )

    def respond(request: dict) -> ChatReply:
        system = system_text(request)
        if system.startswith(PLANNER_MARK):
            return ChatReply(content=fenced(job), prompt_tokens=50)
        if system.startswith(TITLE_MARK):
            return ChatReply(content="Notes")
        user = request["messages"][-1]["content"]
        if "Synthesis plan" in user:
            return ChatReply(content="# Report")
        return ChatReply(content="the written text")

    fake_llm.responder = respond

    response = api.post(
        "/api/v1/create-and-execute-dag", body("Write notes to a file"), format="json"
    )

    assert response.status_code == 202, response.json()
    data = response.json()
    assert set(data) == {
        "status",
        "dagId",
        "executionId",
        "originalRequest",
        "totalTasks",
        "usage",
        "generation_stats",
        "message",
    }
    assert data["status"] == "executing"
    assert data["originalRequest"] == "Write notes to a file"
    assert data["totalTasks"] == 2
    assert data["usage"] == {"promptTokens": 50, "completionTokens": 5, "totalTokens": 55}
    assert "SSE" in data["message"]
    dag = Dag.objects.get(pk=data["dagId"])
    assert dag.dag_title == "Notes"
    assert dag.planning_attempts[0]["reason"] == "initial"
    assert dag.planning_total_usage["promptTokens"] == 60
    wait_for(
        lambda: DagExecution.objects.filter(
            pk=data["executionId"], status__in=["completed", "suspended"]
        ).exists()
    )
    execution = DagExecution.objects.get(pk=data["executionId"])
    assert execution.status == "completed", execution.suspended_reason
    assert execution.dag_id == dag.id
    saved = SubStep.objects.get(execution=execution, task_id="002")
    assert saved.tool_or_prompt_params["content"] == "<Result from Task 001>"
    assert json.loads(saved.result)["path"].endswith("out.md")
    assert execution.final_result == "# Report"
