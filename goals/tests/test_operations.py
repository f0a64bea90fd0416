"""Goal operations outside the API: admin actions and schedule edits, `manage.py run_goal`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django_celery_beat.models import PeriodicTask

from config.admin_tools import admin_url
from goals.models import Goal, Schedule, ScheduleTick
from goals.schedules import goal_task_name
from runs.models import Run
from tests.factories import AgentFactory, GoalFactory, UserFactory
from tests.fakes.openai_server import ChatReply, ToolCall


@pytest.fixture
def staff(db) -> Client:
    client = Client()
    client.force_login(UserFactory(username="operator", is_staff=True, is_superuser=True))
    return client


def test_run_now_action_starts_runs_and_reports_refusals(staff, settings):
    settings.MAX_CONCURRENT_RUNS = 5
    active, paused = GoalFactory(), GoalFactory(status="paused")

    response = staff.post(
        admin_url(Goal, "changelist"),
        {"action": "run_selected", "_selected_action": [active.pk, paused.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert Run.objects.filter(goal=active, status="pending").count() == 1
    assert not Run.objects.filter(goal=paused).exists()
    text = response.content.decode()
    assert "Started 1 run(s)" in text
    assert f"Goal is not active: {paused.pk}" in text


# The schedule page shows its ticks inline (read-only); the form still posts their counts.
TICKS_INLINE = {"ticks-TOTAL_FORMS": "0", "ticks-INITIAL_FORMS": "0"}


def test_schedule_edits_in_the_admin_update_the_beat_row(staff):
    goal = GoalFactory()
    response = staff.post(
        admin_url(Schedule, "add"),
        {
            "goal": goal.pk,
            "cron_expr": "0 8 * * *",
            "timezone": "Europe/Berlin",
            "active": "on",
            **TICKS_INLINE,
        },
    )
    assert response.status_code == 302
    schedule = Schedule.objects.get(goal=goal)
    row = PeriodicTask.objects.get(name=goal_task_name(schedule.id))
    assert (row.enabled, row.crontab.hour, str(row.crontab.timezone)) == (
        True,
        "8",
        "Europe/Berlin",
    )

    staff.post(
        admin_url(Schedule, "change", schedule.pk),
        {"goal": goal.pk, "cron_expr": "15 9 * * *", "timezone": "Europe/Berlin", **TICKS_INLINE},
    )
    row = PeriodicTask.objects.get(name=goal_task_name(schedule.id))
    assert (row.enabled, row.crontab.minute, row.crontab.hour) == (False, "15", "9")

    staff.post(admin_url(Schedule, "delete", schedule.pk), {"post": "yes"})
    assert not PeriodicTask.objects.filter(name=goal_task_name(schedule.id)).exists()


def test_schedule_ticks_are_listed_in_the_admin(staff):
    schedule = Schedule.objects.create(goal=GoalFactory(), cron_expr="* * * * *")
    ScheduleTick.objects.create(schedule=schedule, outcome="skipped", reason="still running")
    response = staff.get(admin_url(ScheduleTick, "changelist"))
    assert response.status_code == 200
    assert "still running" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_run_goal_command_prints_steps_as_they_happen(fake_llm, artifacts_dir):
    agent = AgentFactory(name="defaultAgent", active=True, prompt_template="Do {{objective}}")
    goal = GoalFactory(agent=agent, params={"allowedTools": ["writeFile"]})
    fake_llm.enqueue(
        ChatReply(
            content="Saving.",
            tool_calls=[ToolCall("writeFile", {"path": "out.txt", "content": "hello"})],
        ),
        ChatReply(content="Wrote out.txt."),
    )
    out = StringIO()

    call_command("run_goal", goal.id, stdout=out)

    text = out.getvalue()
    assert "Step 1" in text and "thought: Saving." in text
    assert "-> writeFile(" in text
    assert "Step 2" in text
    assert "Status: completed, 2 step(s)" in text
    assert text.rstrip().endswith("Wrote out.txt.")
    assert (artifacts_dir / "out.txt").read_text() == "hello"
    assert Run.objects.get(goal=goal).status == "completed"


@pytest.mark.django_db(transaction=True)
def test_run_goal_command_fails_clearly(fake_llm):
    with pytest.raises(CommandError, match="Goal not found: goal_nope"):
        call_command("run_goal", "goal_nope", stdout=StringIO())
    goal = GoalFactory()
    fake_llm.default = ChatReply(status=400, error_message="bad model")
    with pytest.raises(CommandError, match=r"failed: .*bad model"):
        call_command("run_goal", goal.id, stdout=StringIO())
