"""How many statements a node costs: the regression guard of the node hot path.

A node of a chain is recorded and its successor taken in one transaction of four statements:
the node's result, the execution's counters and event numbers (one claim that also locks the
row), the successor's claim, and the two events in one INSERT. Its successor's work then reads
nothing: its agent is kept by the worker while no agent changes (agents/cache.py), the plan is
read once per process and execution, and the result it depends on is the one this worker just
produced. A node of a fan-out (no dependants) is recorded in three: it makes nothing ready, so
no ready nodes are looked for; the results of several such nodes that arrive together are
recorded in one transaction (an UPDATE each, plus two). The nodes of a message of several are
claimed in three statements, however many they are. The synthesis completes its execution in
five: its result, the execution's row, the spend, the completion, and both events in one INSERT.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.timezone import now

from config.db import SQLITE_WRITERS
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


def test_a_node_sent_through_the_queue_is_claimed_with_its_event_in_three_statements():
    execution = _running_chain(2)
    node = SubStep.objects.get(execution=execution, task_id="001")

    with CaptureQueriesContext(connection) as queries:
        claimed = services.sub_step_claim(sub_step_id=node.id)

    # The node, the execution's row (its status and the event's number), the event.
    assert len(_statements(queries)) == 3, "\n".join(_statements(queries))
    assert claimed is not None and claimed.task_id == "001"
    stored = SubStep.objects.get(pk=node.pk)
    assert (stored.status, stored.attempts) == ("running", 1)
    assert stored.lease_expires_at is not None
    execution.refresh_from_db()
    assert execution.last_event_seq == 1
    assert list(ExecutionEvent.objects.filter(execution=execution).values_list("seq", "type")) == [
        (1, "substep.started")
    ]
    assert services.sub_step_claim(sub_step_id=node.id) is None  # a duplicate delivery


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", ["suspended", "cancelled", "pending"])
def test_a_node_of_an_execution_that_is_not_running_is_left_as_it_was(status):
    execution = _running_chain(2)
    DagExecution.objects.filter(pk=execution.pk).update(status=status)
    node = SubStep.objects.get(execution=execution, task_id="001")

    assert services.sub_step_claim(sub_step_id=node.id) is None

    stored = SubStep.objects.get(pk=node.pk)
    assert (stored.status, stored.attempts, stored.started_at) == ("pending", 0, None)
    execution.refresh_from_db()
    assert execution.last_event_seq == 0
    assert not ExecutionEvent.objects.filter(execution=execution).exists()
    assert not SQLITE_WRITERS.locked()  # the rolled-back claim let the next writer in
    DagExecution.objects.filter(pk=execution.pk).update(status="running")
    assert services.sub_step_claim(sub_step_id=node.id) is not None


def test_a_node_without_dependants_is_recorded_in_three_statements():
    job = decomposer_job(3)
    for task in job["sub_tasks"]:
        task["dependencies"] = ["none"]
    execution = services.execution_create(dag=DagFactory(result=job))
    DagExecution.objects.filter(pk=execution.pk).update(status="running", started_at=now())
    first = services.sub_step_claim(
        sub_step_id=SubStep.objects.get(execution=execution, task_id="001").id
    )
    assert first is not None

    with CaptureQueriesContext(connection) as queries:
        following = services.sub_step_complete(sub_step=first, outcome=NodeOutcome(result="a"))

    assert len(_statements(queries)) == 3, "\n".join(_statements(queries))
    assert following is None
    assert SubStep.objects.get(pk=first.pk).status == "completed"


def test_the_last_node_of_a_fan_out_still_starts_the_synthesis():
    job = decomposer_job(2)
    for task in job["sub_tasks"]:
        task["dependencies"] = ["none"]
    execution = services.execution_create(dag=DagFactory(result=job))
    DagExecution.objects.filter(pk=execution.pk).update(status="running", started_at=now())
    nodes = [
        services.sub_step_claim(sub_step_id=row.id)
        for row in SubStep.objects.filter(execution=execution).order_by("task_id")
    ]

    assert services.sub_step_complete(sub_step=nodes[0], outcome=NodeOutcome(result="a")) is None
    following = services.sub_step_complete(sub_step=nodes[1], outcome=NodeOutcome(result="b"))

    assert following is not None and following.task_id == "__SYNTHESIS__"


def _claimed_synthesis(length: int = 1) -> SubStep:
    execution = _running_chain(length)
    node = services.sub_step_claim(
        sub_step_id=SubStep.objects.get(execution=execution, task_id="001").id
    )
    assert node is not None
    synthesis = services.sub_step_complete(sub_step=node, outcome=NodeOutcome(result="a"))
    assert synthesis is not None and synthesis.task_id == "__SYNTHESIS__"
    return synthesis


def test_the_synthesis_completes_its_execution_in_five_statements():
    # Its result, the execution's row (both events' numbers), the spend, the completion, and
    # both events in one INSERT.
    synthesis = _claimed_synthesis()
    before = DagExecution.objects.get(pk=synthesis.execution_id).last_event_seq

    with CaptureQueriesContext(connection) as queries:
        services.sub_step_complete(
            sub_step=synthesis, outcome=NodeOutcome(result="report", cost_usd=Decimal("0.5"))
        )

    assert len(_statements(queries)) == 5, "\n".join(_statements(queries))
    execution = DagExecution.objects.get(pk=synthesis.execution_id)
    assert (execution.status, execution.final_result) == ("completed", "report")
    assert execution.total_cost_usd == Decimal("0.5")
    events = list(
        ExecutionEvent.objects.filter(execution=execution)
        .order_by("seq")
        .values_list("seq", "type", "payload")
    )
    assert [(seq, kind) for seq, kind, _payload in events][-2:] == [
        (before + 1, "substep.completed"),
        (before + 2, "execution.completed"),
    ]
    assert events[-1][2]["finalResult"] == "report"
    assert events[-1][2]["completedTasks"] == 1
    assert execution.last_event_seq == before + 2


def test_a_synthesis_finishing_after_a_cancel_records_its_result_but_completes_nothing():
    synthesis = _claimed_synthesis()
    before = DagExecution.objects.get(pk=synthesis.execution_id).last_event_seq
    DagExecution.objects.filter(pk=synthesis.execution_id).update(status="cancelled")

    services.sub_step_complete(sub_step=synthesis, outcome=NodeOutcome(result="late"))

    execution = DagExecution.objects.get(pk=synthesis.execution_id)
    assert (execution.status, execution.final_result) == ("cancelled", None)
    types = list(
        ExecutionEvent.objects.filter(execution=execution)
        .order_by("seq")
        .values_list("seq", "type")
    )
    assert types[-1] == (before + 1, "substep.completed")  # no number taken and left unused
    assert execution.last_event_seq == before + 1


def test_a_node_of_a_fan_out_wider_than_the_cap_sends_the_next_one(settings):
    settings.EXECUTION_MAX_PARALLEL_NODES = 2
    job = decomposer_job(3)
    for task in job["sub_tasks"]:
        task["dependencies"] = ["none"]
    execution = services.execution_create(dag=DagFactory(result=job))
    DagExecution.objects.filter(pk=execution.pk).update(status="running", started_at=now())
    first, _second = (
        services.sub_step_claim(sub_step_id=row.id)
        for row in SubStep.objects.filter(execution=execution, task_id__in=["001", "002"]).order_by(
            "task_id"
        )
    )
    assert first is not None

    following = services.sub_step_complete(sub_step=first, outcome=NodeOutcome(result="a"))

    assert following is not None and following.task_id == "003"  # held back by the cap


def test_the_successor_reads_only_its_agent(fake_llm):
    AgentFactory(name="InferenceAgent", prompt_template="Careful.", active=True)
    fake_llm.default = ChatReply(content="next")
    execution = _running_chain(2)
    statements.execution_plan(execution.id)  # read once per process and execution
    second = SubStep.objects.get(execution=execution, task_id="002")

    with CaptureQueriesContext(connection) as queries:
        outcome = run_node_work(second, known_results={"001": "first result"})

    assert outcome.result == "next"
    assert len(_statements(queries)) == 1  # the active agent (nothing is kept in a transaction)
    assert "first result" in fake_llm.requests[-1]["messages"][-1]["content"]


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_ran_a_node_runs_the_next_one_without_a_statement(fake_llm):
    """Outside a transaction, as a worker runs a node's work, the agent is kept."""
    AgentFactory(name="InferenceAgent", prompt_template="Careful.", active=True)
    fake_llm.default = ChatReply(content="next")
    execution = _running_chain(3)
    second, third = SubStep.objects.filter(
        execution=execution, task_id__in=["002", "003"]
    ).order_by("task_id")
    run_node_work(second, known_results={"001": "first result"})

    with CaptureQueriesContext(connection) as queries:
        outcome = run_node_work(third, known_results={"002": "second result"})

    assert outcome.result == "next"
    assert _statements(queries) == []
    assert fake_llm.requests[-1]["messages"][0]["content"] == "Careful."


def _running_fan_out(width: int) -> DagExecution:
    job = decomposer_job(width)
    for task in job["sub_tasks"]:
        task["dependencies"] = ["none"]
    execution = services.execution_create(dag=DagFactory(result=job))
    DagExecution.objects.filter(pk=execution.pk).update(status="running", started_at=now())
    return execution


def test_the_nodes_of_one_message_are_claimed_with_their_events_in_three_statements():
    execution = _running_fan_out(10)
    ids = list(SubStep.objects.filter(execution=execution).values_list("id", flat=True))

    with CaptureQueriesContext(connection) as queries:
        claimed = services.sub_steps_claim(execution_id=execution.id, sub_step_ids=ids)

    # As for one node: the nodes, the execution's row (status, event numbers), the events.
    assert len(_statements(queries)) == 3, "\n".join(_statements(queries))
    assert [node.task_id for node in claimed] == [f"{i:03d}" for i in range(1, 11)]
    assert set(SubStep.objects.filter(execution=execution).values_list("status", "attempts")) == {
        ("running", 1)
    }
    events = list(
        ExecutionEvent.objects.filter(execution=execution)
        .order_by("seq")
        .values_list("seq", "type", "payload__subStepId")
    )
    assert events == [(i, "substep.started", f"{i:03d}") for i in range(1, 11)]
    assert services.sub_steps_claim(execution_id=execution.id, sub_step_ids=ids) == []


def test_a_message_takes_only_its_own_executions_free_nodes():
    execution = _running_fan_out(3)
    other = _running_fan_out(1)
    first, second, third = SubStep.objects.filter(execution=execution).order_by("task_id")
    assert services.sub_step_claim(sub_step_id=second.id) is not None  # a worker has it
    foreign = SubStep.objects.get(execution=other)

    claimed = services.sub_steps_claim(
        execution_id=execution.id, sub_step_ids=[first.id, second.id, third.id, foreign.id]
    )

    assert [node.task_id for node in claimed] == ["001", "003"]
    assert SubStep.objects.get(pk=second.pk).attempts == 1  # not taken twice
    assert SubStep.objects.get(pk=foreign.pk).status == "pending"
    execution.refresh_from_db()
    assert execution.last_event_seq == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", ["suspended", "cancelled"])
def test_the_nodes_of_a_message_for_a_stopped_execution_are_left_as_they_were(status):
    execution = _running_fan_out(3)
    DagExecution.objects.filter(pk=execution.pk).update(status=status)
    ids = list(SubStep.objects.filter(execution=execution).values_list("id", flat=True))

    assert services.sub_steps_claim(execution_id=execution.id, sub_step_ids=ids) == []

    assert set(SubStep.objects.filter(execution=execution).values_list("status", "attempts")) == {
        ("pending", 0)
    }
    assert not ExecutionEvent.objects.filter(execution=execution).exists()
    assert not SQLITE_WRITERS.locked()


def _claimed_fan_out(width: int) -> tuple[DagExecution, list[SubStep]]:
    execution = _running_fan_out(width)
    ids = list(SubStep.objects.filter(execution=execution).values_list("id", flat=True))
    return execution, services.sub_steps_claim(execution_id=execution.id, sub_step_ids=ids)


def test_results_of_fan_out_nodes_arriving_together_are_recorded_in_one_transaction():
    execution, nodes = _claimed_fan_out(6)
    results = [
        services.NodeResult(node, NodeOutcome(result=f"r{node.task_id}")) for node in nodes[:5]
    ]

    with CaptureQueriesContext(connection) as queries:
        following = services.leaf_nodes_complete(results)

    # One UPDATE per node, then the execution's row and the events: 7 statements, not 15.
    assert len(_statements(queries)) == 7, "\n".join(_statements(queries))
    assert following == [None] * 5
    execution.refresh_from_db()
    assert execution.completed_tasks == 5
    completed = list(
        ExecutionEvent.objects.filter(execution=execution, type="substep.completed")
        .order_by("seq")
        .values_list("seq", "payload__subStepId", "payload__result")
    )
    assert completed == [(6 + i, f"{i:03d}", f"r{i:03d}") for i in range(1, 6)]
    assert execution.last_event_seq == 11


def test_the_last_results_of_a_fan_out_start_the_synthesis_for_the_last_ones_thread():
    execution, nodes = _claimed_fan_out(3)
    services.sub_step_complete(sub_step=nodes[0], outcome=NodeOutcome(result="a"))

    following = services.leaf_nodes_complete(
        [services.NodeResult(node, NodeOutcome(result="x")) for node in nodes[1:]]
    )

    assert following[0] is None
    assert following[1] is not None and following[1].task_id == "__SYNTHESIS__"
    synthesis = SubStep.objects.get(execution=execution, task_id="__SYNTHESIS__")
    assert (synthesis.status, synthesis.queue_task_id) == ("running", None)
    types = list(
        ExecutionEvent.objects.filter(execution=execution).order_by("seq").values_list("type")
    )
    assert types[-3:] == [("substep.completed",), ("substep.completed",), ("substep.started",)]


@pytest.mark.django_db(transaction=True)
def test_results_of_several_executions_and_of_a_stopped_one_are_recorded_each_on_its_own(
    monkeypatch,
):
    from dags.execution import dispatch

    sent: list[str] = []
    monkeypatch.setattr(
        dispatch,
        "nodes_send",
        lambda execution_id, messages: sent.extend(i for _t, ids in messages for i in ids),
    )
    running, running_nodes = _claimed_fan_out(2)
    stopped, stopped_nodes = _claimed_fan_out(2)
    DagExecution.objects.filter(pk=stopped.pk).update(status="cancelled")
    batch = [
        services.NodeResult(running_nodes[0], NodeOutcome(result="a"), keep_next=False),
        services.NodeResult(stopped_nodes[0], NodeOutcome(result="b")),
        services.NodeResult(running_nodes[1], NodeOutcome(result="c"), keep_next=False),
        services.NodeResult(stopped_nodes[1], NodeOutcome(result="d")),
    ]

    assert services.leaf_nodes_complete(batch) == [None] * 4

    running.refresh_from_db()
    stopped.refresh_from_db()
    assert (running.completed_tasks, running.last_event_seq) == (2, 4)
    assert (stopped.status, stopped.completed_tasks, stopped.last_event_seq) == ("cancelled", 2, 4)
    # The running one's synthesis is due; a worker that is stopping sends it on.
    synthesis = SubStep.objects.get(execution=running, task_id="__SYNTHESIS__")
    assert sent == [synthesis.id]
    assert not SubStep.objects.filter(execution=stopped, task_id="__SYNTHESIS__").exists()
    assert set(SubStep.objects.filter(execution=stopped).values_list("status", flat=True)) == {
        "completed"
    }


@pytest.mark.django_db(transaction=True)
def test_results_recorded_by_many_threads_at_once_are_each_counted_once(monkeypatch):
    import threading

    from dags.execution import dispatch

    monkeypatch.setattr(dispatch, "nodes_send", lambda execution_id, messages: 0)
    execution, nodes = _claimed_fan_out(12)
    start = threading.Barrier(len(nodes))
    following: list[SubStep | None] = []

    def complete(node: SubStep) -> None:
        try:
            start.wait(10)
            following.append(
                services.sub_step_complete(
                    sub_step=node, outcome=NodeOutcome(result=node.task_id), keep_next=True
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=complete, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(following) == 12
    assert [node.task_id for node in following if node is not None] == ["__SYNTHESIS__"]
    execution.refresh_from_db()
    assert execution.completed_tasks == 12
    seqs = list(
        ExecutionEvent.objects.filter(execution=execution).order_by("seq").values_list("seq")
    )
    assert [seq for (seq,) in seqs] == list(range(1, execution.last_event_seq + 1))
    assert (
        ExecutionEvent.objects.filter(execution=execution, type="substep.completed").count() == 12
    )


@pytest.mark.django_db(transaction=True)
def test_results_arriving_while_one_is_recorded_are_recorded_together_by_the_next():
    import threading
    import time

    execution, nodes = _claimed_fan_out(6)
    threads = [
        threading.Thread(
            target=lambda node=node: (
                services.sub_step_complete(sub_step=node, outcome=NodeOutcome(result="r")),
                connection.close(),
            )
        )
        for node in nodes[:5]
    ]
    with SQLITE_WRITERS:  # another writer holds the lock: the first result waits for it
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while services.LEAF_RESULTS.waiting() < 4 and time.monotonic() < deadline:
            time.sleep(0.001)  # polls, with a deadline, for the other four to queue
        assert services.LEAF_RESULTS.waiting() == 4
    for thread in threads:
        thread.join(10)

    stamps = set(
        SubStep.objects.filter(pk__in=[node.pk for node in nodes[:5]]).values_list(
            "completed_at", flat=True
        )
    )
    # Two transactions, each with its own time: the first result, then the four that queued.
    assert len(stamps) == 2
    execution.refresh_from_db()
    assert execution.completed_tasks == 5


class _DriverError(Exception):
    """Stands for the database driver's error, carrying its SQLSTATE as psycopg's does."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _failing_once(monkeypatch, sqlstate: str) -> list[str]:
    """The executions' progress claim fails once, as the database reports `sqlstate`."""
    from django.db import OperationalError

    real = statements.execution_progress
    calls: list[str] = []

    def progress(execution_id, **kwargs):
        calls.append(execution_id)
        if len(calls) == 1:
            raise OperationalError("conflict") from _DriverError(sqlstate)
        return real(execution_id, **kwargs)

    monkeypatch.setattr(statements, "execution_progress", progress)
    return calls


@pytest.mark.django_db(transaction=True)
def test_results_are_recorded_again_when_the_database_ends_their_transaction_in_a_deadlock(
    monkeypatch,
):
    """PostgreSQL ends one of two deadlocked transactions: the results are still at hand, so the
    batch is run again rather than lost (and its nodes re-run once their leases lapse)."""
    execution, nodes = _claimed_fan_out(3)
    calls = _failing_once(monkeypatch, "40P01")

    following = services.leaf_nodes_complete(
        [services.NodeResult(node, NodeOutcome(result="r")) for node in nodes[:2]]
    )

    assert following == [None, None]
    assert calls == [execution.id, execution.id]
    execution.refresh_from_db()
    assert (execution.completed_tasks, execution.last_event_seq) == (2, 5)
    assert ExecutionEvent.objects.filter(execution=execution, type="substep.completed").count() == 2


@pytest.mark.django_db(transaction=True)
def test_other_database_errors_are_not_retried(monkeypatch):
    from django.db import OperationalError

    execution, nodes = _claimed_fan_out(2)
    calls = _failing_once(monkeypatch, "53300")  # too many connections

    with pytest.raises(OperationalError):
        services.leaf_nodes_complete([services.NodeResult(nodes[0], NodeOutcome(result="r"))])

    assert calls == [execution.id]
    assert SubStep.objects.get(pk=nodes[0].pk).status == "running"


def test_a_batch_locks_its_rows_in_one_order_whatever_order_its_results_came_in():
    """Nodes by execution and id, then executions by id: two workers' batches then never wait
    on each other in a cycle. The events keep the order the results came in."""
    first, first_nodes = _claimed_fan_out(3)  # a third node each: no synthesis is due yet
    second, second_nodes = _claimed_fan_out(3)
    came = [second_nodes[1], first_nodes[1], second_nodes[0], first_nodes[0]]

    with CaptureQueriesContext(connection) as queries:
        services.leaf_nodes_complete(
            [services.NodeResult(n, NodeOutcome(result="r")) for n in came]
        )

    updates = [q for q in _statements(queries) if q.startswith("UPDATE")]
    node_order = [
        n.id for u in updates for n in came if u.startswith('UPDATE "sub_steps"') and n.id in u
    ]
    execution_order = [
        e.id
        for u in updates
        for e in (first, second)
        if u.startswith('UPDATE "dag_executions"') and e.id in u
    ]
    assert node_order == [n.id for n in sorted(came, key=lambda n: (n.execution_id, n.id))]
    assert execution_order == sorted([first.id, second.id])
    for execution, nodes in ((first, first_nodes), (second, second_nodes)):
        completed = list(
            ExecutionEvent.objects.filter(execution=execution, type="substep.completed")
            .order_by("seq")
            .values_list("payload__subStepId", flat=True)
        )
        assert completed == [nodes[1].task_id, nodes[0].task_id]
