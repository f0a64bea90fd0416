"""`/ws/dag-executions/<id>/` with Channels' WebsocketCommunicator on the full ASGI stack
(origin check, session/token auth, routing)."""

from __future__ import annotations

import json
import threading

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from dags.events import EXECUTION_EVENTS, emit_execution_event
from dags.models import DagExecution
from tests.factories import DEFAULT_OWNER, DagExecutionFactory, TokenFactory, UserFactory
from tests.sse_client import group_member_count, run_in_server_loop, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")


@pytest.fixture
def key(transactional_db) -> str:
    return TokenFactory(user=UserFactory(username=DEFAULT_OWNER)).key


def emit_started(execution_id: str, task_id: str) -> None:
    emit_execution_event(
        execution_id=execution_id,
        type="substep.started",
        payload={"subStepId": task_id, "description": "d"},
    )


def emit_completed(execution_id: str) -> None:
    DagExecution.objects.filter(pk=execution_id).update(status="completed")
    emit_execution_event(
        execution_id=execution_id,
        type="execution.completed",
        payload={
            "status": "completed",
            "completedTasks": 1,
            "failedTasks": 0,
            "durationMs": 5,
            "finalResult": "ok",
        },
    )


async def _open(path: str, headers=(ORIGIN,)) -> tuple[WebsocketCommunicator, bool]:
    communicator = WebsocketCommunicator(application, path, headers=list(headers))
    connected, _ = await communicator.connect(timeout=10)
    return communicator, connected


def open_socket(path: str, headers=(ORIGIN,)) -> WebsocketCommunicator:
    communicator, connected = run_in_server_loop(_open(path, headers))
    assert connected
    return communicator


def receive(communicator: WebsocketCommunicator, timeout: float = 10) -> dict:
    return json.loads(run_in_server_loop(communicator.receive_from(timeout)))


def receive_close(communicator: WebsocketCommunicator, timeout: float = 10) -> dict:
    return run_in_server_loop(communicator.receive_output(timeout))


def disconnect(communicator: WebsocketCommunicator) -> None:
    run_in_server_loop(communicator.disconnect())


def test_snapshot_replay_live_events_and_close_after_the_terminal_event(key):
    execution = DagExecutionFactory(status="running", completed_tasks=0)
    emit_started(execution.id, "001")
    socket = open_socket(f"/ws/dag-executions/{execution.id}/?token={key}")
    snapshot = receive(socket)
    assert snapshot["id"] is None
    assert snapshot["event"] == "execution.updated"
    assert snapshot["data"]["status"] == "running"
    assert list(snapshot["data"])[:3] == ["type", "executionId", "timestamp"]
    replayed = receive(socket)
    assert (replayed["id"], replayed["event"]) == (1, "substep.started")
    assert replayed["data"]["subStepId"] == "001"
    assert replayed["data"]["taskId"] == 1

    emit_started(execution.id, "002")
    assert receive(socket)["id"] == 2
    emit_completed(execution.id)
    final = receive(socket)
    assert (final["id"], final["event"]) == (3, "execution.completed")
    assert receive_close(socket) == {"type": "websocket.close", "code": 1000}
    assert group_member_count(EXECUTION_EVENTS.group_name(execution.id)) == 0
    disconnect(socket)


def test_replay_from_last_event_id_and_no_duplicates_while_emitting(key):
    execution = DagExecutionFactory(status="running")
    for number in range(1, 4):
        emit_started(execution.id, f"{number:03d}")

    def worker() -> None:
        from django.db import connection

        try:
            for number in range(4, 40):
                emit_started(execution.id, f"{number:03d}")
            emit_completed(execution.id)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    socket = open_socket(f"/ws/dag-executions/{execution.id}/?token={key}&lastEventId=2")
    assert receive(socket)["event"] == "execution.updated"
    ids = []
    while True:
        message = receive(socket, timeout=30)
        ids.append(message["id"])
        if message["event"] == "execution.completed":
            break
    thread.join(30)
    assert ids == list(range(3, 41))
    assert receive_close(socket)["code"] == 1000
    disconnect(socket)


def test_session_authentication(client):
    client.force_login(UserFactory(username=DEFAULT_OWNER))
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    execution = DagExecutionFactory(status="running")
    socket = open_socket(
        f"/ws/dag-executions/{execution.id}/", headers=(ORIGIN, (b"cookie", cookie))
    )
    assert receive(socket)["event"] == "execution.updated"
    disconnect(socket)


def test_authorization_header_is_accepted(key):
    execution = DagExecutionFactory(status="running")
    socket = open_socket(
        f"/ws/dag-executions/{execution.id}/",
        headers=(ORIGIN, (b"authorization", f"Token {key}".encode())),
    )
    assert receive(socket)["event"] == "execution.updated"
    disconnect(socket)


def test_refusals_carry_an_error_and_a_close_code(key):
    execution = DagExecutionFactory()
    anonymous = open_socket(f"/ws/dag-executions/{execution.id}/")
    assert receive(anonymous) == {"error": "Authentication credentials were not provided."}
    assert receive_close(anonymous)["code"] == 4401

    bad_token = open_socket(f"/ws/dag-executions/{execution.id}/?token=nope")
    assert receive(bad_token) == {"error": "Invalid token."}
    assert receive_close(bad_token)["code"] == 4401

    unknown = open_socket(f"/ws/dag-executions/dag-exec_nothinghere00/?token={key}")
    assert receive(unknown) == {"error": "DAG execution with id 'dag-exec_nothinghere00' not found"}
    assert receive_close(unknown)["code"] == 4404
    assert group_member_count(EXECUTION_EVENTS.group_name("dag-exec_nothinghere00")) == 0

    bad_position = open_socket(f"/ws/dag-executions/{execution.id}/?token={key}&lastEventId=x")
    assert "error" in receive(bad_position)
    assert receive_close(bad_position)["code"] == 4400


def test_foreign_origin_is_rejected(key):
    execution = DagExecutionFactory()
    _, connected = run_in_server_loop(
        _open(
            f"/ws/dag-executions/{execution.id}/?token={key}",
            headers=((b"origin", b"http://evil.example.test"),),
        )
    )
    assert connected is False


def test_disconnect_leaves_the_group(key):
    execution = DagExecutionFactory(status="running")
    group = EXECUTION_EVENTS.group_name(execution.id)
    socket = open_socket(f"/ws/dag-executions/{execution.id}/?token={key}")
    receive(socket)
    assert group_member_count(group) == 1
    disconnect(socket)
    assert wait_until(lambda: group_member_count(group) == 0)


def test_finished_execution_sends_the_rest_then_closes(key):
    execution = DagExecutionFactory(status="running")
    emit_started(execution.id, "001")
    emit_completed(execution.id)
    socket = open_socket(f"/ws/dag-executions/{execution.id}/?token={key}&lastEventId=1")
    assert receive(socket)["event"] == "execution.updated"
    assert receive(socket)["event"] == "execution.completed"
    assert receive_close(socket)["code"] == 1000
    disconnect(socket)


def test_a_suspended_execution_keeps_the_socket_open_with_heartbeats_until_it_completes(
    key, settings
):
    settings.SSE_HEARTBEAT_SECONDS = 0.2
    execution = DagExecutionFactory(status="running")
    emit_execution_event(
        execution_id=execution.id, type="execution.suspended", payload={"reason": "r"}
    )
    DagExecution.objects.filter(pk=execution.id).update(status="suspended")
    socket = open_socket(f"/ws/dag-executions/{execution.id}/?token={key}")
    assert receive(socket)["event"] == "execution.updated"
    assert receive(socket)["event"] == "execution.suspended"
    assert receive(socket, timeout=5) == {"id": None, "event": "heartbeat", "data": {}}

    DagExecution.objects.filter(pk=execution.id).update(status="running")
    emit_execution_event(
        execution_id=execution.id, type="execution.resumed", payload={"totalTasks": 1}
    )
    emit_completed(execution.id)
    seen = []
    while len(seen) < 2:
        message = receive(socket, timeout=5)
        if message["event"] != "heartbeat":
            seen.append((message["id"], message["event"]))
    assert seen == [(2, "execution.resumed"), (3, "execution.completed")]
    assert receive_close(socket)["code"] == 1000
    disconnect(socket)
