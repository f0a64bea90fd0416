"""One id per API request: echoed in the response, carried into the Celery tasks the request
causes, and written on the worker's log lines of those tasks (here in the JSON log format)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import redis
from django.conf import settings

from config.broker import EPOCH_KEY
from runs.models import Run
from tests.factories import AgentFactory, GoalFactory
from tests.fakes.openai_server import ChatReply
from tests.processes import ROOT, wait_for, wait_for_workers, worker_process


@pytest.mark.django_db
def test_the_response_echoes_the_clients_id_or_a_new_one(api):
    sent = api.get("/api/v1/goals", HTTP_X_REQUEST_ID="client-id.42")
    assert sent["X-Request-ID"] == "client-id.42"

    made = api.get("/api/v1/goals")["X-Request-ID"]
    assert len(made) == 32 and made != api.get("/api/v1/goals")["X-Request-ID"]

    # An id that could forge a log line is replaced, not logged.
    forged = api.get("/api/v1/goals", HTTP_X_REQUEST_ID="x\nERROR fake line")["X-Request-ID"]
    assert "\n" not in forged and len(forged) == 32


@pytest.mark.django_db
def test_requests_served_asynchronously_echo_the_id_too():
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    response = async_to_sync(AsyncClient().get)("/health", headers={"X-Request-ID": "async-1"})
    assert response.status_code == 200
    assert response["X-Request-ID"] == "async-1"


def json_lines(text: str) -> list[dict]:
    records = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:  # not every line is a log record (e.g. Celery's start-up banner)
            continue
    return records


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_request_id_appears_on_the_workers_log_lines_of_the_task_it_caused(
    api, fake_llm, tmp_path
):
    AgentFactory(name="defaultAgent", active=True)
    goal = GoalFactory(params={"allowedTools": []})
    fake_llm.responder = lambda request: ChatReply(content="done")
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = worker_process(
            fake_llm, extra_env={"LOG_FORMAT": "json"}, output=log, loglevel="INFO"
        )
    try:
        wait_for_workers(1)
        # After the dispatcher's first look at the broker: on a fresh broker that pass sends
        # pending runs again (see config.dispatcher), and a copy sent again by no request has
        # only its task id.
        broker = redis.Redis.from_url(settings.REDIS_URL)
        wait_for(lambda: broker.exists(EPOCH_KEY), message="the dispatcher's first pass")
        response = api.post(
            f"/api/v1/goals/{goal.id}/run", {}, format="json", HTTP_X_REQUEST_ID="req-7f3a"
        )
        run_id = response.json()["runId"]
        wait_for(
            lambda: Run.objects.filter(pk=run_id, status="completed").exists(),
            message="the run completed",
        )

        def run_lines() -> list[dict]:
            lines = json_lines(log_path.read_text(errors="replace"))
            return [r for r in lines if run_id in r.get("message", "")]

        wait_for(lambda: any("completed" in r["message"] for r in run_lines()))
    finally:
        worker.terminate()
        worker.wait(15)

    lines = run_lines()
    assert {r["logger"] for r in lines} >= {"runs.services"}
    assert all(r["request_id"] == "req-7f3a" for r in lines), lines
    assert all({"time", "level", "logger", "message"} <= set(r) for r in lines)


def test_log_format_json_writes_one_object_per_line_outside_any_request():
    env = {**os.environ, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    script = "import logging; logging.getLogger('probe').warning('hello %s', 'there')"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (record,) = [r for r in json_lines(result.stderr) if r.get("logger") == "probe"]
    assert (record["level"], record["message"], record["request_id"]) == (
        "WARNING",
        "hello there",
        "-",
    )
