"""The beat rows goal and DAG schedules own are read-only in the admin and link to their owner;
rows the app does not manage stay editable."""

from __future__ import annotations

import pytest
from django.test import Client
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from config.admin_tools import admin_url
from dags.models import Dag
from dags.schedules import dag_schedule_sync, dag_task_name
from goals.models import Goal
from goals.schedules import goal_schedule_sync, goal_task_name
from tests.factories import DagFactory, GoalFactory, ScheduleFactory, UserFactory

pytestmark = pytest.mark.django_db

NOTE = "a sync overwrites any change made to it"


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def rows() -> dict:
    goal = GoalFactory()
    schedule = ScheduleFactory(goal=goal, cron_expr="0 9 * * *")
    goal_schedule_sync(schedule=schedule)
    dag = DagFactory(cron_schedule="30 6 * * 1", schedule_active=True)
    dag_schedule_sync(dag=dag)
    every = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
    own = PeriodicTask.objects.create(name="cleanup", task="ops.cleanup", interval=every)
    return {
        "goal": goal,
        "dag": dag,
        "goal_row": PeriodicTask.objects.get(name=goal_task_name(schedule.id)),
        "dag_row": PeriodicTask.objects.get(name=dag_task_name(dag.id)),
        "own": own,
    }


def change_url(task: PeriodicTask) -> str:
    return admin_url(PeriodicTask, "change", task.pk)


def test_the_list_links_each_managed_row_to_its_goal_or_dag(root, rows):
    html = root.get(admin_url(PeriodicTask, "changelist")).content.decode()
    assert admin_url(Goal, "change", rows["goal"].pk) in html
    assert admin_url(Dag, "change", rows["dag"].pk) in html
    assert "column-managed_by" in html


@pytest.mark.parametrize("key", ["goal_row", "dag_row"])
def test_a_managed_row_is_read_only_with_a_note_and_a_link(root, rows, key):
    task = rows[key]
    owner = rows["goal"] if key == "goal_row" else rows["dag"]

    page = root.get(change_url(task))

    html = page.content.decode()
    assert page.status_code == 200
    assert NOTE in html
    assert admin_url(type(owner), "change", owner.pk) in html
    assert 'name="_save"' not in html and "<textarea" not in html
    posted = root.post(change_url(task), {"name": "renamed", "task": "x", "enabled": "on"})
    assert posted.status_code == 403
    assert root.post(admin_url(PeriodicTask, "delete", task.pk), {"post": "yes"}).status_code == 403
    task.refresh_from_db()
    assert task.name != "renamed"


def test_bulk_actions_leave_managed_rows_alone(root, rows):
    ids = [rows["goal_row"].pk, rows["own"].pk]
    response = root.post(
        admin_url(PeriodicTask, "changelist"),
        {"action": "disable_tasks", "_selected_action": ids},
        follow=True,
    )
    assert "Left 1 app-managed row(s) alone" in response.content.decode()
    rows["goal_row"].refresh_from_db()
    rows["own"].refresh_from_db()
    assert rows["goal_row"].enabled and not rows["own"].enabled

    # Deleting needs the delete permission on every selected row, which managed rows refuse.
    refused = root.post(
        admin_url(PeriodicTask, "changelist"),
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert refused.status_code == 403
    assert PeriodicTask.objects.filter(pk__in=ids).count() == 2


def test_a_row_the_app_does_not_manage_stays_editable(root, rows):
    html = root.get(change_url(rows["own"])).content.decode()
    assert 'name="_save"' in html and NOTE not in html
    crontab = CrontabSchedule.objects.first()
    response = root.post(
        change_url(rows["own"]),
        {
            "name": "cleanup-renamed",
            "regtask": "",
            "task": "ops.cleanup",
            "enabled": "on",
            "description": "",
            "interval": "",
            "crontab": crontab.pk,
            "solar": "",
            "clocked": "",
            "start_time_0": "",
            "start_time_1": "",
            "args": "[]",
            "kwargs": "{}",
            "expires_0": "",
            "expires_1": "",
            "expire_seconds": "",
            "queue": "",
            "exchange": "",
            "routing_key": "",
            "priority": "",
            "headers": "{}",
        },
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    rows["own"].refresh_from_db()
    assert rows["own"].name == "cleanup-renamed"
