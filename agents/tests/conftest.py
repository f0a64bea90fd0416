from importlib import import_module

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from tests.factories import TokenFactory, UserFactory

MANAGERS = import_module("agents.migrations.0003_agent_managers_group")


def agent_managers() -> Group:
    """The migration's group (made again when a transactional test flushed the database)."""
    if not Group.objects.filter(name=MANAGERS.GROUP).exists():
        MANAGERS.create_group(apps, None)
    return Group.objects.get(name=MANAGERS.GROUP)


@pytest.fixture
def api(db) -> APIClient:
    """A client for a member of the "Agent managers" group (agents are shared configuration;
    changing them needs model permissions)."""
    manager = UserFactory(username="agent-manager")
    manager.groups.add(agent_managers())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=manager).key}")
    return client


@pytest.fixture
def api_user_client(token) -> APIClient:
    """The default API user (no permissions)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def staff_client(db) -> APIClient:
    """Readiness details (the LLM check among them) are for staff only."""
    client = APIClient()
    staff = UserFactory(username="operator", is_staff=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory(user=staff).key}")
    return client
