"""Live events end to end: a real daphne process serving SSE and WebSocket over real sockets,
events emitted by this process and by a real Celery worker, published on the real Redis."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect as websocket_connect

from config.celery import app as celery_app
from config.embedded_redis import free_port, wait_for_port
from dags.events import EXECUTION_EVENTS, emit_execution_event
from dags.models import DagExecution
from tests.factories import DEFAULT_OWNER, DagExecutionFactory, TokenFactory, UserFactory
from tests.processes import child_database_env
from tests.sse_client import HttpSseClient, subscribed_processes, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

DAPHNE = Path(sys.executable).with_name("daphne")


@celery_app.task(name="tests.events_e2e.emit_execution_events")
def emit_execution_events(execution_id: str, tasks: int) -> None:
    """What an executor does, from a worker thread: sub-step events, then the terminal one."""
    emit_execution_event(
        execution_id=execution_id,
        type="execution.started",
        payload={"totalTasks": tasks, "originalRequest": "demo"},
    )
    for number in range(1, tasks + 1):
        task_id = f"{number:03d}"
        emit_execution_event(
            execution_id=execution_id,
            type="substep.started",
            payload={"subStepId": task_id, "description": "demo"},
        )
        emit_execution_event(
            execution_id=execution_id,
            type="substep.completed",
            payload={"subStepId": task_id, "durationMs": 1, "result": "ok"},
        )
    DagExecution.objects.filter(pk=execution_id).update(status="completed", completed_tasks=tasks)
    emit_execution_event(
        execution_id=execution_id,
        type="execution.completed",
        payload={
            "status": "completed",
            "completedTasks": tasks,
            "failedTasks": 0,
            "durationMs": 5,
            "finalResult": "done",
        },
    )


@pytest.fixture(scope="module")
def daphne_server(django_db_setup, tmp_path_factory) -> Iterator[int]:
    """One server for the module; each test still gets clean tables (transactional_db)."""
    tmp_path = tmp_path_factory.mktemp("daphne")
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ASYNC_AGENT_SKIP_DOTENV": "1",
        "REDIS_URL": settings.REDIS_URL,
        "SSE_HEARTBEAT_SECONDS": "1",
        "CORS_ALLOWED_ORIGINS": "http://ui.example.test",
        **child_database_env(),
    }
    if connection.vendor == "sqlite":
        env.pop("DATABASE_URL", None)
    log = (tmp_path / "daphne.log").open("wb")
    process = subprocess.Popen(
        [str(DAPHNE), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30)
        # The first request loads the URLconf and every view module; do it before the tests.
        warm_up = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        warm_up.request("GET", "/health")
        assert warm_up.getresponse().status == 200
        warm_up.close()
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
        if process.returncode not in (0, -15, 1):
            print((tmp_path / "daphne.log").read_text())


@pytest.fixture
def key(transactional_db) -> str:
    return TokenFactory(user=UserFactory(username=DEFAULT_OWNER)).key


def sse(port: int, execution_id: str, key: str, **headers: str) -> HttpSseClient:
    return HttpSseClient(
        "127.0.0.1",
        port,
        f"/api/v1/dag-executions/{execution_id}/events",
        headers={"Authorization": f"Token {key}", **headers},
    )


def test_events_arrive_one_by_one_unbuffered_and_the_stream_ends(daphne_server, key):
    execution = DagExecutionFactory(status="running")
    client = sse(daphne_server, execution.id, key, Origin="http://ui.example.test")
    try:
        assert client.status == 200
        assert client.header("Content-Type").startswith("text/event-stream")
        assert client.header("Cache-Control") == "no-cache"
        assert client.header("X-Accel-Buffering") == "no"
        assert client.header("Access-Control-Allow-Origin") == "http://ui.example.test"
        assert client.next_event().event == "execution.updated"
        # Lockstep: each event must reach the socket before the next one is even emitted.
        for number in range(1, 11):
            emit_execution_event(
                execution_id=execution.id,
                type="substep.started",
                payload={"subStepId": f"{number:03d}", "description": "step"},
            )
            frame = client.next_event(timeout=5)
            assert (frame.id, frame.event) == (number, "substep.started")
            assert frame.data["taskId"] == number
        DagExecution.objects.filter(pk=execution.id).update(status="completed")
        emit_execution_event(
            execution_id=execution.id,
            type="execution.completed",
            payload={
                "status": "completed",
                "completedTasks": 10,
                "failedTasks": 0,
                "durationMs": 1,
                "finalResult": "done",
            },
        )
        final = client.next_event(timeout=5)
        assert (final.id, final.event) == (11, "execution.completed")
        assert client.next_frame(timeout=5) is None  # the server ended the response
    finally:
        client.close()

    again = sse(daphne_server, execution.id, key, **{"Last-Event-ID": "11"})
    assert again.status == 204
    again.close()


def test_heartbeats_on_an_idle_stream(daphne_server, key):
    execution = DagExecutionFactory(status="running")
    client = sse(daphne_server, execution.id, key)
    try:
        assert client.next_frame().event == "execution.updated"
        assert client.next_frame(timeout=5).is_heartbeat
    finally:
        client.close()


@pytest.mark.worker
def test_events_from_a_real_worker_reach_a_client_of_the_real_server(
    daphne_server, key, celery_worker_thread
):
    execution = DagExecutionFactory(status="running")
    client = sse(daphne_server, execution.id, key)
    try:
        assert client.next_event().event == "execution.updated"
        emit_execution_events.delay(execution.id, 5)
        frames = []
        while (frame := client.next_event(timeout=30)) is not None:
            frames.append(frame)
        assert [f.id for f in frames] == list(range(1, 13))
        assert frames[0].event == "execution.started"
        assert frames[-1].event == "execution.completed"
    finally:
        client.close()


def test_closing_the_socket_stops_the_stream_and_leaves_the_group(daphne_server, key):
    execution = DagExecutionFactory(status="running")
    group = EXECUTION_EVENTS.group_name(execution.id)
    client = sse(daphne_server, execution.id, key)
    assert client.next_event().event == "execution.updated"
    # The server process subscribes to the execution's channel while it has a follower.
    assert wait_until(lambda: subscribed_processes(group) == 1)
    client.close()
    assert wait_until(lambda: subscribed_processes(group) == 0, timeout=10)


def test_websocket_through_the_real_server(daphne_server, key):
    execution = DagExecutionFactory(status="running")
    emit_execution_event(
        execution_id=execution.id,
        type="execution.started",
        payload={"totalTasks": 1, "originalRequest": "demo"},
    )
    url = f"ws://127.0.0.1:{daphne_server}/ws/dag-executions/{execution.id}/?token={key}"
    with websocket_connect(url, origin=f"http://127.0.0.1:{daphne_server}") as socket:
        assert json.loads(socket.recv(timeout=10))["event"] == "execution.updated"
        replayed = json.loads(socket.recv(timeout=10))
        assert (replayed["id"], replayed["event"]) == (1, "execution.started")
        started = time.monotonic()
        emit_execution_event(
            execution_id=execution.id,
            type="substep.started",
            payload={"subStepId": "001", "description": "d"},
        )
        live = json.loads(socket.recv(timeout=10))
        assert (live["id"], live["data"]["subStepId"]) == (2, "001")
        assert time.monotonic() - started < 5
        DagExecution.objects.filter(pk=execution.id).update(status="cancelled")
        emit_execution_event(
            execution_id=execution.id,
            type="execution.cancelled",
            payload={"reason": "stopped by a user"},
        )
        assert json.loads(socket.recv(timeout=10))["event"] == "execution.cancelled"
        # A cancelled execution can still be resumed: the socket stays open until it completes.
        DagExecution.objects.filter(pk=execution.id).update(status="completed")
        emit_execution_event(
            execution_id=execution.id,
            type="execution.completed",
            payload={"status": "completed", "completedTasks": 1, "failedTasks": 0},
        )
        assert json.loads(socket.recv(timeout=10))["event"] == "execution.completed"
        with pytest.raises(ConnectionClosedOK):
            socket.recv(timeout=10)
        assert socket.close_code == 1000


def test_websocket_from_a_foreign_origin_is_refused(daphne_server, key):
    execution = DagExecutionFactory(status="running")
    url = f"ws://127.0.0.1:{daphne_server}/ws/dag-executions/{execution.id}/?token={key}"
    with pytest.raises(InvalidStatus) as refused:
        websocket_connect(url, origin="http://evil.example.test", open_timeout=10)
    assert refused.value.response.status_code == 403
