"""The admin: every page renders for a superuser, and the actions go through the services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from django.utils.timezone import now

from agents.models import Agent, LlmCheck
from artifacts.models import Artifact
from config.admin_tools import admin_link, admin_url
from dags.models import Dag, DagExecution, ExecutionEvent, SubStep
from goals.models import Goal, Memory, Schedule, ScheduleTick
from runs.models import Output, Run, RunEvent, Step
from tests.factories import (
    AgentFactory,
    DagExecutionFactory,
    DagFactory,
    GoalFactory,
    MemoryFactory,
    OutputFactory,
    RunFactory,
    ScheduleFactory,
    StepFactory,
    SubStepFactory,
    UserFactory,
)

OUR_APPS = ("agents", "goals", "runs", "dags", "tools", "artifacts", "ops")
ALL_OUR_MODELS = (
    Agent,
    LlmCheck,
    Goal,
    Schedule,
    ScheduleTick,
    Memory,
    Run,
    Step,
    Output,
    RunEvent,
    Dag,
    DagExecution,
    SubStep,
    ExecutionEvent,
    Artifact,
)


@pytest.fixture
def staff(db) -> Client:
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(db) -> dict:
    """One row (at least) of every model, linked the way the system links them."""
    agent = AgentFactory(name="writer", version="1.0.0", active=True, metadata={"tags": ["a"]})
    goal = GoalFactory(agent=agent, params={"depth": 2, "nested": {"k": [1, 2]}})
    schedule = ScheduleFactory(goal=goal, cron_expr="*/15 * * * *", timezone="Europe/Paris")
    memory = MemoryFactory(goal=goal, metadata={"source": "test"})
    run = RunFactory(
        goal=goal,
        status=Run.Status.COMPLETED,
        started_at=now() - timedelta(seconds=5),
        ended_at=now(),
        working_memory={"notes": ["x"]},
    )
    step = StepFactory(run=run, tool_name="web_search", tool_input={"query": "q"}, error="boom")
    output = OutputFactory(run=run)
    dag = DagFactory(cron_schedule="0 9 * * 1", schedule_active=True, usage={"total": 3})
    execution = DagExecutionFactory(
        dag=dag,
        status=DagExecution.Status.COMPLETED,
        duration_ms=1234,
        completed_tasks=2,
        total_usage={"promptTokens": 10},
        last_event_seq=1,
    )
    sub_step = SubStepFactory(
        execution=execution,
        result={"text": "hello <b>world</b>"},
        usage={"total_tokens": 5},
        dependencies=["none"],
    )
    event = ExecutionEvent.objects.create(
        execution=execution, seq=1, type="execution.started", payload={"status": "running"}
    )
    run_event = RunEvent.objects.create(
        run=run, seq=1, type="run.started", payload={"status": "running"}
    )
    tick = ScheduleTick.objects.create(
        schedule=schedule, outcome=ScheduleTick.Outcome.SKIPPED, reason="previous run still going"
    )
    dag_tick = ScheduleTick.objects.create(
        dag=dag, outcome=ScheduleTick.Outcome.STARTED, execution=execution
    )
    llm_check = LlmCheck.objects.create(
        provider="openai", model="gpt-4o-mini", configured=True, ok=True, used_by=["default"]
    )
    orphan_execution = DagExecutionFactory(dag=None)
    artifact = Artifact.objects.create(
        path="reports/week.md", owner=execution.owner, execution=execution, size=12
    )
    return {
        Artifact: artifact,
        Agent: agent,
        Goal: goal,
        Schedule: schedule,
        Memory: memory,
        Run: run,
        Step: step,
        Output: output,
        Dag: dag,
        DagExecution: execution,
        SubStep: sub_step,
        ExecutionEvent: event,
        RunEvent: run_event,
        LlmCheck: llm_check,
        ScheduleTick: tick,
        "dag_tick": dag_tick,
        "orphan_execution": orphan_execution,
    }


def test_every_model_is_registered():
    models = [m for m in apps.get_models() if m._meta.app_label in OUR_APPS]
    assert set(ALL_OUR_MODELS) <= set(models)
    for model in models:
        assert admin.site.is_registered(model), model


@pytest.mark.parametrize("model", ALL_OUR_MODELS, ids=lambda m: m.__name__)
def test_changelist_renders_with_search_and_filters(staff, world, model):
    url = admin_url(model, "changelist")
    assert staff.get(url).status_code == 200
    assert staff.get(url, {"q": "a"}).status_code == 200
    model_admin = admin.site.get_model_admin(model)
    if model_admin.date_hierarchy:
        year = now().year
        assert staff.get(url, {f"{model_admin.date_hierarchy}__year": year}).status_code == 200
    # Every column sorts without error.
    for index in range(len(model_admin.list_display)):
        assert staff.get(url, {"o": str(index + 1)}).status_code == 200


@pytest.mark.parametrize("model", ALL_OUR_MODELS, ids=lambda m: m.__name__)
def test_change_page_renders(staff, world, model):
    obj = world[model]
    response = staff.get(admin_url(model, "change", obj.pk))
    assert response.status_code == 200
    # JSON values are shown, not dropped.
    if model in (ExecutionEvent, RunEvent):
        assert "running" in response.content.decode()


def test_execution_without_dag_renders(staff, world):
    execution = world["orphan_execution"]
    assert staff.get(admin_url(DagExecution, "change", execution.pk)).status_code == 200
    assert staff.get(admin_url(DagExecution, "changelist")).status_code == 200


@pytest.mark.parametrize("model", (Agent, Goal, Schedule, Memory, Dag), ids=lambda m: m.__name__)
def test_add_page_renders(staff, db, model):
    assert staff.get(admin_url(model, "add")).status_code == 200


def test_worker_owned_rows_are_read_only(staff, world):
    worker_owned = (Run, Step, Output, RunEvent, DagExecution, SubStep, ExecutionEvent)
    for model in (*worker_owned, LlmCheck, ScheduleTick):
        assert staff.get(admin_url(model, "add")).status_code == 403
        response = staff.post(admin_url(model, "change", world[model].pk), {})
        assert response.status_code == 403


def test_celery_beat_admin_is_there(staff, db):
    for name in ("periodictask", "crontabschedule", "intervalschedule"):
        response = staff.get(reverse(f"admin:django_celery_beat_{name}_changelist"))
        assert response.status_code == 200
    assert "django_celery_beat" in staff.get(reverse("admin:index")).content.decode()


def test_anonymous_is_sent_to_login(db):
    response = Client().get(admin_url(Goal, "changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_activate_action_switches_the_active_version(staff, db):
    old = AgentFactory(name="planner", version="1", active=True)
    new = AgentFactory(name="planner", version="2", active=False)
    response = staff.post(
        admin_url(Agent, "changelist"),
        {"action": "activate_selected", "_selected_action": [new.pk]},
        follow=True,
    )
    assert response.status_code == 200
    old.refresh_from_db()
    new.refresh_from_db()
    assert new.active and not old.active
    assert "Activated: planner@2" in response.content.decode()


def test_activate_action_refuses_two_versions_of_one_name(staff, db):
    first = AgentFactory(name="planner", version="1")
    second = AgentFactory(name="planner", version="2")
    response = staff.post(
        admin_url(Agent, "changelist"),
        {"action": "activate_selected", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Only one version per name" in response.content.decode()
    assert not Agent.objects.filter(active=True).exists()


def test_active_agent_cannot_be_deleted(staff, db):
    agent = AgentFactory(active=True)
    response = staff.post(admin_url(Agent, "delete", agent.pk), {"post": "yes"})
    assert response.status_code == 403
    assert Agent.objects.filter(pk=agent.pk).exists()
    inactive = AgentFactory(active=False)
    response = staff.post(admin_url(Agent, "delete", inactive.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Agent.objects.filter(pk=inactive.pk).exists()


def test_deleting_a_goal_takes_its_runs(staff, world):
    goal = world[Goal]
    response = staff.post(admin_url(Goal, "delete", goal.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Run.objects.filter(goal_id=goal.pk).exists()
    assert not Schedule.objects.filter(goal_id=goal.pk).exists()


def test_pause_and_resume_actions_reach_the_schedules(staff, db):
    goal = GoalFactory()
    schedule = ScheduleFactory(goal=goal, active=True)
    other = GoalFactory()
    url = admin_url(Goal, "changelist")

    staff.post(url, {"action": "pause_selected", "_selected_action": [goal.pk]})
    goal.refresh_from_db()
    schedule.refresh_from_db()
    other.refresh_from_db()
    assert goal.status == Goal.Status.PAUSED
    assert schedule.active is False
    assert other.status == Goal.Status.ACTIVE

    response = staff.post(
        url, {"action": "resume_selected", "_selected_action": [goal.pk]}, follow=True
    )
    goal.refresh_from_db()
    schedule.refresh_from_db()
    assert goal.status == Goal.Status.ACTIVE
    assert schedule.active is True
    assert "Resumed 1 goal(s)." in response.content.decode()


def test_editing_a_goal_goes_through_the_update_service(staff, db):
    goal = GoalFactory(objective="old objective")
    before = goal.updated_at
    response = staff.post(
        admin_url(Goal, "change", goal.pk),
        {
            "objective": "new objective",
            "agent": "",
            "webhook_url": "",
            "params": '{"depth": 3}',
            "schedules-TOTAL_FORMS": "1",
            "schedules-INITIAL_FORMS": "0",
            "schedules-0-cron_expr": "@daily",
            "schedules-0-timezone": "UTC",
            "schedules-0-active": "on",
            "memories-TOTAL_FORMS": "0",
            "memories-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    goal.refresh_from_db()
    assert goal.objective == "new objective"
    assert goal.params == {"depth": 3}
    assert goal.updated_at > before
    # The macro is stored in its five-field form.
    assert list(goal.schedules.values_list("cron_expr", flat=True)) == ["0 0 * * *"]


def test_a_bad_cron_is_a_form_error(staff, db):
    goal = GoalFactory()
    response = staff.post(
        admin_url(Schedule, "add"),
        {"goal": goal.pk, "cron_expr": "61 * * * *", "timezone": "Mars/Olympus", "active": "on"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Invalid cron expression" in body
    assert "Unknown time zone" in body
    assert not Schedule.objects.exists()


def test_deleting_a_run_takes_its_steps_and_outputs(staff, world):
    run = world[Run]
    page = staff.get(admin_url(Run, "delete", run.pk))
    assert page.status_code == 200
    response = staff.post(admin_url(Run, "delete", run.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Run.objects.filter(pk=run.pk).exists()
    assert not Step.objects.filter(run_id=run.pk).exists()
    assert not Output.objects.filter(run_id=run.pk).exists()
    assert not RunEvent.objects.filter(run_id=run.pk).exists()


def test_deleting_an_execution_takes_its_sub_steps_and_events(staff, world):
    execution = world[DagExecution]
    response = staff.post(admin_url(DagExecution, "delete", execution.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not SubStep.objects.filter(execution_id=execution.pk).exists()
    assert not ExecutionEvent.objects.filter(execution_id=execution.pk).exists()


def test_a_dag_with_executions_is_protected(staff, world):
    dag = world[Dag]
    response = staff.post(admin_url(Dag, "delete", dag.pk), {"post": "yes"})
    assert response.status_code == 200  # the "cannot delete" page
    assert Dag.objects.filter(pk=dag.pk).exists()


def test_execute_resume_and_cancel_actions_go_through_the_execution_services(
    staff, db, monkeypatch
):
    from dags.execution import dispatch

    monkeypatch.setattr(dispatch, "nodes_send", lambda execution_id, messages: None)
    dag = DagFactory()

    staff.post(
        admin_url(Dag, "changelist"),
        {"action": "execute_selected", "_selected_action": [dag.pk]},
        follow=True,
    )
    execution = DagExecution.objects.get(dag=dag)
    assert execution.status == "running"

    staff.post(
        admin_url(DagExecution, "changelist"),
        {"action": "cancel_selected", "_selected_action": [execution.pk]},
        follow=True,
    )
    execution.refresh_from_db()
    assert execution.status == "cancelled"

    response = staff.post(
        admin_url(DagExecution, "changelist"),
        {"action": "resume_selected", "_selected_action": [execution.pk]},
        follow=True,
    )
    execution.refresh_from_db()
    assert execution.status == "running"
    assert execution.retry_count == 1
    assert f"Execution {execution.id} resumed." in response.content.decode()


def test_admin_links_reach_objects_whose_ids_look_escaped(staff, world):
    """The admin reads `_XX` in a URL as an escaped character; an id like `tick_3F...` must
    still reach its change page, from our links and from our URLs."""
    schedule = world[Schedule]
    tick = ScheduleTick.objects.create(
        id="tick_3F5FabcdefghIJKL", schedule=schedule, outcome="skipped", reason="r"
    )
    assert staff.get(admin_url(ScheduleTick, "change", tick.pk)).status_code == 200
    href = str(admin_link(tick)).split('"')[1]
    assert staff.get(href).status_code == 200
