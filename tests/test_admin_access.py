"""The admin applies the ownership rule and shows owners; password logins are rate limited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client
from django.utils.timezone import now
from rest_framework.test import APIClient

from dags.models import Dag
from goals.models import Goal
from tests.factories import (
    DagExecutionFactory,
    DagFactory,
    GoalFactory,
    RunFactory,
    TokenFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PASSWORD = "pass-for-tests"
LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_changelists_show_and_filter_by_owner(root):
    bob = UserFactory(username="bob")
    GoalFactory(owner=bob, objective="Bob's goal")
    GoalFactory(objective="Alice's goal")

    page = root.get("/admin/goals/goal/").content.decode()
    filtered = root.get(f"/admin/goals/goal/?owner__id__exact={bob.pk}").content.decode()

    assert "column-owner" in page
    assert "Bob&#x27;s goal" in page and "Alice&#x27;s goal" in page
    assert "Bob&#x27;s goal" in filtered and "Alice&#x27;s goal" not in filtered


@pytest.mark.parametrize(
    ("path", "factory"),
    [
        ("/admin/goals/goal/", GoalFactory),
        ("/admin/dags/dag/", DagFactory),
        ("/admin/dags/dagexecution/", DagExecutionFactory),
        ("/admin/runs/run/", RunFactory),
    ],
)
def test_every_owned_changelist_has_the_owner_column(root, path, factory):
    factory()
    page = root.get(path).content.decode()
    assert "column-owner" in page
    assert "alice" in page


def goal_form(objective: str, owner: str = "") -> dict[str, str]:
    """The admin's goal form as a browser posts it, with no schedules or memories."""
    return {
        "objective": objective,
        "params": "{}",
        "webhook_url": "",
        "agent": "",
        "owner": owner,
        "schedules-TOTAL_FORMS": "0",
        "schedules-INITIAL_FORMS": "0",
        "memories-TOTAL_FORMS": "0",
        "memories-INITIAL_FORMS": "0",
    }


def test_a_goal_added_in_the_admin_belongs_to_the_admin(root):
    response = root.post("/admin/goals/goal/add/", goal_form("Made in the admin"))
    assert response.status_code == 302, response.content.decode()[:2000]
    goal = Goal.objects.get(objective="Made in the admin")
    assert goal.owner.username == "root"


def test_the_change_form_lets_staff_reassign_the_owner(root):
    dag = DagFactory()
    form = root.get(f"/admin/dags/dag/{dag.id}/change/").context["adminform"].form
    assert form.initial["owner"] == Dag.objects.get(pk=dag.pk).owner_id
    assert "owner" in form.fields


def test_the_owner_is_searched_for_not_picked_from_every_user(root):
    UserFactory.create_batch(30)
    carol = UserFactory(username="carol")
    goal = GoalFactory()
    page = root.get(f"/admin/goals/goal/{goal.id}/change/").content.decode()
    # Only the current owner is rendered as an option; the others come from the search.
    assert 'class="admin-autocomplete' in page and "<option" in page
    assert "carol" not in page

    found = root.get(
        "/admin/autocomplete/",
        {"term": "car", "app_label": "goals", "model_name": "goal", "field_name": "owner"},
    )
    assert found.status_code == 200
    assert [r["text"] for r in found.json()["results"]] == ["carol"]

    response = root.post(
        f"/admin/goals/goal/{goal.id}/change/", goal_form(goal.objective, owner=str(carol.pk))
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Goal.objects.get(pk=goal.pk).owner == carol


# --- login rate limit -------------------------------------------------------------------------
def attempt(client: Client, password: str, username: str = "admin"):
    return client.post(LOGIN, {"username": username, "password": password})


@pytest.fixture
def admin_user():
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


def lock_out(client: Client) -> None:
    for _ in range(5):
        response = attempt(client, "wrong")
        assert response.status_code in (200, 429)


def test_the_sixth_login_is_refused_even_with_the_right_password(admin_user, settings):
    settings.AXES_FAILURE_LIMIT = 5
    client = Client()
    for _ in range(4):
        assert attempt(client, "wrong").status_code == 200  # the form again, with an error
    assert attempt(client, "wrong").status_code == 429

    locked = attempt(client, PASSWORD)

    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_lockout_is_per_username_and_address(admin_user, settings):
    UserFactory(username="other", is_staff=True)
    lock_out(Client())
    assert attempt(Client(), PASSWORD, username="other").status_code == 302
    from_elsewhere = Client(REMOTE_ADDR="10.0.0.9")
    assert attempt(from_elsewhere, PASSWORD).status_code == 302


def test_the_lockout_ends_after_the_cool_off(admin_user):
    client = Client()
    lock_out(client)
    assert attempt(client, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=now() - timedelta(minutes=16))

    assert attempt(client, PASSWORD).status_code == 302


def test_axes_reset_lifts_the_lockout(admin_user):
    client = Client()
    lock_out(client)
    call_command("axes_reset", verbosity=0)
    assert attempt(client, PASSWORD).status_code == 302


def test_a_lockout_does_not_touch_api_tokens(admin_user):
    lock_out(Client())
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=admin_user).key}")
    assert api.get("/api/v1/goals").status_code == 200
