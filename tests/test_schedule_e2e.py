"""Real `celery beat` (DatabaseScheduler) and a real worker fire `* * * * *` schedules: a DAG gets
a new execution and a goal a new run within about a minute; after pausing, nothing more fires.

Slow by nature (cron has minute granularity): up to about two minutes.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.utils.timezone import now

from dags.models import DagExecution
from goals.models import ScheduleTick
from runs.models import Run
from tests.factories import AgentFactory, DagFactory, decomposer_job
from tests.processes import celery_process, wait_for

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(240)]


def start(fake_llm, tmp_path: Path, *arguments: str) -> subprocess.Popen:
    log = (tmp_path / f"{arguments[0]}-{uuid.uuid4().hex[:6]}.log").open("wb")
    return celery_process(fake_llm, *arguments, output=log)


def test_beat_and_a_worker_fire_schedules_and_pausing_stops_them(api, fake_llm, tmp_path):
    AgentFactory(name="InferenceAgent", active=True)
    AgentFactory(name="defaultAgent", active=True, prompt_template="Pursue {{objective}}")
    dag = DagFactory(result=decomposer_job(1))
    assert (
        api.patch(
            f"/api/v1/dags/{dag.id}",
            {"cronSchedule": "* * * * *", "scheduleActive": True, "timezone": "Europe/Paris"},
            format="json",
        ).status_code
        == 200
    )
    goal_id = api.post(
        "/api/v1/goals",
        {
            "objective": "Report the state of the solar market",
            "schedule": {"cronExpr": "* * * * *", "timezone": "Asia/Kolkata"},
        },
        format="json",
    ).json()["id"]

    worker = start(
        fake_llm, tmp_path, "worker", "--pool", "threads", "--concurrency", "4",
        "-n", f"sched-{uuid.uuid4().hex[:8]}@%h",
    )  # fmt: skip
    beat = start(
        fake_llm, tmp_path, "beat", "--pidfile=", "--schedule", str(tmp_path / "beat-schedule")
    )
    try:
        wait_for(
            lambda: (
                DagExecution.objects.filter(dag=dag).exists()
                and Run.objects.filter(goal_id=goal_id, trigger="schedule").exists()
            ),
            timeout=90,
            message="a scheduled execution and a scheduled run",
        )
        wait_for(
            lambda: (
                DagExecution.objects.filter(dag=dag, status="completed").exists()
                and Run.objects.filter(goal_id=goal_id, status="completed").exists()
            ),
            timeout=30,
            message="both finishing",
        )
        dag.refresh_from_db()
        assert dag.last_run_at is not None
        assert ScheduleTick.objects.filter(dag=dag, outcome="started").exists()

        api.patch(f"/api/v1/dags/{dag.id}", {"scheduleActive": False}, format="json")
        api.post(f"/api/v1/goals/{goal_id}/pause")
        executions = DagExecution.objects.filter(dag=dag).count()
        runs = Run.objects.filter(goal_id=goal_id).count()
        # Past the next minute boundary (plus beat's 5 s loop): nothing new may start.
        seconds_to_boundary = 60 - now().second
        time.sleep(seconds_to_boundary + 10)
        assert DagExecution.objects.filter(dag=dag).count() == executions
        assert Run.objects.filter(goal_id=goal_id).count() == runs
    finally:
        for process in (beat, worker):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
