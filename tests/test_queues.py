"""Work kinds travel on named queues: a worker that serves only DAG nodes runs a whole DAG while
a goal run waits for a worker of the `runs` queue, which then runs it."""

from __future__ import annotations

import pytest

from dags.models import DagExecution
from runs.models import Run
from tests.factories import AgentFactory, DagFactory, GoalFactory, decomposer_job
from tests.fakes.openai_server import ChatReply
from tests.processes import wait_for, wait_for_workers, worker_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(180)]


def stop(process) -> None:
    process.terminate()
    try:
        process.wait(15)
    except Exception:
        process.kill()
        process.wait(10)


def test_a_nodes_worker_runs_dags_but_leaves_goal_runs_to_a_runs_worker(api, fake_llm, settings):
    AgentFactory(name="InferenceAgent", active=True)
    AgentFactory(name="defaultAgent", active=True)
    fake_llm.responder = lambda request: ChatReply(content="done")
    goal = GoalFactory(params={"allowedTools": []})
    dag = DagFactory(result=decomposer_job(3))
    workers = [worker_process(fake_llm, queues=["nodes"])]
    try:
        wait_for_workers(1)
        run_id = api.post(f"/api/v1/goals/{goal.id}/run", {}, format="json").json()["runId"]
        execution_id = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json").json()[
            "executionId"
        ]

        wait_for(
            lambda: DagExecution.objects.filter(pk=execution_id, status="completed").exists(),
            timeout=60,
            message="the DAG completed on the nodes worker",
        )
        assert Run.objects.get(pk=run_id).status == "pending"

        workers.append(worker_process(fake_llm, queues=["runs"]))
        wait_for(
            lambda: Run.objects.filter(pk=run_id, status="completed").exists(),
            timeout=60,
            message="the goal run completed on the runs worker",
        )
    finally:
        for process in workers:
            stop(process)
