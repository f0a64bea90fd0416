"""Goal and DAG schedules as django-celery-beat rows : kept in sync by every change, fired
in the stored time zone across DST changes, caught up once after downtime, overlaps skipped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from dags.models import DagExecution
from dags.schedules import dag_task_name
from goals.models import Schedule, ScheduleTick
from goals.schedules import goal_task_name, schedules_sync_all
from goals.ticks import dag_schedule_fire, goal_schedule_fire
from runs.models import Run
from tests.factories import DagExecutionFactory, DagFactory, GoalFactory, RunFactory, decomposer_job

pytestmark = pytest.mark.django_db

OBJECTIVE = "Summarise the week's news about solar power"


def goal_row(schedule_id: str) -> PeriodicTask:
    return PeriodicTask.objects.select_related("crontab").get(name=goal_task_name(schedule_id))


def cron_of(row: PeriodicTask) -> tuple[str, str]:
    c = row.crontab
    fields = f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"
    return fields, str(c.timezone)


# --- rows follow every change -------------------------------------------------------------------
def test_goal_schedule_rows_follow_create_pause_resume_patch_and_delete(api):
    body = api.post(
        "/api/v1/goals",
        {"objective": OBJECTIVE, "schedule": {"cronExpr": "@daily", "timezone": "Europe/Paris"}},
        format="json",
    ).json()
    schedule = Schedule.objects.get(goal_id=body["id"])
    row = goal_row(schedule.id)
    assert row.task == "goals.goal_schedule_tick"
    assert json.loads(row.kwargs) == {"schedule_id": schedule.id}
    assert row.enabled is True
    assert cron_of(row) == ("0 0 * * *", "Europe/Paris")

    api.post(f"/api/v1/goals/{body['id']}/pause")
    assert goal_row(schedule.id).enabled is False

    stale = datetime(2020, 1, 1, tzinfo=UTC)
    PeriodicTask.objects.filter(pk=row.pk).update(last_run_at=stale)
    api.post(f"/api/v1/goals/{body['id']}/resume", {}, format="json")
    resumed = goal_row(schedule.id)
    assert resumed.enabled is True
    # resuming counts from now: no burst of ticks "missed" while paused
    assert resumed.last_run_at > stale + timedelta(days=365)

    api.patch(f"/api/v1/goals/{body['id']}", {"status": "archived"}, format="json")
    assert goal_row(schedule.id).enabled is False
    api.patch(f"/api/v1/goals/{body['id']}", {"status": "active"}, format="json")
    assert goal_row(schedule.id).enabled is True

    assert api.delete(f"/api/v1/goals/{body['id']}").status_code == 204
    assert not PeriodicTask.objects.filter(name=goal_task_name(schedule.id)).exists()
    unused = CrontabSchedule.objects.filter(minute="0", hour="0", timezone="Europe/Paris")
    assert not unused.exists()


def test_dag_schedule_rows_follow_patch_and_delete(api):
    dag = DagFactory()
    url = f"/api/v1/dags/{dag.id}"
    name = dag_task_name(dag.id)
    assert not PeriodicTask.objects.filter(name=name).exists()

    response = api.patch(
        url,
        {"cronSchedule": "30 8 * * 1-5", "scheduleActive": True, "timezone": "Asia/Tokyo"},
        format="json",
    )
    assert response.status_code == 200
    row = PeriodicTask.objects.get(name=name)
    assert (row.task, row.enabled) == ("goals.dag_schedule_tick", True)
    assert json.loads(row.kwargs) == {"dag_id": dag.id}
    assert cron_of(row) == ("30 8 * * 1-5", "Asia/Tokyo")

    # the stored time zone is kept when only the cron changes
    api.patch(url, {"cronSchedule": "0 7 * * *"}, format="json")
    assert cron_of(PeriodicTask.objects.get(name=name)) == ("0 7 * * *", "Asia/Tokyo")
    api.patch(url, {"timezone": "America/Chicago"}, format="json")
    assert cron_of(PeriodicTask.objects.get(name=name)) == ("0 7 * * *", "America/Chicago")

    api.patch(url, {"scheduleActive": False}, format="json")
    assert PeriodicTask.objects.get(name=name).enabled is False
    api.patch(url, {"scheduleActive": True}, format="json")
    assert PeriodicTask.objects.get(name=name).enabled is True

    api.patch(url, {"cronSchedule": ""}, format="json")
    assert not PeriodicTask.objects.filter(name=name).exists()

    api.patch(url, {"cronSchedule": "* * * * *", "scheduleActive": True}, format="json")
    assert PeriodicTask.objects.filter(name=name).exists()
    assert api.delete(f"/api/v1/dag/{dag.id}").status_code == 200
    assert not PeriodicTask.objects.filter(name=name).exists()


def test_a_dag_that_cannot_be_deleted_keeps_its_row(api):
    dag = DagFactory(cron_schedule="0 9 * * *", schedule_active=True)
    api.patch(f"/api/v1/dags/{dag.id}", {"scheduleActive": True}, format="json")
    DagExecutionFactory(dag=dag)

    assert api.delete(f"/api/v1/dags/{dag.id}").status_code == 409
    assert PeriodicTask.objects.filter(name=dag_task_name(dag.id)).exists()


def test_invalid_cron_and_zone_are_400(api):
    bad_cron = api.post(
        "/api/v1/goals",
        {"objective": OBJECTIVE, "schedule": {"cronExpr": "61 * * * *"}},
        format="json",
    )
    bad_zone = api.patch(
        f"/api/v1/dags/{DagFactory().id}", {"timezone": "Mars/Olympus"}, format="json"
    )
    assert bad_cron.status_code == 400
    assert bad_cron.json()["validation_errors"][0]["path"] == ["schedule", "cronExpr"]
    assert bad_zone.status_code == 400
    assert not PeriodicTask.objects.filter(task__startswith="goals.").exists()


def test_sync_all_rebuilds_rows_and_drops_stale_ones():
    goal = GoalFactory()
    schedule = Schedule.objects.create(goal=goal, cron_expr="0 6 * * *", timezone="UTC")
    dag = DagFactory(cron_schedule="0 9 * * *", schedule_active=True)
    PeriodicTask.objects.create(
        name=goal_task_name("sched_gone"),
        task="goals.goal_schedule_tick",
        crontab=CrontabSchedule.objects.create(minute="1"),
    )

    counts = schedules_sync_all()

    assert counts == {"goalSchedules": 1, "dagSchedules": 1, "removed": 1}
    assert PeriodicTask.objects.filter(name=goal_task_name(schedule.id), enabled=True).exists()
    assert PeriodicTask.objects.filter(name=dag_task_name(dag.id), enabled=True).exists()
    assert not PeriodicTask.objects.filter(name=goal_task_name("sched_gone")).exists()


# --- time zones, DST and catch-up with a frozen clock -------------------------------------------
def fire_times(row: PeriodicTask, start: datetime, end: datetime) -> list[datetime]:
    """When beat's own entry for the row says "due", checked minute by minute."""
    fired = []
    with time_machine.travel(start, tick=False) as clock:
        entry = ModelEntry(row)
        moment = start
        while moment < end:
            if entry.is_due().is_due:
                fired.append(moment)
                entry = next(entry)  # what beat does when it sends the task
            moment += timedelta(minutes=1)
            clock.move_to(moment)
    return fired


def test_schedule_fires_at_local_time_across_a_dst_change(api):
    start = datetime(2026, 3, 6, 0, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        goal = api.post(
            "/api/v1/goals",
            {
                "objective": OBJECTIVE,
                "schedule": {"cronExpr": "0 9 * * *", "timezone": "America/New_York"},
            },
            format="json",
        ).json()
    row = goal_row(Schedule.objects.get(goal_id=goal["id"]).id)

    fired = fire_times(row, start, start + timedelta(days=4))

    new_york = ZoneInfo("America/New_York")
    assert [moment.astimezone(new_york).strftime("%m-%d %H:%M") for moment in fired] == [
        "03-06 09:00",
        "03-07 09:00",
        "03-08 09:00",  # the first day of daylight saving time
        "03-09 09:00",
    ]
    assert [moment.hour for moment in fired] == [14, 14, 13, 13]  # UTC


def test_times_skipped_or_repeated_by_dst_fire_once(api):
    paris = ZoneInfo("Europe/Paris")
    dag = DagFactory()
    start = datetime(2026, 3, 28, 0, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        api.patch(
            f"/api/v1/dags/{dag.id}",
            {"cronSchedule": "30 2 * * *", "scheduleActive": True, "timezone": "Europe/Paris"},
            format="json",
        )
    row = PeriodicTask.objects.get(name=dag_task_name(dag.id))
    spring = fire_times(row, start, start + timedelta(days=3))
    assert [m.astimezone(paris).strftime("%m-%d %H:%M") for m in spring] == [
        "03-28 02:30",
        "03-29 03:30",  # 02:30 does not exist that night: once, right after the jump
        "03-30 02:30",
    ]

    autumn_start = datetime(2026, 10, 24, 0, 0, tzinfo=UTC)
    PeriodicTask.objects.filter(pk=row.pk).update(last_run_at=autumn_start)
    autumn = fire_times(
        PeriodicTask.objects.get(pk=row.pk), autumn_start, autumn_start + timedelta(days=3)
    )
    assert [m.astimezone(paris).strftime("%m-%d %H:%M %Z") for m in autumn] == [
        "10-24 02:30 CEST",
        "10-25 02:30 CEST",  # 02:30 happens twice that night: fired once
        "10-26 02:30 CET",
    ]


def test_a_missed_tick_is_caught_up_once_after_downtime():
    goal = GoalFactory()
    with time_machine.travel(datetime(2026, 5, 1, 12, 0, tzinfo=UTC), tick=False):
        schedule = Schedule.objects.create(goal=goal, cron_expr="*/10 * * * *")
        from goals.schedules import goal_schedule_sync

        goal_schedule_sync(schedule=schedule)
    row = goal_row(schedule.id)
    # Beat was down from 12:00 to 15:05: 18 ticks were missed.
    back = datetime(2026, 5, 1, 15, 5, tzinfo=UTC)

    fired = fire_times(row, back, back + timedelta(minutes=30))

    assert [m.strftime("%H:%M") for m in fired] == ["15:05", "15:10", "15:20", "15:30"]


# --- what a tick does ---------------------------------------------------------------------------
def test_goal_tick_starts_a_scheduled_run_once_per_period_and_sets_last_run_at():
    goal = GoalFactory()
    schedule = Schedule.objects.create(goal=goal, cron_expr="0 * * * *")

    with time_machine.travel(datetime(2026, 5, 1, 10, 0, 2, tzinfo=UTC), tick=False):
        tick = goal_schedule_fire(schedule_id=schedule.id)
        # a duplicate message of the same tick (second beat, backlog) does nothing
        assert goal_schedule_fire(schedule_id=schedule.id) is None

    assert tick.outcome == "started"
    run = Run.objects.get(goal=goal)
    assert tick.run_id == run.id
    assert (run.trigger, run.status) == ("schedule", "pending")
    schedule.refresh_from_db()
    assert schedule.last_run_at == datetime(2026, 5, 1, 10, 0, 2, tzinfo=UTC)
    assert ScheduleTick.objects.count() == 1


def test_goal_tick_is_skipped_while_a_run_of_the_goal_is_active_or_at_the_limit(settings):
    goal = GoalFactory()
    schedule = Schedule.objects.create(goal=goal, cron_expr="* * * * *")
    lease = datetime(2099, 1, 1, tzinfo=UTC)
    busy = RunFactory(goal=goal, status="running", lease_expires_at=lease)

    overlap = goal_schedule_fire(schedule_id=schedule.id)

    assert overlap.outcome == "skipped"
    assert busy.id in overlap.reason
    schedule.refresh_from_db()
    assert schedule.last_run_at is None  # nothing started

    Run.objects.filter(pk=busy.pk).update(status="completed")
    settings.MAX_CONCURRENT_RUNS = 1
    RunFactory(status="pending")
    limited = goal_schedule_fire(schedule_id=schedule.id)
    assert limited.outcome == "skipped"
    assert "Maximum concurrent runs (1)" in limited.reason
    schedule.refresh_from_db()
    assert schedule.last_run_at is None


def test_dag_tick_starts_an_execution_and_skips_while_it_is_in_flight():
    dag = DagFactory(cron_schedule="* * * * *", schedule_active=True)

    with time_machine.travel(datetime(2026, 5, 1, 10, 0, 1, tzinfo=UTC), tick=False):
        started = dag_schedule_fire(dag_id=dag.id)
    with time_machine.travel(datetime(2026, 5, 1, 10, 1, 1, tzinfo=UTC), tick=False):
        skipped = dag_schedule_fire(dag_id=dag.id)

    execution = DagExecution.objects.get(dag=dag)
    assert started.outcome == "started" and started.execution_id == execution.id
    assert execution.status == "running"
    assert skipped.outcome == "skipped"
    assert execution.id in skipped.reason
    dag.refresh_from_db()
    assert dag.last_run_at == datetime(2026, 5, 1, 10, 0, 1, tzinfo=UTC)

    DagExecution.objects.filter(pk=execution.pk).update(status="completed")
    with time_machine.travel(datetime(2026, 5, 1, 10, 2, 1, tzinfo=UTC), tick=False):
        again = dag_schedule_fire(dag_id=dag.id)
    assert again.outcome == "started"
    assert DagExecution.objects.filter(dag=dag).count() == 2


def test_dag_tick_with_a_plan_that_cannot_run_is_a_recorded_failure():
    dag = DagFactory(
        cron_schedule="* * * * *",
        schedule_active=True,
        result=decomposer_job(1, clarification_needed=True, clarification_query="Which city?"),
    )

    tick = dag_schedule_fire(dag_id=dag.id)

    assert tick.outcome == "failed"
    assert "clarification" in tick.reason
    assert not DagExecution.objects.filter(dag=dag).exists()
    dag.refresh_from_db()
    assert dag.last_run_at is None


def test_ticks_of_paused_or_deleted_schedules_do_nothing():
    goal = GoalFactory(status="paused")
    schedule = Schedule.objects.create(goal=goal, cron_expr="* * * * *", active=False)
    assert goal_schedule_fire(schedule_id=schedule.id) is None
    assert goal_schedule_fire(schedule_id="sched_gone") is None
    assert dag_schedule_fire(dag_id="gone") is None
    assert not Run.objects.exists()
    assert not ScheduleTick.objects.exists()
