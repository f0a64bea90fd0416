"""export_agents / import_agents: JSON round trip, idempotent, conflicts reported."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from agents.models import Agent
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def snapshot() -> list[tuple]:
    return sorted(
        Agent.objects.values_list(
            "name", "version", "prompt_template", "provider", "model", "active", "metadata"
        )
    )


def test_export_then_import_into_an_empty_database_recreates_every_version(tmp_path):
    AgentFactory(name="Writer", version="1", prompt_template="Write.", active=False)
    AgentFactory(
        name="Writer", version="2", prompt_template="Write well.", active=True, model="gpt-4o"
    )
    AgentFactory(name="Critic", version="1", prompt_template="Critique.", metadata={"k": [1]})
    before = snapshot()
    path = tmp_path / "agents.json"

    run("export_agents", "--output", str(path))
    Agent.objects.all().delete()
    output = run("import_agents", str(path))

    assert snapshot() == before
    assert "3 created, 0 unchanged, 0 conflicting." in output
    assert json.loads(path.read_text())["agents"][0]["name"] == "Critic"


def test_importing_twice_changes_nothing(tmp_path):
    AgentFactory(name="Writer", version="1", prompt_template="Write.", active=True)
    path = tmp_path / "agents.json"
    run("export_agents", "--output", str(path))
    before = list(Agent.objects.values_list("pk", "updated_at", "active"))

    output = run("import_agents", str(path))
    again = run("import_agents", str(path))

    assert list(Agent.objects.values_list("pk", "updated_at", "active")) == before
    assert "0 created, 1 unchanged, 0 conflicting." in output
    assert "0 created, 1 unchanged, 0 conflicting." in again


def test_a_version_with_different_content_is_reported_and_left_alone(tmp_path):
    AgentFactory(name="Writer", version="1", prompt_template="Write.")
    path = tmp_path / "agents.json"
    document = {
        "agents": [
            {"name": "Writer", "version": "1", "promptTemplate": "Something else."},
            {"name": "Critic", "version": "1", "promptTemplate": "Critique.", "active": True},
        ]
    }
    path.write_text(json.dumps(document))

    with pytest.raises(CommandError) as failed:
        run("import_agents", str(path))

    assert failed.value.returncode == 1
    assert "1 created, 0 unchanged, 1 conflicting." in str(failed.value)
    assert Agent.objects.get(name="Writer").prompt_template == "Write."
    assert Agent.objects.get(name="Critic").active is True


def test_an_import_never_switches_the_active_version(tmp_path):
    AgentFactory(name="Writer", version="1", prompt_template="Write.", active=True)
    path = tmp_path / "agents.json"
    path.write_text(
        json.dumps(
            {
                "agents": [
                    {"name": "Writer", "version": "2", "promptTemplate": "New.", "active": True}
                ]
            }
        )
    )

    run("import_agents", str(path))

    assert Agent.objects.get(name="Writer", active=True).version == "1"


@pytest.mark.parametrize("content", ["not json", '{"agents": {}}', '{"agents": [{"name": "x"}]}'])
def test_an_invalid_file_imports_nothing_and_exits_2(tmp_path, content):
    path = tmp_path / "agents.json"
    path.write_text(content)
    with pytest.raises(CommandError) as failed:
        run("import_agents", str(path))
    assert failed.value.returncode == 2
    assert not Agent.objects.exists()
