"""DAG execution end to end: real Redis, a real Celery worker, the scripted chat server."""

from __future__ import annotations

import pytest

from artifacts.models import Artifact
from artifacts.services import artifact_record_write
from config import after_response
from dags.models import DagExecution, ExecutionEvent, SubStep
from tests.factories import AgentFactory, DagFactory, decomposer_job
from tests.fakes.openai_server import ChatReply
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def wait_status(execution_id: str, *statuses: str, timeout: float = 30.0) -> DagExecution:
    wait_for(
        lambda: DagExecution.objects.filter(pk=execution_id, status__in=statuses).exists(),
        timeout,
    )
    return DagExecution.objects.get(pk=execution_id)


def user_text(request: dict) -> str:
    return "\n".join(
        m["content"] for m in request["messages"] if m["role"] == "user" and m.get("content")
    )


@pytest.fixture
def inference_agent(db):
    return AgentFactory(name="InferenceAgent", prompt_template="You are careful.", active=True)


def test_execute_dag_runs_in_dependency_order_and_synthesises(
    api, fake_llm, celery_worker_thread, inference_agent
):
    def reply(request: dict) -> ChatReply:
        text = user_text(request)
        if "## Synthesis plan" in text:
            return ChatReply(content="# Final report", cost=0.002)
        if "Current Task [001/2]" in text:
            return ChatReply(content="alpha result", cost=0.001)
        return ChatReply(content="beta built on alpha", cost=0.001)

    fake_llm.responder = reply
    dag = DagFactory(result=decomposer_job(2))

    response = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "started"
    assert body["totalTasks"] == 2
    execution = wait_status(body["executionId"], "completed", "suspended")
    assert execution.status == "completed"
    assert execution.completed_tasks == execution.total_tasks == 2
    assert execution.final_result == execution.synthesis_result == "# Final report"
    steps = {s.task_id: s for s in SubStep.objects.filter(execution=execution)}
    assert set(steps) == {"001", "002", "__SYNTHESIS__"}
    assert steps["001"].result == "alpha result"
    assert steps["002"].started_at >= steps["001"].completed_at
    # the dependency's result reached the dependant's prompt
    second = next(r for r in fake_llm.requests if "Current Task [002/2]" in user_text(r))
    assert "alpha result" in user_text(second)
    assert second["messages"][0] == {"role": "system", "content": "You are careful."}
    # the synthesis saw every result, in task order
    synthesis_text = user_text(
        next(r for r in fake_llm.requests if "## Synthesis plan" in user_text(r))
    )
    assert 0 <= synthesis_text.index("alpha result") < synthesis_text.index("beta built on alpha")
    assert execution.total_usage == {"promptTokens": 30, "completionTokens": 15, "totalTokens": 45}
    assert str(execution.total_cost_usd.normalize()) == "0.004"
    types = list(
        ExecutionEvent.objects.filter(execution=execution)
        .order_by("seq")
        .values_list("type", flat=True)
    )
    assert types[0] == "execution.started"
    assert types[-1] == "execution.completed"
    assert types.count("substep.completed") == 3


def tool_task(task_id: str, tool: str, params: dict, deps: list[str] | None = None) -> dict:
    return {
        "id": task_id,
        "description": f"{tool} step",
        "thought": "needed",
        "action_type": "tool",
        "tool_or_prompt": {"name": tool, "params": params},
        "expected_output": "tool output",
        "dependencies": deps or ["none"],
    }


def inference_task(task_id: str, prompt: str, deps: list[str] | None = None) -> dict:
    return {
        "id": task_id,
        "description": f"think {task_id}",
        "thought": "needed",
        "action_type": "inference",
        "tool_or_prompt": {"name": "InferenceAgent", "params": {"prompt": prompt}},
        "expected_output": "text",
        "dependencies": deps or ["none"],
    }


def calls_for(fake_llm, marker: str) -> int:
    return sum(marker in user_text(r) for r in fake_llm.requests)


def test_independent_nodes_start_in_parallel(api, fake_llm, celery_worker_thread, inference_agent):
    fake_llm.default = ChatReply(content="done", delay=0.5)
    tasks = [inference_task(f"00{i}", f"part {i}") for i in range(1, 5)]
    dag = DagFactory(result=decomposer_job(0, sub_tasks=tasks))

    execution_id = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json").json()[
        "executionId"
    ]

    execution = wait_status(execution_id, "completed", "suspended")
    assert execution.status == "completed"
    steps = list(SubStep.objects.filter(execution=execution).exclude(task_id="__SYNTHESIS__"))
    last_start = max(s.started_at for s in steps)
    first_end = min(s.completed_at for s in steps)
    assert last_start < first_end  # all four ran at the same time


def test_concurrency_cap_is_honoured_and_never_deadlocks(
    api, fake_llm, celery_worker_thread, inference_agent, settings
):
    settings.EXECUTION_MAX_PARALLEL_NODES = 2
    fake_llm.default = ChatReply(content="done", delay=0.2)
    tasks = [inference_task(f"00{i}", f"part {i}") for i in range(1, 6)]
    dag = DagFactory(result=decomposer_job(0, sub_tasks=tasks))

    execution_id = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json").json()[
        "executionId"
    ]

    execution = wait_status(execution_id, "completed", "suspended")
    assert execution.status == "completed"
    steps = list(SubStep.objects.filter(execution=execution).exclude(task_id="__SYNTHESIS__"))
    points = sorted(
        [(s.started_at, 1) for s in steps] + [(s.completed_at, -1) for s in steps],
        key=lambda point: (point[0], point[1]),
    )
    running, peak = 0, 0
    for _moment, change in points:
        running += change
        peak = max(peak, running)
    assert peak == 2


def test_tool_params_take_dependency_results_by_number(
    api, user, fake_llm, celery_worker_thread, inference_agent, artifacts_dir
):
    fake_llm.responder = lambda r: ChatReply(
        content="# Report" if "## Synthesis plan" in user_text(r) else "draft $& text"
    )
    tasks = [
        inference_task("001", "write a draft"),
        tool_task(
            "002",
            "writeFile",
            {"path": "out/<Result from Task 1>.md", "content": "Draft: <Result from Task 1>"},
            ["001"],
        ),
        tool_task("003", "writeFile", {"path": "copy.md", "content": "ignored"}, ["001"]),
    ]
    dag = DagFactory(result=decomposer_job(0, sub_tasks=tasks))

    execution_id = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json").json()[
        "executionId"
    ]

    execution = wait_status(execution_id, "completed", "suspended")
    assert execution.status == "completed", execution.suspended_reason
    assert (artifacts_dir / "out" / "draft $& text.md").read_text() == "Draft: draft $& text"
    # writeFile content without references takes the dependencies' text
    assert (artifacts_dir / "copy.md").read_text() == "draft $& text"
    # Each file is recorded as the execution owner's: the API lists them for that user.
    records = {a.path: a for a in Artifact.objects.all()}
    assert set(records) == {"out/draft $& text.md", "copy.md"}
    assert {(a.owner, a.execution_id) for a in records.values()} == {(user, execution_id)}
    assert records["copy.md"].size == len("draft $& text")
    assert api.get("/api/v1/artifacts").json() == ["copy.md", "out/draft $& text.md"]


def test_failing_tool_suspends_and_resume_reruns_only_unfinished_tasks(
    api, fake_llm, celery_worker_thread, inference_agent, artifacts_dir
):
    fake_llm.responder = lambda r: ChatReply(
        content="# Report" if "## Synthesis plan" in user_text(r) else "expensive answer"
    )
    tasks = [
        inference_task("001", "expensive step"),
        tool_task("002", "readFile", {"path": "input.txt"}, ["001"]),
        inference_task("003", "use the file", ["002"]),
    ]
    dag = DagFactory(result=decomposer_job(0, sub_tasks=tasks))
    execution_id = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json").json()[
        "executionId"
    ]

    execution = wait_status(execution_id, "suspended", "completed")

    assert execution.status == "suspended"
    assert "002" in execution.suspended_reason
    steps = {s.task_id: s for s in SubStep.objects.filter(execution=execution)}
    assert steps["001"].status == "completed"
    assert steps["002"].status == "failed" and steps["002"].error
    assert steps["003"].status == "pending"
    assert "__SYNTHESIS__" not in steps
    assert execution.completed_tasks == 1 and execution.failed_tasks == 1
    assert calls_for(fake_llm, "expensive step") == 1

    (artifacts_dir / "input.txt").write_text("file body")
    # A file put there by hand is staff-only until recorded as someone's (as writeFile does).
    artifact_record_write(path="input.txt", size=9, owner_id=execution.owner_id)
    response = api.post(f"/api/v1/resume-dag/{execution_id}")

    assert response.status_code == 202
    assert response.json()["retryCount"] == 1
    execution = wait_status(execution_id, "completed", "suspended")
    assert execution.status == "completed"
    assert calls_for(fake_llm, "expensive step") == 1  # completed work was reused
    assert calls_for(fake_llm, "use the file") == 1
    assert "file body" in user_text(
        next(r for r in fake_llm.requests if "use the file" in user_text(r))
    )
    assert execution.completed_tasks == execution.total_tasks == 3
    assert execution.failed_tasks == 0
    assert execution.suspended_reason  # kept for the record
    types = list(
        ExecutionEvent.objects.filter(execution=execution)
        .order_by("seq")
        .values_list("type", flat=True)
    )
    assert types.count("execution.suspended") == 1
    assert "execution.resumed" in types


def test_a_failing_synthesis_suspends_with_its_reason_stated_once(
    api, fake_llm, celery_worker_thread, inference_agent
):
    fake_llm.responder = lambda r: (
        ChatReply(status=400, error_message="context too long")
        if "## Synthesis plan" in user_text(r)
        else ChatReply(content="fine")
    )
    dag = DagFactory(result=decomposer_job(2))
    execution_id = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json").json()[
        "executionId"
    ]

    execution = wait_status(execution_id, "suspended", "completed")

    assert execution.status == "suspended"
    assert execution.completed_tasks == 2
    assert execution.suspended_reason.startswith("Synthesis failed: ")
    assert execution.suspended_reason.count("Synthesis failed") == 1
    assert "context too long" in execution.suspended_reason
    synthesis = SubStep.objects.get(execution=execution, task_id="__SYNTHESIS__")
    assert synthesis.status == "failed" and "context too long" in synthesis.error


def test_resume_refuses_executions_that_are_not_stopped(api, fake_llm, inference_agent):
    from tests.factories import DagExecutionFactory

    execution = DagExecutionFactory(status="completed")
    response = api.post(f"/api/v1/resume-dag/{execution.id}")
    assert response.status_code == 400
    assert response.json()["currentStatus"] == "completed"
    assert api.post("/api/v1/resume-dag/dag-exec_missing").status_code == 404


def test_cancel_stops_scheduling(api, fake_llm, celery_worker_thread, inference_agent):
    fake_llm.default = ChatReply(content="slow", delay=1.0)
    tasks = [inference_task("001", "slow one"), inference_task("002", "after", ["001"])]
    dag = DagFactory(result=decomposer_job(0, sub_tasks=tasks))
    execution_id = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json").json()[
        "executionId"
    ]
    wait_for(
        lambda: SubStep.objects.filter(
            execution_id=execution_id, task_id="001", status="running"
        ).exists()
    )

    response = api.post(f"/api/v1/dag-executions/{execution_id}/cancel")

    assert response.status_code == 200
    wait_for(
        lambda: SubStep.objects.filter(
            execution_id=execution_id, task_id="001", status="completed"
        ).exists()
    )
    execution = DagExecution.objects.get(pk=execution_id)
    assert execution.status == "cancelled"
    steps = {s.task_id: s.status for s in SubStep.objects.filter(execution=execution)}
    assert steps == {"001": "completed", "002": "cancelled"}
    assert calls_for(fake_llm, "after") == 0
    again = api.post(f"/api/v1/dag-executions/{execution_id}/cancel")
    assert again.status_code == 409


def test_duplicate_delivery_of_a_node_changes_nothing(
    api, fake_llm, celery_worker_thread, inference_agent
):
    from dags.tasks import run_sub_step

    dag = DagFactory(result=decomposer_job(1))
    execution_id = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json").json()[
        "executionId"
    ]
    execution = wait_status(execution_id, "completed")
    node = SubStep.objects.get(execution=execution, task_id="001")
    before = (
        ExecutionEvent.objects.filter(execution=execution).count(),
        fake_llm.call_count,
        node.result,
        node.completed_at,
    )

    run_sub_step.apply(args=[node.id])  # the same message delivered again
    run_sub_step.apply(args=[node.id])

    node.refresh_from_db()
    after = (
        ExecutionEvent.objects.filter(execution=execution).count(),
        fake_llm.call_count,
        node.result,
        node.completed_at,
    )
    assert after == before


@pytest.mark.parametrize(
    ("result", "status"),
    [
        (
            decomposer_job(
                2,
                sub_tasks=[
                    inference_task("001", "a", ["002"]),
                    inference_task("002", "b", ["001"]),
                ],
            ),
            400,
        ),
        (decomposer_job(1, sub_tasks=[inference_task("001", "a", ["009"])]), 400),
        ({"not": "a plan"}, 400),
        (None, 400),
    ],
)
def test_execute_dag_refuses_unsound_plans(api, result, status):
    dag = DagFactory(result=result)
    response = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json")
    assert response.status_code == status
    assert response.json()["validation_errors"]
    assert not DagExecution.objects.exists()


def test_execute_dag_clarification_and_unknown_dag(api):
    dag = DagFactory(
        result=decomposer_job(1, clarification_needed=True, clarification_query="Which city?")
    )
    response = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json")
    assert response.status_code == 200
    assert response.json()["clarification_query"] == "Which city?"
    assert not DagExecution.objects.exists()
    missing = api.post("/api/v1/execute-dag", {"dagId": "nope"}, format="json")
    assert missing.status_code == 404
    assert missing.json() == {"error": "DAG with id 'nope' not found"}
    assert api.post("/api/v1/execute-dag", {}, format="json").status_code == 400


def test_dag_run_runs_a_stored_dag(api, fake_llm, celery_worker_thread, inference_agent):
    dag = DagFactory(result=decomposer_job(1))
    response = api.post("/api/v1/dag-run", {"dagId": dag.id}, format="json")
    assert response.status_code == 202
    assert wait_status(response.json()["executionId"], "completed").status == "completed"


def test_cost_endpoints(api, fake_llm, celery_worker_thread, inference_agent):
    from decimal import Decimal

    fake_llm.default = ChatReply(content="x", cost=0.25)
    dag = DagFactory(result=decomposer_job(2), planning_total_cost_usd=Decimal("0.5"))
    execution_id = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json").json()[
        "executionId"
    ]
    wait_status(execution_id, "completed")

    costs = api.get(f"/api/v1/dag-executions/{execution_id}/costs").json()
    assert costs["totals"] == {
        "planningCostUsd": "0.5",
        "executionCostUsd": "0.75",
        "grandTotalCostUsd": "1.25",
    }
    assert [s["taskId"] for s in costs["execution"]["subSteps"]] == ["001", "002"]
    assert costs["execution"]["synthesis"]["costUsd"] == "0.25"
    dag_costs = api.get(f"/api/v1/dags/{dag.id}/costs").json()
    assert dag_costs["totals"]["grandTotalCostUsd"] == "1.25"
    assert dag_costs["executions"][0]["executionId"] == execution_id
    summary = api.get("/api/v1/costs/summary?from=7d&groupBy=month").json()
    assert summary["totals"]["executionCostUsd"] == "0.75"
    assert summary["dateRange"]["groupBy"] == "month"
    assert api.get("/api/v1/costs/summary?from=yesterday").status_code == 400
    assert api.get("/api/v1/costs/summary?groupBy=year").status_code == 400
    assert api.get("/api/v1/dag-executions/nope/costs").status_code == 404


def test_an_agent_version_activated_mid_chain_is_used_by_the_very_next_node(
    api, fake_llm, celery_worker_thread, inference_agent
):
    """The worker keeps agents between nodes (agents/cache.py): an activation that commits while
    a node waits on its LLM call is seen by the node after it, which runs on the same thread."""
    from django.db import connection

    from agents.services import agent_activate

    newer = AgentFactory(
        name="InferenceAgent", version="2", prompt_template="You are newer.", active=False
    )

    def reply(request: dict) -> ChatReply:
        if "Current Task [001/3]" in user_text(request):
            try:
                agent_activate(agent=newer)  # from another process's point of view: committed
            finally:
                connection.close()
        return ChatReply(content="done")

    fake_llm.responder = reply
    dag = DagFactory(result=decomposer_job(3))

    execution_id = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json").json()[
        "executionId"
    ]

    assert wait_status(execution_id, "completed", "suspended").status == "completed"
    systems = {
        task: next(
            r["messages"][0]["content"]
            for r in fake_llm.requests
            if f"Current Task [{task}/3]" in user_text(r)
        )
        for task in ("001", "002", "003")
    }
    assert systems == {"001": "You are careful.", "002": "You are newer.", "003": "You are newer."}
    # The three nodes ran in place, one after the other, on one worker thread.
    steps = SubStep.objects.filter(execution_id=execution_id).exclude(task_id="__SYNTHESIS__")
    assert all(step.queue_task_id is None for step in steps if step.task_id != "001")


def test_a_wide_fan_out_delivered_twice_runs_each_node_once(
    api, fake_llm, celery_worker_thread, inference_agent
):
    """A fan-out goes to the worker in a few messages of several nodes, each claimed in one
    transaction: with every such message delivered twice and every node's own message sent
    too, each node still runs once, starts once, and the execution's events stay numbered
    without gaps or repeats."""
    from celery.signals import before_task_publish

    from dags.tasks import run_sub_step, run_sub_steps

    published: list[tuple[str, list]] = []

    def record(sender=None, body=None, **kwargs) -> None:
        published.append((sender, list(body[0])))

    fake_llm.default = ChatReply(content="done", delay=0.05)
    width = 20
    tasks = [inference_task(f"{i:03d}", f"part {i}") for i in range(1, width + 1)]
    dag = DagFactory(result=decomposer_job(0, sub_tasks=tasks))

    before_task_publish.connect(record)
    try:
        execution_id = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json").json()[
            "executionId"
        ]
        after_response.wait_idle(10)  # the nodes are sent once the answer is
    finally:
        before_task_publish.disconnect(record)
    waves = [args for name, args in published if name == "dags.run_sub_steps"]
    assert [len(ids) for _execution_id, ids in waves] == [10, 10]
    assert not [args for name, args in published if name == "dags.run_sub_step"]
    for wave_execution_id, ids in waves:
        assert wave_execution_id == execution_id
        run_sub_steps.delay(wave_execution_id, ids)  # the same message again
    for node_id in SubStep.objects.filter(execution_id=execution_id).values_list("id", flat=True):
        run_sub_step.delay(node_id)  # and a message of its own for every node

    execution = wait_status(execution_id, "completed", "suspended")
    assert execution.status == "completed"
    assert fake_llm.call_count == width + 1  # each part once, then the synthesis
    steps = SubStep.objects.filter(execution=execution)
    assert sorted(steps.values_list("attempts", flat=True)) == [1] * (width + 1)
    events = list(ExecutionEvent.objects.filter(execution=execution).order_by("seq"))
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert execution.last_event_seq == len(events)
    started = [event.payload.get("taskId") for event in events if event.type == "substep.started"]
    assert len(started) == len(set(started)) == width + 1
