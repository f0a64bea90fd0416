"""A worker killed with SIGKILL mid-node loses nothing: a new worker finishes the execution and
every node completes exactly once (SPEC D18)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from dags.models import DagExecution, ExecutionEvent, SubStep
from tests.factories import AgentFactory, DagFactory, decomposer_job
from tests.fakes.openai_server import ChatReply
from tests.processes import wait_for, worker_process

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def start_worker(fake_llm) -> subprocess.Popen:
    return worker_process(fake_llm, {"NODE_LEASE_SECONDS": "2", "NODE_HEARTBEAT_SECONDS": "0.5"})


def test_sigkilled_worker_is_recovered_and_each_node_completes_once(api, fake_llm):
    AgentFactory(name="InferenceAgent", active=True)
    slow = {"on": True}

    def reply(request: dict) -> ChatReply:
        text = request["messages"][-1]["content"]
        if "Current Task [002/3]" in text and slow["on"]:
            return ChatReply(content="never delivered", delay=30)
        return ChatReply(content=f"done {len(text)}")

    fake_llm.responder = reply
    dag = DagFactory(result=decomposer_job(3))
    first = start_worker(fake_llm)
    second = None
    try:
        execution_id = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json").json()[
            "executionId"
        ]
        wait_for(
            lambda: any(
                "Current Task [002/3]" in r["messages"][-1]["content"] for r in fake_llm.requests
            ),
            message="node 002 running on the first worker",
        )
        assert SubStep.objects.get(execution_id=execution_id, task_id="002").status == "running"

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        slow["on"] = False
        second = start_worker(fake_llm)

        wait_for(
            lambda: DagExecution.objects.filter(pk=execution_id, status="completed").exists(),
            message="execution completed by the second worker",
        )
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=15)

    steps = {s.task_id: s for s in SubStep.objects.filter(execution_id=execution_id)}
    assert {task: step.status for task, step in steps.items()} == {
        "001": "completed",
        "002": "completed",
        "003": "completed",
        "__SYNTHESIS__": "completed",
    }
    assert steps["002"].attempts == 2
    assert steps["001"].attempts == 1
    completions = list(
        ExecutionEvent.objects.filter(
            execution_id=execution_id, type="substep.completed"
        ).values_list("payload__subStepId", flat=True)
    )
    assert sorted(completions) == ["001", "002", "003", "__SYNTHESIS__"]
    execution = DagExecution.objects.get(pk=execution_id)
    assert execution.completed_tasks == execution.total_tasks == 3
