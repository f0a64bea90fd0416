"""Who owns what is made, and who sees it (config/access.py's rule through the selectors)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from rest_framework.test import APIClient

from config.access import acting_user, visible_to
from dags.execution.services import execution_launch, execution_resume
from dags.models import Dag, DagExecution
from dags.selectors import dag_get, execution_list
from goals.models import Goal
from goals.services import goal_create
from goals.ticks import dag_schedule_fire, goal_schedule_fire
from runs.models import Run
from runs.services import run_trigger
from tests.factories import (
    DagExecutionFactory,
    DagFactory,
    GoalFactory,
    RunFactory,
    ScheduleFactory,
    TokenFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=user).key}")
    return client


@pytest.fixture
def bob():
    return UserFactory(username="bob")


@pytest.fixture
def staff():
    return UserFactory(username="operator", is_staff=True)


def test_the_rule_gives_staff_everything_and_others_their_own(user, bob, staff):
    mine, theirs = GoalFactory(owner=user), GoalFactory(owner=bob)
    orphan = GoalFactory(owner=None)
    goals = Goal.objects.all()

    assert set(visible_to(goals, user)) == {mine}
    assert set(visible_to(goals, bob)) == {theirs}
    assert set(visible_to(goals, staff)) == {mine, theirs, orphan}
    superuser = UserFactory(username="root", is_superuser=True)
    assert set(visible_to(goals, superuser)) == {mine, theirs, orphan}
    assert not visible_to(goals, AnonymousUser()).exists()


def test_an_inactive_staff_user_sees_nothing_special(user):
    retired = UserFactory(username="retired", is_staff=True, is_active=False)
    GoalFactory(owner=user)
    assert not visible_to(Goal.objects.all(), retired).exists()


def test_another_users_row_is_not_found_like_a_missing_one(user, bob):
    dag = DagFactory(owner=bob)
    with pytest.raises(Exception) as hidden:
        dag_get(dag_id=dag.id, viewer=user)
    with pytest.raises(Exception) as missing:
        dag_get(dag_id="no-such-dag", viewer=user)
    assert type(hidden.value) is type(missing.value)
    assert hidden.value.status == missing.value.status == 404
    assert dag_get(dag_id=dag.id, viewer=bob) == dag


def test_goals_made_through_the_api_belong_to_the_caller_and_runs_to_the_goal(api, user):
    goal_id = api.post("/api/v1/goals", {"objective": "Watch prices"}, format="json").json()["id"]
    assert Goal.objects.get(pk=goal_id).owner == user

    run_id = api.post(f"/api/v1/goals/{goal_id}/run").json()["runId"]

    assert Run.objects.get(pk=run_id).owner == user


def test_staff_running_someone_elses_goal_leaves_the_run_with_the_goal_owner(bob, staff):
    goal = GoalFactory(owner=bob)
    run_id = client_for(staff).post(f"/api/v1/goals/{goal.id}/run").json()["runId"]
    assert Run.objects.get(pk=run_id).owner == bob


def test_scheduled_runs_and_executions_run_as_their_owner(bob, settings):
    settings.MAX_CONCURRENT_RUNS = 10
    schedule = ScheduleFactory(goal=GoalFactory(owner=bob), cron_expr="* * * * *")
    tick = goal_schedule_fire(schedule_id=schedule.id)
    assert tick.run.owner == bob

    dag = DagFactory(owner=bob, cron_schedule="* * * * *", schedule_active=True)
    tick = dag_schedule_fire(dag_id=dag.id)
    assert tick.execution.owner == bob


def test_executions_belong_to_the_dag_owner_unless_staff_acts(user, bob, staff):
    dag = DagFactory(owner=bob)

    by_owner = client_for(bob).post("/api/v1/execute-dag", {"dagId": dag.id}, format="json")
    by_staff = client_for(staff).post("/api/v1/execute-dag", {"dagId": dag.id}, format="json")
    by_other = client_for(user).post("/api/v1/execute-dag", {"dagId": dag.id}, format="json")

    assert DagExecution.objects.get(pk=by_owner.json()["executionId"]).owner == bob
    assert DagExecution.objects.get(pk=by_staff.json()["executionId"]).owner == staff
    assert by_other.status_code == 404
    assert by_other.json() == {"error": f"DAG with id '{dag.id}' not found"}


def test_resume_keeps_the_owner(bob):
    execution = execution_launch(dag=DagFactory(owner=bob))
    DagExecution.objects.filter(pk=execution.pk).update(status=DagExecution.Status.SUSPENDED)
    assert execution_resume(execution_id=execution.id).owner == bob


def test_services_store_the_owner_they_are_given(bob):
    goal = goal_create(objective="Track the weather", owner=bob)
    assert goal.owner == bob
    assert run_trigger(goal_id=goal.id, enqueue=False).owner == bob


def test_execution_list_counts_only_what_the_viewer_may_see(user, bob, staff):
    DagExecutionFactory(dag=DagFactory(owner=user))
    DagExecutionFactory(dag=DagFactory(owner=bob))
    assert execution_list(viewer=user).count() == 1
    assert execution_list(viewer=staff).count() == 2


def test_without_auth_anonymous_acts_as_the_first_superuser(settings, anon_client):
    settings.API_AUTH_REQUIRED = False
    first = UserFactory(username="first-admin", is_staff=True, is_superuser=True)
    UserFactory(username="second-admin", is_staff=True, is_superuser=True)
    assert acting_user(AnonymousUser()) == first

    created = anon_client.post("/api/v1/goals", {"objective": "Local work"}, format="json")

    assert Goal.objects.get(pk=created.json()["id"]).owner == first


def test_without_auth_or_superuser_anonymous_owns_only_ownerless_rows(settings, anon_client, bob):
    settings.API_AUTH_REQUIRED = False
    GoalFactory(owner=bob)

    created = anon_client.post("/api/v1/goals", {"objective": "Local work"}, format="json")
    listed = anon_client.get("/api/v1/goals").json()

    assert Goal.objects.get(pk=created.json()["id"]).owner is None
    assert [goal["id"] for goal in listed] == [created.json()["id"]]
    # A superuser created later sees the ownerless rows (staff see everything).
    admin = UserFactory(username="later-admin", is_staff=True, is_superuser=True)
    assert visible_to(Goal.objects.all(), admin).count() == 2


def test_a_token_still_counts_when_auth_is_off(settings, user, bob):
    settings.API_AUTH_REQUIRED = False
    UserFactory(username="admin", is_staff=True, is_superuser=True)
    GoalFactory(owner=bob)
    mine = GoalFactory(owner=user)
    listed = client_for(user).get("/api/v1/goals").json()
    assert [goal["id"] for goal in listed] == [mine.id]


def test_deleting_a_user_keeps_their_rows_for_staff(bob, staff):
    dag = DagFactory(owner=bob)
    bob.delete()
    dag.refresh_from_db()
    assert dag.owner is None
    assert Dag.objects.filter(pk=dag.pk).exists()
    assert dag_get(dag_id=dag.id, viewer=staff) == dag


@pytest.mark.parametrize(
    "module",
    ["goals.migrations.0003_owner", "runs.migrations.0004_owner", "dags.migrations.0003_owner"],
)
def test_the_migration_gives_existing_rows_to_the_first_superuser(module):
    from importlib import import_module

    from django.apps import apps

    migration = import_module(module)
    run = RunFactory(goal=GoalFactory(owner=None), owner=None)
    execution = DagExecutionFactory(dag=DagFactory(owner=None), owner=None)
    migration.assign_to_first_superuser(apps, None)  # no superuser yet: rows stay ownerless
    assert Run.objects.get(pk=run.pk).owner is None

    first = UserFactory(username="first", is_superuser=True, is_staff=True)
    UserFactory(username="second", is_superuser=True, is_staff=True)
    migration.assign_to_first_superuser(apps, None)

    owners = {
        "goals": Goal.objects.get(pk=run.goal_id).owner,
        "runs": Run.objects.get(pk=run.pk).owner,
        "dags": DagExecution.objects.get(pk=execution.pk).owner,
    }
    assert owners[migration.APP] == first
