"""The broker going away loses no work: the suite's Redis (no persistence, the worst case) is
killed and started again on the same port while real worker processes run DAGs.
The database says what is ready, and the workers' dispatchers send it again; every node's
effect happens exactly once (LLM calls counted on the scripted server, webhook hits on a local
HTTP server)."""

from __future__ import annotations

import logging
import subprocess
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from dags.execution import dispatch
from dags.models import DagExecution, SubStep
from tests import bootstrap
from tests.bootstrap import PrivateRedis
from tests.factories import AgentFactory, DagFactory, decomposer_job
from tests.fakes.http import Reply
from tests.fakes.openai_server import ChatReply
from tests.processes import wait_for_workers, worker_process
from tests.waiting import wait_for
from tools.webhooks import IDEMPOTENCY_HEADER, idempotency_key

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.timeout(180),
]
logger = logging.getLogger(__name__)

# Redis back -> execution completed, with the default dispatcher interval (2 s), including the
# worker's reconnection to the broker.
RESUME_DEADLINE_SECONDS = 15.0


@pytest.fixture
def outage_redis() -> Iterator[PrivateRedis]:
    """The suite's private Redis, which the test may kill and start again (empty).

    It is the broker of this process (where the API runs) and of the workers the test starts.
    A Redis of the test's own would need this process's Celery app pointed at it, and Celery
    has no public way to move an app's cached producer pool to another broker.
    """
    if bootstrap.private_redis is None:
        pytest.skip("the tests run against an external Redis (TEST_REDIS_URL)")
    redis_server = bootstrap.private_redis
    try:
        yield redis_server
    finally:
        if redis_server.process is None:
            redis_server.start()


def start_workers(fake_llm, count: int = 1) -> list[subprocess.Popen]:
    return [worker_process(fake_llm, {"TOOLS_ALLOWED_HOSTS": "127.0.0.1"}) for _ in range(count)]


def stop_all(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def task_of(request: dict) -> str:
    text = request["messages"][-1]["content"]
    for line in text.splitlines():
        if "Current Task [" in line:
            return line.split("[", 1)[1].split("/", 1)[0]
    return "synthesis"


def fan_out_job() -> dict:
    """001 (inference) -> 002, 003 (webhooks) and 004 (inference), all at once."""
    job = decomposer_job(4)
    tasks = job["sub_tasks"]
    for task_id, task in zip(("002", "003"), tasks[1:3], strict=True):
        task["action_type"] = "tool"
        task["tool_or_prompt"] = {
            "name": "sendWebhook",
            "params": {"url": "URL", "payload": {"task": task_id}},
        }
    for task in tasks[1:]:
        task["dependencies"] = ["001"]
    return job


def test_redis_killed_mid_fan_out_each_node_runs_once_after_it_returns(
    api, fake_llm, http_server, outage_redis
):
    AgentFactory(name="InferenceAgent", active=True)
    http_server.route("POST", "*", Reply(200, {"ok": True}))
    job = fan_out_job()
    for task in job["sub_tasks"][1:3]:
        task["tool_or_prompt"]["params"]["url"] = http_server.url(f"/hook/{task['id']}")
    dag = DagFactory(result=job)

    def reply(request: dict) -> ChatReply:
        # The root takes long enough for the broker to be killed while it runs.
        return ChatReply(content="root", delay=3) if task_of(request) == "001" else ChatReply()

    fake_llm.responder = reply
    workers = start_workers(fake_llm)
    try:
        wait_for_workers(1)
        response = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json")
        assert response.status_code == 202
        execution_id = response.json()["executionId"]
        wait_for(lambda: fake_llm.call_count >= 1, message="the root node calling the model")

        outage_redis.kill()
        # The root finishes while the broker is down: its three successors cannot be sent, and
        # the database says so (ready, no message), instead of claiming they were queued.
        wait_for(
            lambda: (
                SubStep.objects.filter(
                    execution_id=execution_id,
                    task_id__in=["002", "003", "004"],
                    status="pending",
                    remaining_dependencies=0,
                    dispatched_at__isnull=True,
                ).count()
                == 3
            ),
            timeout=20,
            message="the successors waiting, unsent, in the database",
        )
        time.sleep(2)  # the broker stays away for a while; nothing may run meanwhile
        assert fake_llm.call_count == 1
        assert http_server.requests == []

        outage_redis.start()
        back = time.monotonic()
        wait_for(
            lambda: DagExecution.objects.filter(pk=execution_id, status="completed").exists(),
            timeout=RESUME_DEADLINE_SECONDS,
            message=f"the execution completing within {RESUME_DEADLINE_SECONDS} s of Redis",
        )
        resumed_in = time.monotonic() - back
        logger.warning("fan-out: Redis back -> execution completed in %.1f s", resumed_in)
    finally:
        stop_all(workers)

    assert Counter(task_of(r) for r in fake_llm.requests) == {
        "001": 1,
        "004": 1,
        "synthesis": 1,
    }
    assert sorted(r.path for r in http_server.requests) == ["/hook/002", "/hook/003"]
    for hit in http_server.requests:
        task_id = hit.path.rsplit("/", 1)[1]
        assert hit.headers[IDEMPOTENCY_HEADER] == idempotency_key("dag-task", execution_id, task_id)
    steps = SubStep.objects.filter(execution_id=execution_id)
    assert {step.task_id: step.attempts for step in steps} == {
        "001": 1,
        "002": 1,
        "003": 1,
        "004": 1,
        "__SYNTHESIS__": 1,
    }


def test_redis_restarted_empty_mid_chain_loses_no_node(api, fake_llm, outage_redis):
    """A chain runs on a one-thread worker; a second execution's first node waits in the queue
    behind it. Redis is killed and started again empty while the chain's middle node runs: the
    chain goes on, and the dispatcher notices that the broker lost its data and sends the
    waiting node again."""
    AgentFactory(name="InferenceAgent", active=True)
    chain, other = DagFactory(result=decomposer_job(3)), DagFactory(result=decomposer_job(1))

    def reply(request: dict) -> ChatReply:
        slow = "Current Task [002/3]" in request["messages"][-1]["content"]
        return ChatReply(content="done", delay=4 if slow else 0)

    fake_llm.responder = reply
    worker = worker_process(fake_llm, concurrency=1)
    try:
        wait_for_workers(1)
        response = api.post("/api/v1/execute-dag", {"dagId": chain.id}, format="json")
        chain_id = response.json()["executionId"]
        wait_for(
            lambda: any(task_of(r) == "002" for r in fake_llm.requests),
            message="the chain's slow middle node running",
        )
        response = api.post("/api/v1/execute-dag", {"dagId": other.id}, format="json")
        other_id = response.json()["executionId"]
        assert "unreachable" not in response.json()["message"]  # it was queued
        outage_redis.kill()
        outage_redis.start()  # empty: the queued message is gone
        back = time.monotonic()
        wait_for(
            lambda: (
                DagExecution.objects.filter(pk__in=[chain_id, other_id], status="completed").count()
                == 2
            ),
            timeout=RESUME_DEADLINE_SECONDS,
            message="both executions completing",
        )
        logger.warning("chain: Redis back -> both completed in %.1f s", time.monotonic() - back)
    finally:
        stop_all([worker])
    # 3 nodes and a synthesis, 1 node and a synthesis: each called the model once
    assert fake_llm.call_count == 6

    attempts = SubStep.objects.filter(execution_id__in=[chain_id, other_id]).values_list(
        "attempts", flat=True
    )
    assert list(attempts) == [1] * 6


def test_execute_dag_while_redis_is_down_answers_202_and_runs_when_it_is_back(
    api, fake_llm, outage_redis
):
    AgentFactory(name="InferenceAgent", active=True)
    dag = DagFactory(result=decomposer_job(2))
    fake_llm.responder = lambda request: ChatReply(content="done")
    worker = worker_process(fake_llm)
    try:
        wait_for_workers(1)
        outage_redis.kill()
        # The first start after the outage began answers at once and sends its node after the
        # answer; that send fails, leaving the node stored, ready and unsent.
        first = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json")
        assert first.status_code == 202, first.content
        first_id = first.json()["executionId"]
        wait_for(dispatch.broker_seems_away, message="the send after the answer finding Redis away")
        # From then on this process sends before answering, and says the queue is away.
        started = time.monotonic()
        response = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json")
        answered_in = time.monotonic() - started
        assert response.status_code == 202, response.content
        body = response.json()
        assert "task queue is unreachable" in body["message"]
        assert answered_in < 5  # the request does not hang on the missing broker
        for execution_id in (first_id, body["executionId"]):
            execution = DagExecution.objects.get(pk=execution_id)
            assert execution.status == "running"
            root = SubStep.objects.get(execution=execution, task_id="001")
            assert (root.status, root.dispatched_at) == ("pending", None)

        time.sleep(2)
        assert fake_llm.call_count == 0
        outage_redis.start()
        back = time.monotonic()
        wait_for(
            lambda: (
                DagExecution.objects.filter(
                    pk__in=[first_id, execution.pk], status="completed"
                ).count()
                == 2
            ),
            timeout=RESUME_DEADLINE_SECONDS,
            message="both executions completing once Redis is back",
        )
        logger.warning("execute-dag: Redis back -> completed in %.1f s", time.monotonic() - back)

        # Once it is back, this process's pooled broker connections (broken by the restart)
        # are replaced on the first try: the next execution is queued at once.
        again = api.post("/api/v1/execute-dag", {"dagId": dag.id}, format="json").json()
        assert "unreachable" not in again["message"]
        wait_for(
            lambda: DagExecution.objects.filter(
                pk=again["executionId"], status="completed"
            ).exists(),
            timeout=RESUME_DEADLINE_SECONDS,
            message="the next execution completing",
        )
    finally:
        stop_all([worker])
    assert fake_llm.call_count == 9  # three executions of two tasks and a synthesis
