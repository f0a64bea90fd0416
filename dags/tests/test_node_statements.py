"""How many statements a node costs: the regression guard of the node hot path.

A node of a chain is recorded and its successor taken in one transaction of four statements:
the node's result, the execution's counters and event numbers (one claim that also locks the
row), the successor's claim, and the two events in one INSERT. Its successor's work then reads
only its agent: the plan is read once per process and execution, and the result it depends on
is the one this worker just produced.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.timezone import now

from dags.execution import services, statements
from dags.execution.work import NodeOutcome, run_node_work
from dags.models import DagExecution, ExecutionEvent, SubStep
from tests.factories import AgentFactory, DagFactory, decomposer_job
from tests.fakes.openai_server import ChatReply

pytestmark = pytest.mark.django_db

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def _statements(queries: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"] for q in queries.captured_queries if not q["sql"].startswith(TRANSACTION_CONTROL)
    ]


def _running_chain(length: int) -> DagExecution:
    execution = services.execution_create(dag=DagFactory(result=decomposer_job(length)))
    DagExecution.objects.filter(pk=execution.pk).update(status="running", started_at=now())
    return execution


def test_a_chain_node_is_recorded_and_its_successor_taken_in_four_statements():
    execution = _running_chain(3)
    first = services.sub_step_claim(
        sub_step_id=SubStep.objects.get(execution=execution, task_id="001").id
    )
    assert first is not None
    outcome = NodeOutcome(
        result="done",
        usage={"promptTokens": 10, "completionTokens": 5, "totalTokens": 15},
        cost_usd=Decimal("0.001"),
    )

    with CaptureQueriesContext(connection) as queries:
        following = services.sub_step_complete(sub_step=first, outcome=outcome)

    assert len(_statements(queries)) == 4, "\n".join(_statements(queries))
    assert following is not None and following.task_id == "002"
    stored = SubStep.objects.get(pk=following.pk)
    assert (stored.status, stored.remaining_dependencies, stored.attempts) == ("running", 0, 1)
    assert stored.dispatched_at is not None and stored.queue_task_id is None
    assert SubStep.objects.get(pk=first.pk).result == "done"
    execution.refresh_from_db()
    assert execution.completed_tasks == 1
    events = list(
        ExecutionEvent.objects.filter(execution=execution)
        .order_by("seq")
        .values_list("seq", "type")
    )
    assert events == [(1, "substep.started"), (2, "substep.completed"), (3, "substep.started")]
    assert execution.last_event_seq == 3


def test_a_dependant_that_waits_on_another_node_is_not_taken():
    job = decomposer_job(3)
    job["sub_tasks"][2]["dependencies"] = ["001", "002"]  # 003 waits on both
    job["sub_tasks"][1]["dependencies"] = ["none"]
    execution = services.execution_create(dag=DagFactory(result=job))
    DagExecution.objects.filter(pk=execution.pk).update(status="running", started_at=now())
    first = services.sub_step_claim(
        sub_step_id=SubStep.objects.get(execution=execution, task_id="001").id
    )
    assert first is not None

    following = services.sub_step_complete(sub_step=first, outcome=NodeOutcome(result="a"))

    assert following is not None and following.task_id == "002"  # the one ready node

    waiting = SubStep.objects.get(execution=execution, task_id="003")
    assert (waiting.status, waiting.remaining_dependencies) == ("pending", 1)
    execution.refresh_from_db()
    seqs = list(ExecutionEvent.objects.filter(execution=execution).values_list("seq", flat=True))
    assert sorted(seqs) == list(range(1, execution.last_event_seq + 1))  # no number lost


def test_the_successor_reads_only_its_agent(fake_llm):
    AgentFactory(name="InferenceAgent", prompt_template="Careful.", active=True)
    fake_llm.default = ChatReply(content="next")
    execution = _running_chain(2)
    statements.execution_plan(execution.id)  # read once per process and execution
    second = SubStep.objects.get(execution=execution, task_id="002")

    with CaptureQueriesContext(connection) as queries:
        outcome = run_node_work(second, known_results={"001": "first result"})

    assert outcome.result == "next"
    assert len(_statements(queries)) == 1  # the active agent
    assert "first result" in fake_llm.requests[-1]["messages"][-1]["content"]
