"""Buttons on the admin's change pages: POST with CSRF, the same services as the API, a real
worker behind them, and messages that keep ids as they are."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django_celery_beat.models import PeriodicTask

from agents.models import Agent
from config.admin_tools import admin_url
from dags.models import Dag, DagExecution
from goals.models import Goal
from goals.schedules import goal_schedule_sync, goal_task_name
from runs.models import Run
from tests.factories import (
    AgentFactory,
    DagExecutionFactory,
    DagFactory,
    GoalFactory,
    ScheduleFactory,
    UserFactory,
)
from tests.fakes.openai_server import ChatReply


def button_url(model, obj, name: str) -> str:
    return admin_url(model, "change", obj.pk).replace("/change/", f"/press/{name}/")


@pytest.fixture
def root(db) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def csrf_post(client: Client, page: str, url: str):
    """Load the change page (as a browser does), then POST its button with the page's token."""
    page_response = client.get(page)
    assert page_response.status_code == 200
    token = page_response.cookies["csrftoken"].value
    return client.post(url, {"csrfmiddlewaretoken": token}, follow=True)


@pytest.mark.django_db(transaction=True)
def test_execute_button_runs_the_dag_on_a_worker(root, fake_llm, celery_worker_thread):
    AgentFactory(name="InferenceAgent", prompt_template="Answer.", active=True)
    fake_llm.responder = lambda request: ChatReply(content="done", cost=0.001)
    dag = DagFactory()
    page = admin_url(Dag, "change", dag.pk)

    assert "Execute now" in root.get(page).content.decode()
    response = csrf_post(root, page, button_url(Dag, dag, "execute"))

    execution = DagExecution.objects.get(dag=dag)
    assert f"Execution {execution.id} of DAG {dag.id} started." in response.content.decode()
    deadline = time.monotonic() + 30
    while execution.status != "completed" and time.monotonic() < deadline:
        time.sleep(0.05)
        execution.refresh_from_db()
    assert execution.status == "completed"


def test_cancel_then_resume_buttons_follow_the_status(root, monkeypatch):
    from dags.execution import dispatch

    # No worker in this test: the resumed nodes' queue messages are not sent.
    monkeypatch.setattr(dispatch, "nodes_send", lambda execution_id, messages: None)
    execution = DagExecutionFactory(status="running")
    page = admin_url(DagExecution, "change", execution.pk)
    html = root.get(page).content.decode()
    assert ">Cancel</button>" in html and ">Resume</button>" not in html

    response = csrf_post(root, page, button_url(DagExecution, execution, "cancel"))

    execution.refresh_from_db()
    assert execution.status == "cancelled"
    text = response.content.decode()
    assert f"Execution {execution.id} cancelled." in text  # the id keeps its lower case
    assert ">Resume</button>" in text and ">Cancel</button>" not in text

    response = csrf_post(root, page, button_url(DagExecution, execution, "resume"))
    execution.refresh_from_db()
    assert execution.status == "running"
    assert f"Execution {execution.id} resumed (retry 1)." in response.content.decode()

    refused = csrf_post(root, page, button_url(DagExecution, execution, "resume"))
    assert "Cannot resume execution with status &#x27;running&#x27;" in refused.content.decode()


def test_buttons_need_post_csrf_and_the_change_permission(db):
    execution = DagExecutionFactory(status="running")
    url = button_url(DagExecution, execution, "cancel")
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_dagexecution"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)

    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403  # no CSRF token
    page = client.get(admin_url(DagExecution, "change", execution.pk))
    assert page.status_code == 200 and ">Cancel</button>" not in page.content.decode()
    token = page.cookies["csrftoken"].value
    assert client.post(url, {"csrfmiddlewaretoken": token}).status_code == 403
    execution.refresh_from_db()
    assert execution.status == "running"


def test_the_execution_list_dag_column_has_a_header_and_sorts(root, db):
    DagExecutionFactory(dag=DagFactory(dag_title="Beta"))
    DagExecutionFactory(dag=DagFactory(dag_title="Alpha"))
    listing = admin_url(DagExecution, "changelist")

    html = root.get(listing).content.decode()
    assert "DAG LINK" not in html.upper().replace("DAG_LINK", "")
    index = html.index(">DAG<")
    assert "sortable" in html[index - 400 : index]
    ordered = root.get(listing + "?o=2").content.decode()
    assert ordered.index("Alpha") < ordered.index("Beta")


# --- goals --------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_run_now_button_starts_a_run_that_a_worker_finishes(root, fake_llm, celery_worker_thread):
    agent = AgentFactory(
        name="defaultAgent", active=True, prompt_template="Objective: {{objective}}"
    )
    fake_llm.responder = lambda request: ChatReply(content="All done.", cost=0.001)
    goal = GoalFactory(agent=agent)
    page = admin_url(Goal, "change", goal.pk)
    html = root.get(page).content.decode()
    assert ">Run now</button>" in html and ">Pause</button>" in html
    assert ">Resume</button>" not in html

    response = csrf_post(root, page, button_url(Goal, goal, "run"))

    run = Run.objects.get(goal=goal)
    assert f"Run {run.id} of goal {goal.id} started." in response.content.decode()
    deadline = time.monotonic() + 30
    while run.status not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
        run.refresh_from_db()
    assert run.status == "completed", run.error


def test_pause_and_resume_buttons_reach_the_beat_rows(root):
    goal = GoalFactory()
    schedule = ScheduleFactory(goal=goal, cron_expr="*/5 * * * *")
    goal_schedule_sync(schedule=schedule)
    page = admin_url(Goal, "change", goal.pk)

    paused = csrf_post(root, page, button_url(Goal, goal, "pause"))

    goal.refresh_from_db()
    assert goal.status == "paused"
    assert f"Goal {goal.id} paused, with its schedules." in paused.content.decode()
    assert not PeriodicTask.objects.get(name=goal_task_name(schedule.id)).enabled
    text = paused.content.decode()
    assert ">Resume</button>" in text and ">Run now</button>" not in text

    csrf_post(root, page, button_url(Goal, goal, "resume"))
    goal.refresh_from_db()
    assert goal.status == "active"
    assert PeriodicTask.objects.get(name=goal_task_name(schedule.id)).enabled


def test_run_now_on_a_paused_goal_is_refused_with_a_message(root):
    goal = GoalFactory(status="paused")
    page = admin_url(Goal, "change", goal.pk)
    response = csrf_post(root, page, button_url(Goal, goal, "run"))
    assert f"Goal is not active: {goal.id}" in response.content.decode()
    assert not Run.objects.filter(goal=goal).exists()


def test_goal_buttons_need_the_goal_change_permission(db):
    goal = GoalFactory()
    viewer = UserFactory(username="goal-viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_goal"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    page = client.get(admin_url(Goal, "change", goal.pk))
    assert page.status_code == 200 and ">Pause</button>" not in page.content.decode()
    token = page.cookies["csrftoken"].value
    for name in ("run", "pause"):
        refused = client.post(button_url(Goal, goal, name), {"csrfmiddlewaretoken": token})
        assert refused.status_code == 403
    goal.refresh_from_db()
    assert goal.status == "active" and not Run.objects.filter(goal=goal).exists()


# --- agents -------------------------------------------------------------------------------------
def agent_manager(*codenames: str) -> Client:
    user = UserFactory(username="-".join(("manager", *codenames)), is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_activate_button_switches_the_active_version(db):
    old = AgentFactory(name="planner", version="1", active=True)
    new = AgentFactory(name="planner", version="2")
    client = agent_manager("view_agent", "change_agent")
    assert (
        "Activate this version"
        not in client.get(admin_url(Agent, "change", old.pk)).content.decode()
    )

    response = csrf_post(
        client, admin_url(Agent, "change", new.pk), button_url(Agent, new, "activate")
    )

    assert "Agent planner version 2 is now the active one." in response.content.decode()
    old.refresh_from_db()
    new.refresh_from_db()
    assert new.active and not old.active


def test_activating_needs_the_agent_change_permission(db):
    AgentFactory(name="planner", version="1", active=True)
    new = AgentFactory(name="planner", version="2")
    client = agent_manager("view_agent")
    page = client.get(admin_url(Agent, "change", new.pk))
    assert page.status_code == 200 and "Activate this version" not in page.content.decode()
    token = page.cookies["csrftoken"].value
    refused = client.post(button_url(Agent, new, "activate"), {"csrfmiddlewaretoken": token})
    assert refused.status_code == 403
    new.refresh_from_db()
    assert not new.active


def test_staff_with_the_permission_press_on_anyone_s_goal_as_the_api_allows(db):
    # Staff see and change every owned row (config/access.py); the permission is still needed.
    goal = GoalFactory(owner=UserFactory(username="bob"))
    operator = UserFactory(username="operator", is_staff=True)
    operator.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_goal", "change_goal"])
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)

    response = csrf_post(
        client, admin_url(Goal, "change", goal.pk), button_url(Goal, goal, "pause")
    )

    assert f"Goal {goal.id} paused, with its schedules." in response.content.decode()
    goal.refresh_from_db()
    assert goal.status == "paused" and goal.owner.username == "bob"
