"""Starting an execution of a stored DAG: what the answer costs, and that an execution committed
but never sent (the web process died right after answering) is still run."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dags.execution import services
from dags.models import DagExecution, ExecutionEvent, SubStep
from dags.planning.views import EXECUTING_MESSAGE
from dags.tests.planning_helpers import body, good_plan, planner_agents, reply
from tests.factories import AgentFactory, DagFactory, decomposer_job
from tests.fakes.openai_server import ChatReply
from tests.processes import wait_for_workers, worker_process
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# Token lookup, DAG read; one transaction: BEGIN, execution, sub-steps, started event, COMMIT.
ANSWER_STATEMENTS = 7
# A client's next start: its token's lookup comes from the token cache.
NEXT_ANSWER_STATEMENTS = 6


def fan_out(width: int) -> dict:
    job = decomposer_job(width)
    for task in job["sub_tasks"]:
        task["dependencies"] = ["none"]
    return job


@pytest.mark.parametrize("route", ["/api/v1/execute-dag", "/api/v1/dag-run"])
def test_start_answers_from_one_transaction_and_sends_after_the_answer(api, route, settings):
    settings.EXECUTION_MAX_PARALLEL_NODES = 2
    AgentFactory(name="InferenceAgent", active=True)
    dag = DagFactory(result=fan_out(3))

    with CaptureQueriesContext(connection) as queries:
        response = api.post(route, {"dagId": dag.id}, format="json")

    assert response.status_code == 202, response.content
    body = response.json()
    execution = DagExecution.objects.get(pk=body["executionId"])
    assert body == {
        "status": "started",
        "executionId": execution.id,
        "dagId": dag.id,
        "originalRequest": execution.original_request,
        "totalTasks": 3,
        "message": "DAG execution started. Connect to SSE stream for live updates.",
    }
    assert len(queries) <= ANSWER_STATEMENTS, [q["sql"] for q in queries.captured_queries]
    assert not any(q["sql"].startswith("UPDATE") for q in queries.captured_queries)
    assert (execution.status, execution.last_event_seq) == ("running", 1)
    assert execution.started_at is not None
    started = ExecutionEvent.objects.get(execution=execution)
    assert (started.seq, started.type) == (1, "execution.started")
    assert started.payload["totalTasks"] == 3
    # After the answer: the first two roots (the cap) handed to the queue, the third held back.
    wait_for(
        lambda: (
            SubStep.objects.filter(execution=execution, dispatched_at__isnull=False).count() == 2
        ),
        message="the roots handed to the queue after the answer",
    )
    assert list(
        SubStep.objects.filter(execution=execution, dispatched_at__isnull=False)
        .order_by("task_id")
        .values_list("task_id", flat=True)
    ) == ["001", "002"]


def test_a_clients_next_start_reads_only_the_dag_before_its_transaction(api):
    AgentFactory(name="InferenceAgent", active=True)
    dag = DagFactory(result=fan_out(2), planning_attempts=[{"raw": "x" * 10_000}])
    assert api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json").status_code == 202

    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json")

    assert response.status_code == 202, response.content
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) <= NEXT_ANSWER_STATEMENTS, statements
    assert not any("authtoken" in sql for sql in statements)
    assert "planning_attempts" not in statements[0]  # the plan, not the planning record


def test_a_start_committed_but_never_sent_is_run_by_the_dispatcher(fake_llm):
    """The web process dies right after answering: its nodes were never sent. A worker's
    dispatcher finds them (running execution, ready nodes without a message) and runs them."""
    AgentFactory(name="InferenceAgent", active=True)
    dag = DagFactory(result=fan_out(2))
    fake_llm.responder = lambda request: ChatReply(content="done")

    # Launched on a request thread that ends before its response is finished: the hand-over
    # it left for after the answer never runs, as when the process dies at that moment.
    launched = []
    request_thread = threading.Thread(
        target=lambda: launched.append(services.execution_launch(dag=dag, send_after_response=True))
    )
    request_thread.start()
    request_thread.join(30)
    execution = launched[0]

    assert DagExecution.objects.get(pk=execution.id).status == "running"
    assert list(
        SubStep.objects.filter(execution=execution)
        .order_by("task_id")
        .values_list("status", "dispatched_at")
    ) == [("pending", None), ("pending", None)]

    worker = worker_process(fake_llm)
    try:
        wait_for_workers(1)
        wait_for(
            lambda: DagExecution.objects.filter(pk=execution.id, status="completed").exists(),
            timeout=60,
            message="the dispatcher running the execution that was never sent",
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert fake_llm.call_count == 3  # two roots and the synthesis, each once
    assert list(SubStep.objects.filter(execution=execution).values_list("attempts", flat=True)) == [
        1,
        1,
        1,
    ]


def test_create_and_execute_answers_before_sending_its_nodes(api, fake_llm):
    """create-and-execute-dag starts its execution as execute-dag does: the answer's
    transaction marks nothing as sent; the nodes are handed to the queue after it."""
    planner_agents(title=True)
    fake_llm.enqueue(reply(good_plan()))
    fake_llm.enqueue(ChatReply(content="A title"))

    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/v1/create-and-execute-dag", body(), format="json")

    assert response.status_code == 202, response.content
    data = response.json()
    assert data["message"] == EXECUTING_MESSAGE  # the queue was not found away: no note
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert not any("sub_steps" in sql for sql in updates), updates
    wait_for(
        lambda: SubStep.objects.filter(
            execution_id=data["executionId"], dispatched_at__isnull=False
        ).exists(),
        message="the roots handed to the queue after the answer",
    )
