"""Agents are shared configuration: anyone logged in reads them, changing them needs a model
permission (superusers, or the "Agent managers" group)."""

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from agents.models import Agent
from agents.tests.conftest import MANAGERS
from tests.factories import AgentFactory, TokenFactory, UserFactory

pytestmark = pytest.mark.django_db

BODY = {"name": "Helper", "version": "2.0.0", "promptTemplate": "Help."}


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=user).key}")
    return client


def writes(client: APIClient, agent: Agent) -> dict[str, int]:
    return {
        "create": client.post("/api/v1/agents", BODY, format="json").status_code,
        "update": client.patch(
            f"/api/v1/agents/{agent.id}", {"promptTemplate": "Changed."}, format="json"
        ).status_code,
        "activate": client.post(f"/api/v1/agents/{agent.id}/activate").status_code,
        # An active agent cannot be deleted: delete another one.
        "delete": client.delete(f"/api/v1/agents/{AgentFactory().id}").status_code,
    }


def test_a_regular_user_reads_agents_but_changes_nothing(api_user_client):
    agent = AgentFactory(name="Shared", active=True)

    assert api_user_client.get("/api/v1/agents").status_code == 200
    assert api_user_client.get(f"/api/v1/agents/{agent.id}").status_code == 200
    assert api_user_client.get("/api/v1/agents/resolve/Shared").status_code == 200
    assert api_user_client.get("/api/v1/tools").status_code == 200
    assert set(writes(api_user_client, agent).values()) == {403}

    agent.refresh_from_db()
    assert agent.prompt_template == AgentFactory._meta.declarations["prompt_template"]
    assert not Agent.objects.filter(name="Helper").exists()


def test_the_refusal_is_a_json_403(api_user_client):
    agent = AgentFactory()
    response = api_user_client.post(f"/api/v1/agents/{agent.id}/activate")
    assert response.status_code == 403
    assert response.json() == {
        "error": "You do not have permission to change this shared configuration."
    }


def test_staff_without_the_permission_is_refused_too():
    agent = AgentFactory()
    staff = client_for(UserFactory(username="operator", is_staff=True))
    assert staff.post(f"/api/v1/agents/{agent.id}/activate").status_code == 403


@pytest.mark.parametrize("who", ["superuser", "manager", "granted"])
def test_superusers_and_permission_holders_change_agents(who):
    if who == "superuser":
        user = UserFactory(username="root", is_superuser=True)
    elif who == "manager":
        user = UserFactory(username="manager")
        user.groups.add(Group.objects.get_or_create(name=MANAGERS.GROUP)[0])
        MANAGERS.create_group(apps, None)
    else:
        from django.contrib.auth.models import Permission

        user = UserFactory(username="granted")
        user.user_permissions.add(
            *Permission.objects.filter(
                content_type__app_label="agents",
                codename__in=["add_agent", "change_agent", "delete_agent"],
            )
        )
    agent = AgentFactory()
    assert writes(client_for(user), agent) == {
        "create": 201,
        "update": 200,
        "activate": 200,
        "delete": 204,
    }


def test_activation_needs_change_not_add():
    from django.contrib.auth.models import Permission

    user = UserFactory(username="adder")
    user.user_permissions.add(Permission.objects.get(codename="add_agent"))
    agent = AgentFactory()
    client = client_for(user)
    assert client.post("/api/v1/agents", BODY, format="json").status_code == 201
    assert client.post(f"/api/v1/agents/{agent.id}/activate").status_code == 403


def test_the_migration_creates_the_agent_managers_group():
    Group.objects.filter(name=MANAGERS.GROUP).delete()
    MANAGERS.create_group(apps, None)
    group = Group.objects.get(name=MANAGERS.GROUP)
    assert set(group.permissions.values_list("codename", flat=True)) == {
        "add_agent",
        "change_agent",
        "delete_agent",
        "view_agent",
    }


def test_without_auth_the_trusted_local_user_manages_agents(settings):
    settings.API_AUTH_REQUIRED = False
    UserFactory(username="local-admin", is_staff=True, is_superuser=True)
    assert APIClient().post("/api/v1/agents", BODY, format="json").status_code == 201
