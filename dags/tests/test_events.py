"""Storing and publishing execution events (dags/events.py)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import transaction

from config.errors import NotFound
from dags.events import (
    EXECUTION_EVENTS,
    emit_execution_event,
    task_number,
    tool_progress_callback,
)
from dags.models import DagExecution, ExecutionEvent
from tests.factories import DagExecutionFactory


def _keys(event: ExecutionEvent) -> list[str]:
    return list(EXECUTION_EVENTS.wire(event.type, event.payload))


@pytest.mark.django_db
def test_events_get_consecutive_sequence_numbers_and_the_counter_follows():
    execution = DagExecutionFactory()
    first = emit_execution_event(
        execution_id=execution.id,
        type="execution.started",
        payload={"totalTasks": 2, "originalRequest": "Write a short report"},
    )
    second = emit_execution_event(
        execution_id=execution.id,
        type="substep.started",
        payload={"subStepId": "001", "description": "a task"},
    )
    assert (first.seq, second.seq) == (1, 2)
    execution.refresh_from_db()
    assert execution.last_event_seq == 2
    assert list(ExecutionEvent.objects.filter(execution=execution).values_list("seq", "type")) == [
        (1, "execution.started"),
        (2, "substep.started"),
    ]


@pytest.mark.django_db
def test_wire_payload_has_the_original_key_order():
    execution = DagExecutionFactory()
    started = emit_execution_event(
        execution_id=execution.id,
        type="substep.started",
        payload={"description": "fetch", "subStepId": "002"},
    )
    assert _keys(started) == [
        "type",
        "executionId",
        "subStepId",
        "taskId",
        "timestamp",
        "description",
    ]
    assert started.payload["taskId"] == 2
    assert started.payload["executionId"] == execution.id
    assert isinstance(started.payload["timestamp"], int)
    assert started.payload["timestamp"] > 1_700_000_000_000  # epoch milliseconds

    completed = emit_execution_event(
        execution_id=execution.id,
        type="substep.completed",
        payload={"result": "text", "durationMs": 15, "subStepId": "002"},
    )
    assert _keys(completed) == [
        "type",
        "executionId",
        "subStepId",
        "taskId",
        "timestamp",
        "durationMs",
        "result",
    ]
    progress = emit_execution_event(
        execution_id=execution.id,
        type="tool.progress",
        payload={"subStepId": "002", "message": "fetching", "toolName": "fetchPage"},
    )
    assert _keys(progress) == [
        "type",
        "executionId",
        "toolName",
        "message",
        "subStepId",
        "timestamp",
    ]
    done = emit_execution_event(
        execution_id=execution.id,
        type="execution.completed",
        payload={
            "finalResult": "# Report",
            "durationMs": 900,
            "failedTasks": 0,
            "completedTasks": 2,
            "status": "completed",
            "totalCostUsd": Decimal("0.0012"),
        },
    )
    assert _keys(done) == [
        "type",
        "executionId",
        "timestamp",
        "status",
        "completedTasks",
        "failedTasks",
        "durationMs",
        "finalResult",
        "totalCostUsd",
    ]
    assert done.payload["totalCostUsd"] == "0.0012"


def test_task_number_reads_task_ids_like_the_original():
    assert task_number("001") == 1
    assert task_number("12") == 12
    assert task_number("__SYNTHESIS__") is None
    assert task_number(None) is None


@pytest.mark.django_db
def test_synthesis_sub_step_has_a_null_task_number():
    execution = DagExecutionFactory()
    event = emit_execution_event(
        execution_id=execution.id,
        type="substep.failed",
        payload={"subStepId": "__SYNTHESIS__", "error": "boom"},
    )
    assert event.payload["taskId"] is None
    assert event.payload["subStepId"] == "__SYNTHESIS__"


@pytest.mark.django_db
def test_unknown_type_and_unknown_execution_are_refused():
    execution = DagExecutionFactory()
    with pytest.raises(ValueError):
        emit_execution_event(execution_id=execution.id, type="execution.exploded")
    with pytest.raises(NotFound):
        emit_execution_event(execution_id="dag-exec_missing", type="execution.started")
    assert not ExecutionEvent.objects.exists()


@pytest.mark.django_db
def test_an_event_is_published_only_when_its_transaction_commits(
    django_capture_on_commit_callbacks, redis_follower
):
    execution = DagExecutionFactory()
    receive = redis_follower(EXECUTION_EVENTS.group_name(execution.id))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        emit_execution_event(
            execution_id=execution.id, type="execution.suspended", payload={"reason": "x"}
        )
    assert len(callbacks) == 1  # waiting for the commit, not sent yet
    callbacks[0]()
    message = receive()
    assert message["seq"] == 1
    assert message["event"] == "execution.suspended"
    assert list(message["data"]) == ["type", "executionId", "timestamp", "reason"]
    assert message["data"]["reason"] == "x"


def test_publishing_never_waits_for_redis_and_keeps_the_order(monkeypatch, redis_follower):
    """A node hands its events over and goes on; they leave in order, a backlog in one batch."""
    import threading

    import config.live_events as live_events
    from config.live_events import publisher

    group = "dag-exec.order-test"
    receive = redis_follower(group)
    release = threading.Event()
    batches: list[list[int]] = []
    real_send_batch = publisher.Publisher.send_batch

    def slow_send_batch(client, batch):
        release.wait(10)  # Redis is slow today
        batches.append([message["seq"] for _, message in batch])
        real_send_batch(client, batch)

    monkeypatch.setattr(publisher.Publisher, "send_batch", staticmethod(slow_send_batch))
    try:
        for seq in (1, 2, 3):
            live_events.publish(group, {"seq": seq, "event": "x", "data": {}})
        assert batches == []  # every publish returned while the first send was still waiting
        release.set()
        assert live_events.flush_published(10)
    finally:
        release.set()
    assert [seq for batch in batches for seq in batch] == [1, 2, 3]
    assert len(batches) <= 2  # what piled up behind the first send left in one round trip
    assert [receive()["seq"] for _ in range(3)] == [1, 2, 3]


@pytest.mark.django_db
def test_a_rolled_back_transaction_leaves_no_event_and_no_gap(django_capture_on_commit_callbacks):
    execution = DagExecutionFactory()
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        emit_execution_event(execution_id=execution.id, type="execution.resumed")
        raise RuntimeError("the executor's change failed")
    assert callbacks == []
    assert not ExecutionEvent.objects.exists()
    event = emit_execution_event(execution_id=execution.id, type="execution.resumed")
    assert event.seq == 1


@pytest.mark.django_db
def test_tool_progress_callback_emits_progress_and_completion():
    execution = DagExecutionFactory()
    report = tool_progress_callback(execution.id, "003", "fetchURLs")
    report("fetching: http://example.test/")
    report("Fetched 12 chars", completed=True)
    events = list(ExecutionEvent.objects.filter(execution=execution).order_by("seq"))
    assert [(e.type, e.payload["message"]) for e in events] == [
        ("tool.progress", "fetching: http://example.test/"),
        ("tool.completed", "Fetched 12 chars"),
    ]
    assert events[0].payload["toolName"] == "fetchURLs"
    assert events[0].payload["subStepId"] == "003"


@pytest.mark.django_db
def test_tool_progress_callback_never_fails_the_tool():
    report = tool_progress_callback("dag-exec_gone", "001", "fetchPage")
    report("still fine")  # the execution does not exist: logged, not raised
    assert not ExecutionEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_emitters_get_unique_consecutive_numbers():
    execution = DagExecutionFactory()
    errors: list[BaseException] = []

    def emit_many(task_id: str) -> None:
        try:
            for _ in range(10):
                emit_execution_event(
                    execution_id=execution.id,
                    type="tool.progress",
                    payload={"toolName": "fetchPage", "message": "x", "subStepId": task_id},
                )
        except BaseException as error:
            errors.append(error)
        finally:
            from django.db import connection

            connection.close()

    threads = [threading.Thread(target=emit_many, args=(f"00{i}",)) for i in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    seqs = list(ExecutionEvent.objects.filter(execution=execution).values_list("seq", flat=True))
    assert sorted(seqs) == list(range(1, 41))
    assert DagExecution.objects.get(pk=execution.id).last_event_seq == 40
