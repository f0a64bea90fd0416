"""How nodes handed over together travel to the workers, and what a worker does with a message
that carries several (dags.execution.dispatch.node_messages, services.nodes_run)."""

from __future__ import annotations

import pytest
from django.utils.timezone import now

from dags.execution import dispatch, services
from dags.execution.node_threads import (
    node_threads_release,
    node_threads_reserve,
    node_threads_submit,
)
from dags.models import DagExecution, ExecutionEvent, SubStep
from tests.factories import AgentFactory, DagFactory, decomposer_job


@pytest.fixture
def inference_agent(db):
    return AgentFactory(name="InferenceAgent", prompt_template="You are careful.", active=True)


@pytest.mark.parametrize(
    ("nodes", "per_message", "sizes"),
    [
        (1, 16, [1]),
        (2, 16, [2]),
        (16, 16, [16]),
        (17, 16, [9, 8]),
        (20, 16, [10, 10]),
        (33, 16, [11, 11, 11]),
        (3, 1, [1, 1, 1]),
    ],
)
def test_nodes_handed_over_together_go_in_messages_as_even_as_possible(
    settings, nodes, per_message, sizes
):
    settings.EXECUTION_NODES_PER_MESSAGE = per_message
    ids = [f"n{i}" for i in range(nodes)]

    messages = dispatch.node_messages("ex1", ids, "abc")

    assert [len(carried) for _task_id, carried in messages] == sizes
    assert [node for _task_id, carried in messages for node in carried] == ids
    task_ids = [task_id for task_id, _carried in messages]
    assert len(set(task_ids)) == len(task_ids)
    for task_id, carried in messages:
        # A lone node keeps the id a node's message always had; cancelling revokes by it.
        expected = f"{carried[0]}:abc" if len(carried) == 1 else None
        assert task_id == expected if expected else task_id.startswith("ex1:abc:")


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """What would be handed to the broker, instead of sending it."""
    recorded: list[tuple[str, list[tuple[str, list[str]]]]] = []

    def record(execution_id, messages):
        recorded.append((execution_id, [(task_id, list(ids)) for task_id, ids in messages]))
        return sum(len(ids) for _task_id, ids in messages)

    monkeypatch.setattr(dispatch, "nodes_send", record)
    return recorded


@pytest.mark.django_db(transaction=True)
def test_a_started_fan_out_is_marked_with_the_ids_of_the_messages_that_carry_it(sent, settings):
    settings.EXECUTION_NODES_PER_MESSAGE = 4
    job = decomposer_job(6)
    for task in job["sub_tasks"]:
        task["dependencies"] = ["none"]
    execution = services.execution_launch(dag=DagFactory(result=job))

    ((execution_id, messages),) = sent
    assert execution_id == execution.id
    assert [len(ids) for _task_id, ids in messages] == [3, 3]
    stored = dict(SubStep.objects.filter(execution=execution).values_list("id", "queue_task_id"))
    assert {node: task_id for task_id, ids in messages for node in ids} == stored


@pytest.mark.django_db(transaction=True)
def test_nodes_a_worker_has_no_threads_for_are_sent_again_a_message_each(
    sent, fake_llm, inference_agent
):
    job = decomposer_job(3)
    for task in job["sub_tasks"]:
        task["dependencies"] = ["none"]
    execution = services.execution_create(dag=DagFactory(result=job))
    DagExecution.objects.filter(pk=execution.pk).update(status="running", started_at=now())
    nodes = list(SubStep.objects.filter(execution=execution).order_by("task_id"))
    ids = [node.id for node in nodes]
    SubStep.objects.filter(pk__in=ids).update(dispatched_at=now(), queue_task_id="wave-1")
    busy = node_threads_reserve(10**6)  # every node thread of this process is in use
    try:
        services.nodes_run(execution_id=execution.id, sub_step_ids=ids, task_id="wave-1")
    finally:
        node_threads_release(busy)

    stored = {node.task_id: node for node in SubStep.objects.filter(execution=execution)}
    assert stored["001"].status == "completed"  # on the thread that took the message
    assert (stored["002"].status, stored["003"].status) == ("pending", "pending")
    ((execution_id, messages),) = sent
    assert execution_id == execution.id
    assert [ids for _task_id, ids in messages] == [[ids[1]], [ids[2]]]
    for task_id, (node_id,) in messages:
        assert task_id.startswith(f"{node_id}:")
        assert SubStep.objects.get(pk=node_id).queue_task_id == task_id
    assert fake_llm.call_count == 1
    started = ExecutionEvent.objects.filter(execution=execution, type="substep.started")
    assert started.count() == 1

    # Whichever message comes first runs a node, once: here a second delivery of the first
    # message, then the nodes' own messages, which find them done.
    services.nodes_run(execution_id=execution.id, sub_step_ids=ids, task_id="wave-1")
    for _task_id, (node_id,) in messages:
        services.node_run(sub_step_id=node_id)
    assert fake_llm.call_count == 4  # each part once, then the synthesis
    assert set(SubStep.objects.filter(execution=execution).values_list("status", "attempts")) == {
        ("completed", 1)
    }
    assert started.count() == 4
    assert DagExecution.objects.get(pk=execution.pk).status == "completed"


@pytest.mark.django_db(transaction=True)
def test_a_message_whose_nodes_cannot_all_be_started_gives_back_their_threads(
    sent, fake_llm, inference_agent, monkeypatch, settings
):
    job = decomposer_job(4)
    for task in job["sub_tasks"]:
        task["dependencies"] = ["none"]
    execution = services.execution_create(dag=DagFactory(result=job))
    DagExecution.objects.filter(pk=execution.pk).update(status="running", started_at=now())
    ids = list(
        SubStep.objects.filter(execution=execution).order_by("task_id").values_list("id", flat=True)
    )
    submitted = []
    real_submit = services.node_threads_submit

    def submit_once(job, name):
        if submitted:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")
        submitted.append(job)
        return real_submit(job, name=name)

    monkeypatch.setattr(services, "node_threads_submit", submit_once)

    with pytest.raises(RuntimeError):
        services.nodes_run(execution_id=execution.id, sub_step_ids=ids, task_id="wave-2")

    statuses = dict(SubStep.objects.filter(execution=execution).values_list("task_id", "status"))
    # 002 started on a node thread and finished; the others were claimed and never started:
    # nothing renews their leases, which lapse, and recovery sends them again.
    assert statuses == {"001": "running", "002": "completed", "003": "running", "004": "running"}
    free = node_threads_reserve(10**6)
    node_threads_release(free)
    assert free == settings.WORKER_NODE_THREADS  # every reserved thread given back


@pytest.mark.django_db  # a node thread checks its database connection around each node
def test_a_node_on_a_node_thread_counts_as_work_in_flight_in_the_heartbeat():
    import threading

    from config.workers import work_in_flight

    running = threading.Event()
    let_go = threading.Event()

    def job() -> None:
        running.set()
        assert let_go.wait(10)

    assert node_threads_reserve(1) == 1
    future = node_threads_submit(job, name="dags.run_sub_steps")
    assert running.wait(10)
    assert work_in_flight().get("dags.run_sub_steps") == 1
    let_go.set()
    future.result(10)
    assert "dags.run_sub_steps" not in work_in_flight()
