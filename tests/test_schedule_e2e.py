"""Real `celery beat` (DatabaseScheduler) and a real worker fire `* * * * *` schedules: a DAG gets
a new execution and a goal a new run within about a minute, next to a row beat cannot schedule;
after pausing, nothing more fires.

Slow by nature (cron has minute granularity): up to about two minutes.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.utils.timezone import now
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from dags.models import DagExecution
from goals.models import Schedule, SchedulerHeartbeat, ScheduleTick
from goals.schedules import GOAL_TICK_TASK, goal_task_name
from runs.models import Run
from tests.factories import AgentFactory, DagFactory, ScheduleFactory, decomposer_job
from tests.processes import celery_process
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(240)]


def start(fake_llm, tmp_path: Path, *arguments: str) -> subprocess.Popen:
    log = (tmp_path / f"{arguments[0]}-{uuid.uuid4().hex[:6]}.log").open("wb")
    return celery_process(fake_llm, *arguments, output=log)


def test_beat_fires_schedules_next_to_a_row_it_cannot_schedule_and_pausing_stops_them(
    api, fake_llm, tmp_path
):
    """A DAG cron and a goal cron fire on the minute and their work finishes. Next to them, a
    cron no date matches, written straight into the database (around every check): beat
    disables it, says why on the goal schedule, and keeps ticking. After pausing, nothing more
    fires. (One beat for all of it: each minute boundary waited for costs up to a minute.)"""
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
    # Every hour, so that beat (which only loads crons due within a few hours) reads it now.
    bad = ScheduleFactory(cron_expr="0 * 30 2 *")
    never = CrontabSchedule.objects.create(
        minute="0", hour="*", day_of_month="30", month_of_year="2", day_of_week="*",
        timezone="UTC",
    )  # fmt: skip
    PeriodicTask.objects.create(
        name=goal_task_name(bad.id),
        task=GOAL_TICK_TASK,
        kwargs=json.dumps({"schedule_id": bad.id}),
        crontab=never,
        enabled=True,
        last_run_at=now(),
    )

    worker = start(
        fake_llm, tmp_path, "worker", "--pool", "threads", "--concurrency", "4",
        "-n", f"sched-{uuid.uuid4().hex[:8]}@%h",
    )  # fmt: skip
    beat = start(
        fake_llm, tmp_path, "beat", "--pidfile=", "--schedule", str(tmp_path / "beat-schedule")
    )
    try:
        wait_for(
            lambda: Schedule.objects.filter(pk=bad.pk, error__isnull=False).exists(),
            timeout=60,
            message="the bad row's failure recorded",
        )
        assert not PeriodicTask.objects.get(name=goal_task_name(bad.id)).enabled
        schedule = api.get(f"/api/v1/goals/{bad.goal_id}").json()["schedules"][0]
        assert "unable to rollover" in schedule["error"]
        assert schedule["errorAt"] is not None

        wait_for(
            lambda: (
                DagExecution.objects.filter(dag=dag).exists()
                and Run.objects.filter(goal_id=goal_id, trigger="schedule").exists()
            ),
            timeout=90,
            message="a scheduled execution and a scheduled run, next to the bad row",
        )
        assert beat.poll() is None, "beat died"
        heartbeat = SchedulerHeartbeat.objects.get(name="beat")
        assert (now() - heartbeat.ticked_at).total_seconds() < 30
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
