"""Goal-run events: storage, `GET /api/v1/runs/<id>/events` and `/ws/runs/<id>/`."""

from __future__ import annotations

import json
import threading

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from config.errors import NotFound
from runs.events import RUN_EVENTS, emit_run_event
from runs.models import Run, RunEvent
from tests.factories import DEFAULT_OWNER, RunFactory, TokenFactory, UserFactory
from tests.sse_client import AsgiSseClient, group_member_count, run_in_server_loop, wait_until


@pytest.fixture(autouse=True)
def _close_streams():
    yield
    AsgiSseClient.close_all()


@pytest.fixture
def key(transactional_db) -> str:
    return TokenFactory(user=UserFactory(username=DEFAULT_OWNER)).key


def emit_step(run_id: str, number: int) -> RunEvent:
    return emit_run_event(
        run_id=run_id,
        type="run.step",
        payload={
            "stepNo": number,
            "thought": "t",
            "toolName": "webSearch",
            "toolInput": {"query": "q"},
            "observation": "o",
            "durationMs": 4,
            "error": None,
        },
    )


def finish(run_id: str) -> None:
    Run.objects.filter(pk=run_id).update(status="completed", steps_executed=2)
    emit_run_event(
        run_id=run_id,
        type="run.completed",
        payload={"status": "completed", "stepsExecuted": 2, "summary": "all done"},
    )


def stream(run_id: str, key: str, **query) -> AsgiSseClient:
    return AsgiSseClient(
        f"/api/v1/runs/{run_id}/events", query=query, headers={"authorization": f"Token {key}"}
    ).start()


@pytest.mark.django_db
def test_run_events_are_numbered_and_keyed():
    run = RunFactory()
    started = emit_run_event(
        run_id=run.id, type="run.started", payload={"stepBudget": 5, "goalId": run.goal_id}
    )
    step = emit_step(run.id, 1)
    assert (started.seq, step.seq) == (1, 2)
    assert list(RUN_EVENTS.wire(started.type, started.payload)) == [
        "type",
        "runId",
        "timestamp",
        "goalId",
        "stepBudget",
    ]
    assert list(RUN_EVENTS.wire(step.type, step.payload)) == [
        "type",
        "runId",
        "timestamp",
        "stepNo",
        "thought",
        "toolName",
        "toolInput",
        "observation",
        "durationMs",
        "error",
    ]
    run.refresh_from_db()
    assert run.last_event_seq == 2
    with pytest.raises(ValueError):
        emit_run_event(run_id=run.id, type="run.updated")
    with pytest.raises(NotFound):
        emit_run_event(run_id="run_missing", type="run.started")


@pytest.mark.django_db
def test_run_events_go_with_their_run():
    run = RunFactory()
    emit_step(run.id, 1)
    run.delete()
    assert not RunEvent.objects.exists()


@pytest.mark.django_db
def test_a_read_never_counts_events_committed_after_its_subject_row():
    """A follower reads the run row, then its events. A terminal event committed in between
    once made the feed "settled" while the events returned stopped short of it, and streams
    ended without their last event. Here the run row is as it was before the terminal event."""
    run = RunFactory(status="running")
    emit_step(run.id, 1)
    Run.objects.filter(pk=run.id).update(status="failed", error="boom")
    emit_run_event(run_id=run.id, type="run.failed", payload={"error": "boom"})
    Run.objects.filter(pk=run.id).update(last_event_seq=1)  # the row as read before the commit

    state = RUN_EVENTS.read(run.id, 0)
    assert [event.seq for event in state.events] == [1]
    assert state.last_seq == 1
    assert state.settled is False  # the terminal event is still to be delivered

    Run.objects.filter(pk=run.id).update(last_event_seq=2)
    state = RUN_EVENTS.read(run.id, 1)
    assert [event.type for event in state.events] == ["run.failed"]
    assert state.settled is True


@pytest.mark.django_db(transaction=True)
def test_sse_replay_live_terminal_and_204(key):
    run = RunFactory(status="running")
    emit_run_event(
        run_id=run.id, type="run.started", payload={"goalId": run.goal_id, "stepBudget": 20}
    )
    emit_step(run.id, 1)
    client = stream(run.id, key, lastEventId="1")
    snapshot = client.next_frame()
    assert snapshot.event == "run.updated"
    assert list(snapshot.data) == [
        "type",
        "runId",
        "timestamp",
        "status",
        "stepsExecuted",
        "stepBudget",
    ]
    assert snapshot.data["status"] == "running"
    assert (client.next_frame().id, client.response.status) == (2, 200)

    def worker() -> None:
        from django.db import connection

        try:
            for number in range(2, 12):
                emit_step(run.id, number)
            finish(run.id)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    rest = client.events_until_end(timeout=30)
    thread.join(30)
    assert [f.id for f in rest] == list(range(3, 14))
    assert rest[-1].event == "run.completed"
    assert rest[-1].data["summary"] == "all done"

    again = stream(run.id, key, lastEventId="13")
    again.wait_finished()
    assert again.status == 204


@pytest.mark.django_db(transaction=True)
def test_sse_unknown_run_and_missing_auth(key):
    missing = stream("run_nope", key)
    assert missing.status == 404
    assert missing.json() == {"error": "Run not found"}
    run = RunFactory()
    anonymous = AsgiSseClient(f"/api/v1/runs/{run.id}/events").start()
    assert anonymous.status == 401


@pytest.mark.django_db(transaction=True)
def test_sse_disconnect_leaves_the_group(key):
    run = RunFactory(status="running")
    client = stream(run.id, key)
    assert client.next_frame().event == "run.updated"
    group = RUN_EVENTS.group_name(run.id)
    assert wait_until(lambda: group_member_count(group) == 1)
    client.disconnect()
    assert group_member_count(group) == 0


async def _websocket_session(path: str) -> list:
    communicator = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"http://localhost")]
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    messages = []
    while True:
        output = await communicator.receive_output(10)
        if output["type"] == "websocket.close":
            messages.append(("close", output.get("code")))
            break
        messages.append(json.loads(output["text"]))
    await communicator.disconnect()
    return messages


@pytest.mark.django_db(transaction=True)
def test_websocket_replays_a_finished_run_and_closes(key):
    run = RunFactory(status="running")
    emit_step(run.id, 1)
    finish(run.id)
    messages = run_in_server_loop(_websocket_session(f"/ws/runs/{run.id}/?token={key}"))
    assert [m["event"] for m in messages[:-1]] == ["run.updated", "run.step", "run.completed"]
    assert [m["id"] for m in messages[:-1]] == [None, 1, 2]
    assert messages[-1] == ("close", 1000)
    assert group_member_count(RUN_EVENTS.group_name(run.id)) == 0


@pytest.mark.django_db(transaction=True)
def test_websocket_run_failure_is_terminal(key):
    run = RunFactory(status="running")

    def fail_soon() -> None:
        from django.db import connection

        try:
            emit_step(run.id, 1)
            Run.objects.filter(pk=run.id).update(status="failed", error="boom")
            emit_run_event(
                run_id=run.id, type="run.failed", payload={"error": "boom", "stepsExecuted": 1}
            )
        finally:
            connection.close()

    thread = threading.Thread(target=fail_soon)
    thread.start()
    messages = run_in_server_loop(_websocket_session(f"/ws/runs/{run.id}/?token={key}"))
    thread.join(30)
    assert [m["event"] for m in messages[:-1] if m["id"] is not None] == ["run.step", "run.failed"]
    assert messages[-1] == ("close", 1000)


@pytest.mark.django_db
def test_a_store_read_loads_the_snapshot_and_events_in_two_statements():
    """The run's snapshot columns and its events, nothing more (a snapshot field left out of the
    store's columns would be loaded by a statement of its own)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    run = RunFactory(status="running", steps_executed=1, step_budget=7)
    emit_step(run.id, 1)

    with CaptureQueriesContext(connection) as queries:
        state = RUN_EVENTS.read(run.id, 0)

    assert len(queries.captured_queries) == 2, [q["sql"] for q in queries.captured_queries]
    assert (state.snapshot["stepsExecuted"], state.snapshot["stepBudget"]) == (1, 7)
    assert [event.seq for event in state.events] == [1]
