"""Real `celery beat` (DatabaseScheduler) and a real worker fire `* * * * *` schedules: a DAG gets
a new execution and a goal a new run within about a minute, next to a row beat cannot schedule;
a DAG and a goal paused while beat runs do not fire.

Slow by nature (cron has minute granularity): up to about a minute, once in ten runs two.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import timedelta
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

# How often celery beat's database scheduler looks for changed schedules, at most.
BEAT_LOOP_SECONDS = 5

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.timeout(240)]


def start(fake_llm, tmp_path: Path, *arguments: str) -> subprocess.Popen:
    log = (tmp_path / f"{arguments[0]}-{uuid.uuid4().hex[:6]}.log").open("wb")
    return celery_process(fake_llm, *arguments, output=log)


def test_beat_fires_schedules_next_to_a_row_it_cannot_schedule_and_pausing_stops_them(
    api, fake_llm, tmp_path
):
    """A DAG cron and a goal cron fire on the minute and their work finishes. Next to them, a
    cron no date matches, written straight into the database (around every check): beat
    disables it, says why on the goal schedule, and keeps ticking. A second DAG cron and goal
    cron, paused while beat runs, do not fire at the boundary where the others do. (One beat
    and one minute boundary for all of it: each boundary waited for costs up to a minute.)"""
    AgentFactory(name="InferenceAgent", active=True)
    AgentFactory(name="defaultAgent", active=True, prompt_template="Pursue {{objective}}")
    dag, paused_dag = DagFactory(result=decomposer_job(1)), DagFactory(result=decomposer_job(1))
    for each in (dag, paused_dag):
        assert (
            api.patch(
                f"/api/v1/dags/{each.id}",
                {"cronSchedule": "* * * * *", "scheduleActive": True, "timezone": "Europe/Paris"},
                format="json",
            ).status_code
            == 200
        )
    goal_id, paused_goal_id = (
        api.post(
            "/api/v1/goals",
            {
                "objective": f"Report the state of the solar market ({which})",
                "schedule": {"cronExpr": "* * * * *", "timezone": "Asia/Kolkata"},
            },
            format="json",
        ).json()["id"]
        for which in ("kept", "paused")
    )
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
        # Recorded when beat loads its schedule: every cron above is in it, enabled.
        wait_for(
            lambda: Schedule.objects.filter(pk=bad.pk, error__isnull=False).exists(),
            timeout=60,
            message="the bad row's failure recorded",
        )
        assert not PeriodicTask.objects.get(name=goal_task_name(bad.id)).enabled
        schedule = api.get(f"/api/v1/goals/{bad.goal_id}").json()["schedules"][0]
        assert "unable to rollover" in schedule["error"]
        assert schedule["errorAt"] is not None

        paused = api.patch(
            f"/api/v1/dags/{paused_dag.id}", {"scheduleActive": False}, format="json"
        )
        assert paused.status_code == 200
        assert api.post(f"/api/v1/goals/{paused_goal_id}/pause").status_code == 200
        # Beat looks for changed schedules at least every 5 s: from then on, a boundary that
        # fires the others must leave the paused ones alone.
        seen_by = now() + timedelta(seconds=BEAT_LOOP_SECONDS + 1)
        wait_for(
            lambda: (
                DagExecution.objects.filter(dag=dag, created_at__gte=seen_by).exists()
                and Run.objects.filter(
                    goal_id=goal_id, trigger="schedule", created_at__gte=seen_by
                ).exists()
            ),
            timeout=130,
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
        # The paused ones' messages would have gone with the others' at the same boundary and
        # been done by now, on the same worker.
        assert not DagExecution.objects.filter(dag=paused_dag, created_at__gte=seen_by).exists()
        assert not Run.objects.filter(goal_id=paused_goal_id, created_at__gte=seen_by).exists()
    finally:
        for process in (beat, worker):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
