"""`manage.py seed_agents`: the default agents, seeded idempotently, never overwriting edits."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from agents.models import Agent
from agents.seeding import DEFAULT_AGENTS, agents_seed, default_agent
from agents.services import agent_update
from agents.templating import placeholders, render_template
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

NAMES = {
    "defaultAgent",
    "DecomposerV8",
    "TitleMaster",
    "Synthesizer",
    "InferenceAgent",
    "ParaphrasePro",
}


def _snapshot() -> list[tuple]:
    return list(
        Agent.objects.order_by("id").values_list(
            "id", "name", "version", "prompt_template", "active", "metadata", "updated_at"
        )
    )


def test_seed_creates_the_default_agents_active():
    out = StringIO()
    call_command("seed_agents", stdout=out)

    agents = {agent.name: agent for agent in Agent.objects.all()}
    assert set(agents) == NAMES
    for agent in agents.values():
        assert agent.active is True
        assert agent.version == "1.0.0"
        assert agent.provider is None and agent.model is None
        assert agent.metadata["createdBy"] == "system"
        assert agent.metadata["description"]
        assert agent.prompt_template == default_agent(agent.name).prompt_template
    assert "6 agent(s) created" in out.getvalue()


def test_seeding_twice_changes_nothing():
    agents_seed()
    before = _snapshot()
    out = StringIO()

    call_command("seed_agents", stdout=out)

    assert _snapshot() == before
    assert "0 agent(s) created, 6 left as they were" in out.getvalue()


def test_an_edited_agent_is_never_overwritten():
    agents_seed()
    paraphrase = Agent.objects.get(name="ParaphrasePro")
    agent_update(agent=paraphrase, changes={"prompt_template": "My own paraphrase prompt"})
    before = _snapshot()

    outcomes = {outcome.name: outcome.action for outcome in agents_seed()}

    assert _snapshot() == before
    assert outcomes["ParaphrasePro"] == "kept-edited"
    assert outcomes["TitleMaster"] == "kept"


def test_an_operators_own_version_is_left_alone():
    mine = AgentFactory(name="TitleMaster", version="7.0.0", prompt_template="Mine", active=True)
    # An inactive seed version must not be re-created or re-activated either.
    AgentFactory(name="Synthesizer", version="1.0.0", prompt_template="Old", active=False)

    outcomes = {outcome.name: outcome.action for outcome in agents_seed()}

    assert outcomes["TitleMaster"] == "kept-other-version"
    assert list(Agent.objects.filter(name="TitleMaster")) == [mine]
    synthesizer = Agent.objects.get(name="Synthesizer")
    assert (synthesizer.prompt_template, synthesizer.active) == ("Old", False)
    assert Agent.objects.filter(name="InferenceAgent", active=True).exists()


def test_prompts_have_the_placeholders_their_callers_fill():
    assert set(placeholders(default_agent("defaultAgent").prompt_template)) == {
        "objective",
        "toolsList",
        "stepsRemaining",
        "workingMemory",
        "constraints",
        "currentDate",
    }
    assert set(placeholders(default_agent("DecomposerV8").prompt_template)) == {
        "tools",
        "currentDate",
    }
    for name in ("TitleMaster", "ParaphrasePro"):
        assert placeholders(default_agent(name).prompt_template) == []
    assert len(DEFAULT_AGENTS) == 6


def test_planner_prompt_renders_with_a_tool_list_and_shows_a_valid_plan():
    tools = [
        {
            "type": "function",
            "function": {
                "name": "webSearch",
                "description": "Search the web",
                "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
            },
        }
    ]
    template = default_agent("DecomposerV8").prompt_template

    rendered = render_template(
        template, {"tools": tools, "currentDate": "2026-05-01T09:00:00+00:00"}
    )

    assert "{{" not in rendered
    assert json.dumps(tools) in rendered
    assert "InferenceAgent" in rendered and "<Result from Task 001>" in rendered
    # The worked example in the prompt is itself a complete DecomposerJob.
    example = rendered.split("```json")[-1].split("```")[0]
    job = json.loads(example)
    assert set(job) == {
        "original_request",
        "intent",
        "entities",
        "sub_tasks",
        "synthesis_plan",
        "validation",
        "clarification_needed",
    }
    assert [task["id"] for task in job["sub_tasks"]] == ["001", "002", "003", "004"]
    assert job["sub_tasks"][0]["dependencies"] == ["none"]
    assert job["sub_tasks"][2]["tool_or_prompt"]["name"] == "InferenceAgent"
    assert job["validation"]["coverage"] == "high"
