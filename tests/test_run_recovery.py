"""MAX_CONCURRENT_RUNS never stays exhausted: a run whose worker is SIGKILLed is found by its
lapsed lease and failed, its slot is free again, and a new worker runs the next run."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from runs.models import Run
from tests.factories import AgentFactory, GoalFactory
from tests.fakes.openai_server import ChatReply
from tests.processes import worker_process
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def start_worker(fake_llm) -> subprocess.Popen:
    return worker_process(fake_llm, {"RUN_LEASE_SECONDS": "2", "RUN_HEARTBEAT_SECONDS": "0.5"})


def test_limit_recovers_after_the_worker_of_a_running_run_is_killed(api, fake_llm, settings):
    settings.MAX_CONCURRENT_RUNS = 1
    settings.RUN_LEASE_SECONDS = 2
    agent = AgentFactory(name="defaultAgent", active=True, prompt_template="Pursue {{objective}}")
    goal = GoalFactory(agent=agent)
    slow = {"on": True}

    def reply(request: dict) -> ChatReply:
        if slow["on"]:
            return ChatReply(content="never delivered", delay=30)
        return ChatReply(content="Finished quickly.")

    fake_llm.responder = reply
    first = start_worker(fake_llm)
    second = None
    try:
        stuck_id = api.post(f"/api/v1/goals/{goal.id}/run").json()["runId"]
        wait_for(lambda: fake_llm.call_count >= 1, message="the first run calling the model")
        assert Run.objects.get(pk=stuck_id).status == "running"

        refused = api.post(f"/api/v1/goals/{goal.id}/run")
        assert refused.status_code == 429

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        slow["on"] = False
        # No heartbeat any more: once the lease lapses, the next trigger frees the slot.
        wait_for(
            lambda: Run.objects.get(pk=stuck_id).lease_expires_at.timestamp() < time.time(),
            timeout=10,
            message="the dead worker's lease lapsing",
        )
        accepted = api.post(f"/api/v1/goals/{goal.id}/run")
        assert accepted.status_code == 200, accepted.content
        stuck = Run.objects.get(pk=stuck_id)
        assert stuck.status == "failed"
        assert "lease lapsed" in stuck.error

        second = start_worker(fake_llm)
        next_id = accepted.json()["runId"]
        wait_for(
            lambda: Run.objects.filter(pk=next_id, status="completed").exists(),
            message="the next run completing on the new worker",
        )
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=15)

    done = Run.objects.get(pk=next_id)
    assert done.working_memory["summary"] == "Finished quickly."
    # the killed run was not re-run by the new worker
    assert Run.objects.get(pk=stuck_id).status == "failed"
