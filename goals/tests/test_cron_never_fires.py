"""A cron that can never fire (a day that does not exist in the months it names) and a name
that is not an IANA time zone are refused on every path that stores a schedule."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django_celery_beat.models import PeriodicTask

from config.admin_tools import admin_url
from config.cron import CronError, normalize_cron, validate_timezone
from dags.models import Dag
from dags.tests.planning_helpers import body, planner_agents
from goals.models import Goal, Schedule
from tests.factories import DagFactory, GoalFactory, ScheduleFactory, UserFactory

pytestmark = pytest.mark.django_db

NEVER = ["0 0 30 2 *", "0 0 31 4 *", "15 10 31 6,9,11 *", "0 0 30 2 1"]
NOT_ZONES = ["localtime", "posixrules", "Factory", "posix/Europe/Paris", "../etc/passwd"]


@pytest.mark.parametrize("expression", NEVER)
def test_the_validator_says_why_a_cron_never_fires(expression):
    with pytest.raises(CronError, match="never fires"):
        normalize_cron(expression)


@pytest.mark.parametrize("expression", ["0 0 29 2 *", "0 0 31 * *", "0 0 13 * 5", "@yearly"])
def test_rare_but_real_crons_are_accepted(expression):
    assert normalize_cron(expression)


@pytest.mark.parametrize("name", NOT_ZONES)
def test_names_that_are_not_iana_zones_are_refused(name):
    with pytest.raises(CronError, match="Unknown time zone"):
        validate_timezone(name)


@pytest.mark.parametrize("name", ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires"])
def test_iana_zones_are_accepted(name):
    assert validate_timezone(name) == name


@pytest.mark.parametrize("expression", NEVER)
def test_goal_create_refuses_a_cron_that_never_fires(api, expression):
    response = api.post(
        "/api/v1/goals",
        {"objective": "Summarise the solar news", "schedule": {"cronExpr": expression}},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["validation_errors"][0]
    assert error["path"] == ["schedule", "cronExpr"]
    assert "never fires" in error["message"]
    assert not Goal.objects.exists()
    assert not PeriodicTask.objects.filter(name__startswith="goal-schedule:").exists()


@pytest.mark.parametrize("zone", NOT_ZONES)
def test_goal_create_refuses_a_zone_that_is_not_iana(api, zone):
    response = api.post(
        "/api/v1/goals",
        {"objective": "Summarise the solar news", "schedule": {"cronExpr": "@daily",
                                                               "timezone": zone}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["validation_errors"][0]["path"] == ["schedule", "timezone"]


@pytest.mark.parametrize(
    "change", [{"cronSchedule": "0 0 31 4 *"}, {"cronSchedule": "@daily", "timezone": "localtime"}]
)
def test_dag_patch_refuses_a_cron_that_never_fires_or_a_false_zone(api, change):
    dag = DagFactory(cron_schedule="0 9 * * *", schedule_active=True)
    response = api.patch(f"/api/v1/dags/{dag.id}", change, format="json")
    assert response.status_code == 400
    message = response.json()["validation_errors"][0]["message"]
    assert "never fires" in message or "Unknown time zone" in message
    dag.refresh_from_db()
    assert (dag.cron_schedule, dag.timezone) == ("0 9 * * *", "UTC")


@pytest.mark.parametrize("path", ["/api/v1/create-dag", "/api/v1/create-and-execute-dag"])
def test_create_dag_refuses_a_cron_that_never_fires_before_any_llm_call(api, fake_llm, path):
    planner_agents()
    response = api.post(path, body(cronSchedule="0 0 30 2 *"), format="json")
    assert response.status_code == 400
    assert "never fires" in response.json()["details"]
    assert fake_llm.requests == []
    assert not Dag.objects.exists()


def test_create_dag_refuses_a_false_zone(api, fake_llm):
    planner_agents()
    response = api.post(
        "/api/v1/create-dag", body(cronSchedule="@daily", timezone="posixrules"), format="json"
    )
    assert response.status_code == 400
    assert response.json()["validation_errors"][0]["path"] == ["timezone"]
    assert fake_llm.requests == []


@pytest.fixture
def staff(db) -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_admin_schedule_form_refuses_a_cron_that_never_fires(staff):
    goal = GoalFactory()
    response = staff.post(
        admin_url(Schedule, "add"),
        {"goal": goal.pk, "cron_expr": "0 0 30 2 *", "timezone": "Factory", "active": "on"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "never fires" in page
    assert "Unknown time zone" in page
    assert not Schedule.objects.exists()


def test_admin_dag_form_refuses_a_cron_that_never_fires(staff):
    dag = DagFactory(cron_schedule="0 9 * * *", schedule_active=True)
    page = staff.get(admin_url(Dag, "change", dag.pk))
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {
        name: ("" if value is None else value)
        for name, value in form.initial.items()
        if name in form.fields
    }
    for name in ("result", "params"):  # the JSON fields a person may edit
        data[name] = form.fields[name].prepare_value(form.initial.get(name))
    data.update(cron_schedule="0 0 31 4 *", schedule_active="on")
    response = staff.post(admin_url(Dag, "change", dag.pk), data)
    assert response.status_code == 200
    assert "never fires" in response.content.decode()
    dag.refresh_from_db()
    assert dag.cron_schedule == "0 9 * * *"


def test_sync_schedules_never_registers_a_stored_cron_that_never_fires_and_records_why():
    """Rows written around the services (an import, a restore, data from before the check)."""
    good = ScheduleFactory(cron_expr="0 9 * * *")
    bad = ScheduleFactory(cron_expr="0 0 30 2 *")
    call_command("sync_schedules", stdout=StringIO())
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert f"goal-schedule:{good.id}" in names
    assert f"goal-schedule:{bad.id}" not in names
    bad.refresh_from_db()
    good.refresh_from_db()
    assert "never fires" in bad.error and bad.error_at is not None
    assert good.error is None


def test_a_schedule_beat_disabled_stays_off_until_its_cron_changes(api):
    from dags.schedules import dag_task_name
    from goals.schedules import schedule_failure_record

    dag = DagFactory()
    api.patch(f"/api/v1/dags/{dag.id}", {"cronSchedule": "0 9 * * *", "scheduleActive": True},
              format="json")  # fmt: skip
    schedule_failure_record(task_name=dag_task_name(dag.id), error="RuntimeError: no next time")

    body = api.get(f"/api/v1/dags/{dag.id}").json()
    assert body["scheduleError"] == "RuntimeError: no next time"
    assert body["scheduleErrorAt"] is not None
    assert not PeriodicTask.objects.get(name=dag_task_name(dag.id)).enabled
    # Another change keeps it off; a new cron is a fresh start.
    api.patch(f"/api/v1/dags/{dag.id}", {"dagTitle": "Renamed"}, format="json")
    assert not PeriodicTask.objects.get(name=dag_task_name(dag.id)).enabled
    body = api.patch(f"/api/v1/dags/{dag.id}", {"cronSchedule": "0 10 * * *"}, format="json").json()
    assert body["scheduleError"] is None and body["scheduleErrorAt"] is None
    assert PeriodicTask.objects.get(name=dag_task_name(dag.id)).enabled
