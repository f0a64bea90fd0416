import pytest

from agents.models import Agent
from config.api.ids import id_pattern
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

AGENT_KEYS = [
    "id", "name", "version", "promptTemplate", "provider", "model", "active", "metadata",
    "createdAt", "updatedAt",
]  # fmt: skip


def create(api, **overrides):
    body = {"name": "Writer", "version": "1.0.0", "promptTemplate": "You write."} | overrides
    return api.post("/api/v1/agents", body, format="json")


def test_create_returns_inactive_agent_with_original_shape(api):
    response = create(api, provider="openai", model="gpt-4o-mini")

    assert response.status_code == 201
    body = response.json()
    assert list(body) == AGENT_KEYS
    assert id_pattern("agent").match(body["id"])
    assert body["active"] is False
    assert body["metadata"] == {}
    assert body["provider"] == "openai"


def test_create_duplicate_name_version_is_409(api):
    create(api)
    response = create(api)
    assert response.status_code == 409
    assert response.json() == {"error": "Agent with this name and version already exists"}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"version": "1", "promptTemplate": "x"}, ["name"]),
        ({"name": "", "version": "1", "promptTemplate": "x"}, ["name"]),
        ({"name": "a", "version": "1", "promptTemplate": ""}, ["promptTemplate"]),
        ({"name": "a", "version": "1", "promptTemplate": "x", "provider": "nope"}, ["provider"]),
        ({"name": "a", "version": "1", "promptTemplate": "x", "metadata": [1]}, ["metadata"]),
        ({"name": "a" * 201, "version": "1", "promptTemplate": "x"}, ["name"]),
    ],
)
def test_invalid_agent_is_400_with_validation_errors(api, body, path):
    response = api.post("/api/v1/agents", body, format="json")
    assert response.status_code == 400
    errors = response.json()["validation_errors"]
    assert any(error["path"] == path and error["message"] for error in errors)


def test_list_filters_by_name_and_active_flag(api):
    AgentFactory(name="A", version="1", active=True)
    AgentFactory(name="A", version="2", active=False)
    AgentFactory(name="B", version="1", active=True)

    names = lambda r: sorted((a["name"], a["version"]) for a in r.json())  # noqa: E731
    assert names(api.get("/api/v1/agents?name=A")) == [("A", "1"), ("A", "2")]
    assert names(api.get("/api/v1/agents?active=true")) == [("A", "1"), ("B", "1")]
    # Any value other than "true" lists inactive agents (existing clients rely on it).
    assert names(api.get("/api/v1/agents?active=yes")) == [("A", "2")]


def test_list_is_newest_first(api):
    first = AgentFactory()
    second = AgentFactory()
    ids = [a["id"] for a in api.get("/api/v1/agents").json()]
    assert ids == [second.id, first.id]


def test_get_and_404(api):
    agent = AgentFactory()
    assert api.get(f"/api/v1/agents/{agent.id}").json()["id"] == agent.id
    missing = api.get("/api/v1/agents/agent_missing")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Agent not found"}


def test_patch_updates_only_given_fields(api):
    agent = AgentFactory(name="A", version="1", model="m1")
    response = api.patch(f"/api/v1/agents/{agent.id}", {"model": "m2"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "m2"
    assert body["name"] == "A"
    assert body["updatedAt"] >= body["createdAt"]


def test_patch_partial_clash_is_409_not_500(api):
    AgentFactory(name="A", version="2")
    agent = AgentFactory(name="A", version="1")
    response = api.patch(f"/api/v1/agents/{agent.id}", {"version": "2"}, format="json")
    assert response.status_code == 409


def test_patch_renaming_active_agent_onto_active_name_is_409(api):
    AgentFactory(name="B", version="1", active=True)
    agent = AgentFactory(name="A", version="9", active=True)
    response = api.patch(f"/api/v1/agents/{agent.id}", {"name": "B"}, format="json")
    assert response.status_code == 409


def test_activate_leaves_exactly_one_active_version(api):
    old = AgentFactory(name="A", version="1", active=True)
    new = AgentFactory(name="A", version="2")

    response = api.post(f"/api/v1/agents/{new.id}/activate")

    assert response.status_code == 200
    assert response.json()["active"] is True
    assert list(Agent.objects.filter(name="A", active=True)) == [new]
    old.refresh_from_db()
    assert old.active is False


def test_activate_accepts_empty_json_body(api):
    agent = AgentFactory()
    response = api.post(
        f"/api/v1/agents/{agent.id}/activate", data="", content_type="application/json"
    )
    assert response.status_code == 200


def test_active_agent_cannot_be_deleted(api):
    agent = AgentFactory(active=True)
    response = api.delete(f"/api/v1/agents/{agent.id}")
    assert response.status_code == 400
    assert response.json() == {
        "error": "Cannot delete active agent. Activate another version first."
    }


def test_delete_inactive_agent_is_204(api):
    agent = AgentFactory()
    response = api.delete(f"/api/v1/agents/{agent.id}")
    assert response.status_code == 204
    assert response.content == b""
    assert not Agent.objects.filter(pk=agent.id).exists()


def test_resolve_returns_active_version_or_404(api):
    AgentFactory(name="Planner", version="1")
    active = AgentFactory(name="Planner", version="2", active=True)

    assert api.get("/api/v1/agents/resolve/Planner").json()["id"] == active.id
    missing = api.get("/api/v1/agents/resolve/Nobody")
    assert missing.status_code == 404
    assert missing.json() == {"error": "No active agent found with name: Nobody"}
