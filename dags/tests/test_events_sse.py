"""`GET /api/v1/dag-executions/<id>/events` through the project's ASGI application."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from config.live_events import StoredEvent
from dags.events import EXECUTION_EVENTS, emit_execution_event
from dags.models import DagExecution, ExecutionEvent
from tests.factories import DEFAULT_OWNER, DagExecutionFactory, TokenFactory, UserFactory
from tests.sse_client import (
    AsgiSseClient,
    group_member_count,
    subscribed_processes,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _close_streams():
    yield
    AsgiSseClient.close_all()


@pytest.fixture
def key(transactional_db) -> str:
    return TokenFactory(user=UserFactory(username=DEFAULT_OWNER)).key


def events_path(execution_id: str) -> str:
    return f"/api/v1/dag-executions/{execution_id}/events"


def connect(execution_id: str, key: str | None = None, headers=None, **query) -> AsgiSseClient:
    headers = dict(headers or {})
    if key:
        headers.setdefault("authorization", f"Token {key}")
    return AsgiSseClient(events_path(execution_id), query=query, headers=headers).start()


def emit_substep(execution_id: str, task_id: str, kind: str = "substep.started") -> None:
    payload = {"subStepId": task_id, "description": f"task {task_id}"}
    if kind == "substep.completed":
        payload = {"subStepId": task_id, "durationMs": 3, "result": f"result {task_id}"}
    emit_execution_event(execution_id=execution_id, type=kind, payload=payload)


def emit_completed(execution_id: str) -> None:
    DagExecution.objects.filter(pk=execution_id).update(status="completed", completed_tasks=2)
    emit_execution_event(
        execution_id=execution_id,
        type="execution.completed",
        payload={
            "status": "completed",
            "completedTasks": 2,
            "failedTasks": 0,
            "durationMs": 10,
            "finalResult": "done",
        },
    )


def test_headers_snapshot_and_replay_of_everything_stored(key):
    execution = DagExecutionFactory(status="running", completed_tasks=1, waiting_tasks=1)
    emit_execution_event(
        execution_id=execution.id,
        type="execution.started",
        payload={"totalTasks": 2, "originalRequest": "Write"},
    )
    emit_substep(execution.id, "001")
    client = connect(execution.id, key)
    try:
        assert client.status == 200
        assert client.response.headers["content-type"].startswith("text/event-stream")
        assert client.response.headers["cache-control"] == "no-cache"
        assert client.response.headers["x-accel-buffering"] == "no"

        snapshot = client.next_frame()
        assert snapshot.event == "execution.updated"
        assert snapshot.id is None  # does not move the client's Last-Event-ID
        assert list(snapshot.data) == [
            "type",
            "executionId",
            "timestamp",
            "status",
            "completedTasks",
            "failedTasks",
            "waitingTasks",
        ]
        assert snapshot.data["status"] == "running"
        assert snapshot.data["completedTasks"] == 1
        assert snapshot.data["waitingTasks"] == 1

        first, second = client.next_frame(), client.next_frame()
        assert (first.id, first.event) == (1, "execution.started")
        assert (second.id, second.event) == (2, "substep.started")
        assert list(second.data) == [
            "type",
            "executionId",
            "subStepId",
            "taskId",
            "timestamp",
            "description",
        ]
        assert b"id: 2\nevent: substep.started\ndata: {" in client.body
    finally:
        client.disconnect()


def test_replay_after_last_event_id_returns_exactly_the_missing_events(key):
    execution = DagExecutionFactory(status="running")
    for number in range(1, 8):
        emit_substep(execution.id, f"{number:03d}")
    by_header = connect(execution.id, key, headers={"last-event-id": "4"})
    by_query = connect(execution.id, key, lastEventId="5")
    try:
        assert by_header.next_frame().event == "execution.updated"
        assert [by_header.next_frame().id for _ in range(3)] == [5, 6, 7]
        assert by_query.next_frame().event == "execution.updated"
        assert [by_query.next_frame().id for _ in range(2)] == [6, 7]
        # Nothing else is pending: the next frame is the live event emitted now.
        emit_substep(execution.id, "008")
        assert by_header.next_frame().id == 8
        assert by_query.next_frame().id == 8
    finally:
        by_header.disconnect()
        by_query.disconnect()


def test_subscriber_joining_a_running_execution_misses_nothing_and_gets_no_duplicates(key):
    execution = DagExecutionFactory(status="running")
    for number in range(1, 6):
        emit_substep(execution.id, f"{number:03d}")
    total = 60
    started = threading.Event()

    def worker() -> None:
        from django.db import connection

        started.set()
        try:
            for number in range(6, total):
                emit_substep(execution.id, f"{number:03d}", "substep.completed")
            emit_completed(execution.id)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    started.wait()
    # Connect while the worker is emitting: the switch from replay to live happens mid-stream.
    client = connect(execution.id, key)
    frames = client.events_until_end(timeout=30)
    thread.join(30)
    client.wait_finished()
    assert frames[0].event == "execution.updated"
    ids = [frame.id for frame in frames[1:]]
    assert ids == list(range(1, total + 1))
    assert frames[-1].event == "execution.completed"


def test_stream_ends_after_the_terminal_event_and_a_reconnect_gets_204(key):
    execution = DagExecutionFactory(status="running")
    emit_substep(execution.id, "001")
    client = connect(execution.id, key)
    assert client.next_frame().event == "execution.updated"
    assert client.next_frame().id == 1
    emit_substep(execution.id, "001", "substep.completed")
    emit_completed(execution.id)
    rest = client.events_until_end()
    assert [(f.id, f.event) for f in rest] == [(2, "substep.completed"), (3, "execution.completed")]
    client.wait_finished()  # the response is over, the application returned

    again = connect(execution.id, key, headers={"last-event-id": "3"})
    again.wait_finished()
    assert again.status == 204
    assert again.read_all() == b""

    # Reconnecting from an earlier id still gets what was missed, then the stream ends.
    behind = connect(execution.id, key, headers={"last-event-id": "2"})
    frames = behind.events_until_end()
    assert [(f.id, f.event) for f in frames[1:]] == [(3, "execution.completed")]
    assert behind.status == 200


@pytest.mark.parametrize(
    ("status", "event", "payload"),
    [
        ("suspended", "execution.suspended", {"reason": "task failed"}),
        ("failed", "execution.failed", {"error": "boom", "completedTasks": 0, "failedTasks": 1}),
        ("cancelled", "execution.cancelled", {"reason": "by request"}),
    ],
)
def test_a_stream_on_a_resumable_execution_stays_open_and_follows_a_resume(
    key, settings, status, event, payload
):
    """Suspended, failed and cancelled executions can be resumed from anywhere (another tab,
    the API, the admin): a client that keeps its stream sees the resume, with heartbeats while
    nothing happens, and the stream ends only once the execution completed."""
    settings.SSE_HEARTBEAT_SECONDS = 0.2
    execution = DagExecutionFactory(status="running")
    emit_substep(execution.id, "001")
    emit_execution_event(execution_id=execution.id, type=event, payload=payload)
    DagExecution.objects.filter(pk=execution.id).update(status=status)

    client = connect(execution.id, key)
    try:
        assert [client.next_frame().event for _ in range(3)] == [
            "execution.updated",
            "substep.started",
            event,
        ]
        # Settled for now, and still open: heartbeats, no end.
        heartbeats = [client.next_frame(timeout=5) for _ in range(2)]
        assert all(frame is not None and frame.is_heartbeat for frame in heartbeats)
        assert not client.finished

        DagExecution.objects.filter(pk=execution.id).update(status="running")
        emit_execution_event(
            execution_id=execution.id, type="execution.resumed", payload={"totalTasks": 2}
        )
        emit_substep(execution.id, "001", "substep.completed")
        emit_completed(execution.id)
        rest = client.events_until_end(timeout=5)
        assert [(f.id, f.event) for f in rest] == [
            (3, "execution.resumed"),
            (4, "substep.completed"),
            (5, "execution.completed"),
        ]
        client.wait_finished()
    finally:
        client.disconnect()


def test_a_reconnect_to_a_resumable_execution_with_nothing_new_stays_open(key, settings):
    """Not 204 (which would make EventSource stop for good): a resume may still come."""
    settings.SSE_HEARTBEAT_SECONDS = 0.2
    execution = DagExecutionFactory(status="running")
    emit_execution_event(
        execution_id=execution.id, type="execution.suspended", payload={"reason": "r"}
    )
    DagExecution.objects.filter(pk=execution.id).update(status="suspended")
    client = connect(execution.id, key, headers={"last-event-id": "1"})
    try:
        assert client.status == 200
        assert client.next_frame().event == "execution.updated"
        assert client.next_frame(timeout=5).is_heartbeat
        emit_execution_event(
            execution_id=execution.id, type="execution.resumed", payload={"totalTasks": 2}
        )
        assert (client.next_event(timeout=5).id, "execution.resumed") == (2, "execution.resumed")
    finally:
        client.disconnect()


@pytest.mark.parametrize("status", ["completed", "partial"])
def test_a_stream_on_an_execution_that_cannot_change_ends_after_its_history(key, status):
    execution = DagExecutionFactory(status="running")
    emit_substep(execution.id, "001")
    DagExecution.objects.filter(pk=execution.id).update(
        status=status, completed_at=timezone.now() - timedelta(minutes=1)
    )
    ExecutionEvent.objects.filter(execution_id=execution.id).update(
        created_at=timezone.now() - timedelta(minutes=1)
    )
    frames = connect(execution.id, key).events_until_end()
    assert [f.event for f in frames] == ["execution.updated", "substep.started"]
    assert connect(execution.id, key, lastEventId="1").status == 204


def test_finished_execution_without_stored_events_sends_the_snapshot_then_ends(key):
    execution = DagExecutionFactory(status="completed")
    frames = connect(execution.id, key).events_until_end()
    assert [f.event for f in frames] == ["execution.updated"]
    assert connect(execution.id, key, lastEventId="0").status == 204


def test_a_resumed_execution_keeps_streaming_past_its_earlier_suspension(key):
    execution = DagExecutionFactory(status="running")
    emit_execution_event(
        execution_id=execution.id, type="execution.suspended", payload={"reason": "r"}
    )
    emit_execution_event(
        execution_id=execution.id, type="execution.resumed", payload={"totalTasks": 2}
    )
    client = connect(execution.id, key)
    try:
        assert [client.next_frame().event for _ in range(3)] == [
            "execution.updated",
            "execution.suspended",
            "execution.resumed",
        ]
        emit_substep(execution.id, "001")
        assert client.next_frame().id == 3
    finally:
        client.disconnect()


def test_client_disconnect_stops_the_generator_and_leaves_the_group(key):
    execution = DagExecutionFactory(status="running")
    group = EXECUTION_EVENTS.group_name(execution.id)
    client = connect(execution.id, key)
    assert client.next_frame().event == "execution.updated"
    assert wait_until(lambda: group_member_count(group) == 1)
    other = connect(execution.id, key)
    assert other.next_frame().event == "execution.updated"
    assert wait_until(lambda: group_member_count(group) == 2)

    client.disconnect(timeout=5)  # raises if the application is still running
    assert client.error is None and client.finished
    assert wait_until(lambda: group_member_count(group) == 1)
    other.disconnect(timeout=5)
    assert wait_until(lambda: group_member_count(group) == 0)


def test_live_events_are_written_to_waiting_streams_by_the_hub_without_waking_them(
    key, monkeypatch
):
    """While streams wait, the process's hub writes each published event to all of them itself
    (one task for every client, not a wake-up of each client's own); the terminal event still
    goes through each stream, which then ends."""
    from config.live_events.hub import Listener

    execution = DagExecutionFactory(status="running")
    group = EXECUTION_EVENTS.group_name(execution.id)
    clients = [connect(execution.id, key) for _ in range(20)]
    for client in clients:
        assert client.next_frame().event == "execution.updated"
    assert wait_until(lambda: group_member_count(group, writing=True) == 20)

    queued: list[object] = []
    put = Listener.put

    def counted(self: Listener, item: object) -> None:
        if self.group == group:
            queued.append(item)
        put(self, item)

    monkeypatch.setattr(Listener, "put", counted)
    for number in range(1, 6):
        emit_substep(execution.id, f"{number:03d}")
    for client in clients:
        assert [client.next_frame().id for _ in range(5)] == [1, 2, 3, 4, 5]
    assert queued == []  # no stream's inbox (and task) was involved
    assert group_member_count(group, writing=True) == 20

    emit_completed(execution.id)
    for client in clients:
        assert [(f.id, f.event) for f in client.events_until_end()] == [(6, "execution.completed")]
        client.wait_finished()
    assert len(queued) == 20  # the terminal event went to each stream's inbox
    assert wait_until(lambda: group_member_count(group) == 0)


def test_heartbeat_comments_keep_an_idle_stream_open(key, settings):
    settings.SSE_HEARTBEAT_SECONDS = 0.2
    execution = DagExecutionFactory(status="running")
    client = connect(execution.id, key)
    try:
        assert client.next_frame().event == "execution.updated"
        frame = client.next_frame(timeout=5)
        assert frame.is_heartbeat and frame.comment == "heartbeat"
        assert b"\n: heartbeat\n\n" in client.body
        emit_substep(execution.id, "001")
        while (frame := client.next_frame(timeout=5)).is_heartbeat:
            pass
        assert frame.id == 1
    finally:
        client.disconnect()


def test_a_disconnect_as_a_duplicate_live_event_arrives_still_ends_the_stream(monkeypatch):
    """The race that once kept streams alive after the client left: the event was already sent
    (read from the database), its published copy lands in the inbox, and the cancellation
    comes before the stream's task resumes. Python 3.11's asyncio.wait_for returned the message
    and dropped the cancellation; the generator must end anyway."""
    import asyncio

    import config.sse as sse
    from tests.sse_client import run_in_server_loop

    execution = DagExecutionFactory(status="running")
    emit_substep(execution.id, "001")
    subscriptions = []

    class RecordedSubscription(sse.Subscription):
        def __init__(self, group: str) -> None:
            super().__init__(group)
            subscriptions.append(self)

    monkeypatch.setattr(sse, "Subscription", RecordedSubscription)

    async def scenario() -> list[bytes]:
        frames: list[bytes] = []
        delivered = asyncio.Event()

        async def consume() -> None:
            async for frame in sse.follow(EXECUTION_EVENTS, execution.id, 0, heartbeat=30):
                frames.append(frame)
                if frame.startswith(b"id: 1"):
                    delivered.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(delivered.wait(), 10)
        await asyncio.sleep(0.05)  # the stream is now idle, waiting on its inbox
        duplicate = StoredEvent(1, "substep.started", {})
        subscriptions[0].inbox.put_nowait(duplicate)
        asyncio.get_running_loop().call_soon(task.cancel)
        done, _ = await asyncio.wait([task], timeout=5)
        assert done, "the stream kept running after it was cancelled"
        assert task.cancelled()
        return frames

    frames = run_in_server_loop(scenario(), timeout=20)
    assert [frame.split(b"\n")[0] for frame in frames] == [b"event: execution.updated", b"id: 1"]
    assert wait_until(lambda: group_member_count(EXECUTION_EVENTS.group_name(execution.id)) == 0)


def test_an_event_lost_in_transit_is_recovered_from_the_database(key, monkeypatch):
    from config.live_events import publisher

    execution = DagExecutionFactory(status="running")
    client = connect(execution.id, key)
    try:
        assert client.next_frame().event == "execution.updated"
        real_publish = publisher.publish
        monkeypatch.setattr(publisher, "publish", lambda group, message: None)
        emit_substep(execution.id, "001")  # stored, never published
        monkeypatch.setattr(publisher, "publish", real_publish)
        emit_substep(execution.id, "002")  # the gap shows; 1 is read from the database
        assert [client.next_frame().id for _ in range(2)] == [1, 2]
    finally:
        client.disconnect()


def test_the_stream_falls_back_to_polling_without_redis(key, monkeypatch):
    import config.live_events as live_events

    async def unavailable(self) -> bool:
        return False

    monkeypatch.setattr(live_events.Subscription, "open", unavailable)
    execution = DagExecutionFactory(status="running")
    client = connect(execution.id, key)
    try:
        assert client.next_frame().event == "execution.updated"
        emit_substep(execution.id, "001")
        started = time.monotonic()
        assert client.next_frame(timeout=5).id == 1
        assert time.monotonic() - started < 3
    finally:
        client.disconnect()


def test_a_last_event_id_beyond_the_stored_events_does_not_hide_new_ones(key):
    execution = DagExecutionFactory(status="running")
    emit_substep(execution.id, "001")
    client = connect(execution.id, key, headers={"last-event-id": "999"})
    try:
        assert client.next_frame().event == "execution.updated"
        emit_substep(execution.id, "002")
        assert client.next_frame().id == 2
    finally:
        client.disconnect()


def test_unknown_execution_is_a_json_404(key):
    client = connect("dag-exec_doesnotexist0001", key)
    assert client.status == 404
    assert client.response.headers["content-type"] == "application/json"
    assert client.json() == {"error": "DAG execution with id 'dag-exec_doesnotexist0001' not found"}


def test_malformed_last_event_id_is_a_400(key):
    execution = DagExecutionFactory()
    client = connect(execution.id, key, headers={"last-event-id": "abc"})
    assert client.status == 400
    body = client.json()
    assert body["error"] == "Invalid parameters"
    assert body["validation_errors"][0]["path"] == ["lastEventId"]


def test_authentication(key, settings):
    execution = DagExecutionFactory()
    anonymous = connect(execution.id)
    assert anonymous.status == 401
    assert anonymous.json() == {"error": "Authentication credentials were not provided."}
    assert anonymous.response.headers["www-authenticate"] == "Token"

    bad = connect(execution.id, token="not-a-token")
    assert bad.status == 401
    assert bad.json() == {"error": "Invalid token."}

    wrong_header = connect(execution.id, headers={"authorization": "Token nope"})
    assert wrong_header.status == 401

    for client in (
        connect(execution.id, token=key),
        connect(execution.id, headers={"authorization": f"Bearer {key}"}),
    ):
        assert client.status == 200
        assert client.next_frame().event == "execution.updated"
        client.disconnect()

    settings.API_AUTH_REQUIRED = False
    # Anonymous callers act as the trusted local user, the first superuser.
    UserFactory(username="local-admin", is_staff=True, is_superuser=True)
    open_client = connect(execution.id)
    assert open_client.status == 200
    open_client.disconnect()


def test_session_authentication(key, client):
    user = UserFactory(username=DEFAULT_OWNER)
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    execution = DagExecutionFactory()
    stream = connect(execution.id, headers={"cookie": cookie})
    assert stream.status == 200
    stream.disconnect()


def test_cors_headers_for_a_configured_origin(key, settings):
    settings.CORS_ALLOWED_ORIGINS = ["http://ui.example.test"]
    execution = DagExecutionFactory()
    client = connect(execution.id, key, headers={"origin": "http://ui.example.test"})
    try:
        assert client.status == 200
        assert client.response.headers["access-control-allow-origin"] == "http://ui.example.test"
        assert client.response.headers["access-control-allow-credentials"] == "true"
    finally:
        client.disconnect()
    stranger = connect(execution.id, key, headers={"origin": "http://evil.example.test"})
    assert "access-control-allow-origin" not in stranger.response.headers
    stranger.disconnect()


def test_the_stream_is_never_throttled(key, settings):
    settings.API_THROTTLE_RATE = "1/min"
    execution = DagExecutionFactory(status="completed")
    for _ in range(3):
        client = connect(execution.id, key)
        assert client.status == 200
        client.events_until_end()


def test_a_burst_of_subscribers_all_get_live_subscriptions():
    """Many simultaneous subscribers to one subject: one Redis subscription serves them all."""
    import asyncio

    from config.live_events import Subscription
    from tests.sse_client import run_in_server_loop

    group = EXECUTION_EVENTS.group_name("dag-exec_burst")

    async def burst() -> list[bool]:
        subscriptions = [Subscription(group) for _ in range(250)]
        opened = await asyncio.gather(*(s.open() for s in subscriptions))
        members = group_member_count(group)
        processes = await asyncio.to_thread(subscribed_processes, group)
        live = [s.live for s in subscriptions]
        await asyncio.gather(*(s.close() for s in subscriptions))
        return [*opened, *live, members == 250, processes == 1]

    assert all(run_in_server_loop(burst(), timeout=60))
    assert group_member_count(group) == 0
    assert subscribed_processes(group) == 0


def test_open_streams_hold_no_request_thread(key, settings, monkeypatch):
    """A stream's checks run on a thread of the request pool, like any request; the stream
    itself is sent from the event loop, so more open streams than the pool has threads leave
    every thread free for other requests."""
    import threading

    checked_on: list[str] = []
    real_visible = EXECUTION_EVENTS.visible_to_user

    def recording_visible(subject_id, user):
        checked_on.append(threading.current_thread().name)
        return real_visible(subject_id, user)

    monkeypatch.setattr(EXECUTION_EVENTS, "visible_to_user", recording_visible)
    execution = DagExecutionFactory(status="running")
    streams = [connect(execution.id, key) for _ in range(settings.WEB_THREADS + 4)]
    for stream in streams:
        assert stream.status == 200
        assert stream.next_frame().event == "execution.updated"
    assert checked_on and all(name.startswith("request") for name in checked_on)

    answer = AsgiSseClient("/api/v1/tools", headers={"authorization": f"Token {key}"}).start()
    answer.wait_finished(10)
    assert answer.status == 200
    emit_substep(execution.id, "001")
    assert all(stream.next_frame().id == 1 for stream in streams)


def test_a_store_read_loads_the_snapshot_and_events_in_two_statements():
    """A stream's read takes the execution's snapshot columns and its events, nothing more: a
    snapshot field left out of the store's columns would be loaded by a statement of its own."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    execution = DagExecutionFactory(
        status="running", completed_tasks=2, failed_tasks=1, waiting_tasks=3
    )
    emit_substep(execution.id, "001")
    emit_substep(execution.id, "002")

    with CaptureQueriesContext(connection) as queries:
        state = EXECUTION_EVENTS.read(execution.id, 0)

    assert len(queries.captured_queries) == 2, [q["sql"] for q in queries.captured_queries]
    assert {key: state.snapshot[key] for key in ("status", "completedTasks", "failedTasks")} == {
        "status": "running",
        "completedTasks": 2,
        "failedTasks": 1,
    }
    assert state.snapshot["waitingTasks"] == 3
    assert [event.seq for event in state.events] == [1, 2]
    assert state.last_seq == 2 and state.settled is False
