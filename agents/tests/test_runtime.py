"""Agents at run time: rendered template as system message, provider/model resolution."""

from __future__ import annotations

import pytest

from agents.runtime import agent_chat, agent_system_prompt, agent_target
from agents.selectors import agent_require_active
from config.errors import NotFound
from tests.factories import AgentFactory
from tests.fakes.openai_server import ChatReply

pytestmark = pytest.mark.django_db


def test_rendered_template_is_the_system_message(fake_llm):
    agent = AgentFactory(
        name="Helper",
        prompt_template="You help with {{topic}}. Today is {{currentDate}}. {{unknown}}",
        active=True,
    )
    fake_llm.enqueue(ChatReply(content="done"))

    result = agent_chat(
        agent=agent,
        messages=[{"role": "user", "content": "Go"}],
        context={"topic": "taxes"},
        temperature=0.1,
    )

    assert result.content == "done"
    messages = fake_llm.requests[0]["messages"]
    assert messages[0]["role"] == "system"
    system = messages[0]["content"]
    assert system.startswith("You help with taxes. Today is 20")
    assert "{{currentDate}}" not in system and "{{unknown}}" in system
    assert messages[1:] == [{"role": "user", "content": "Go"}]
    assert fake_llm.requests[0]["temperature"] == 0.1


def test_agent_model_overrides_the_default(fake_llm, db):
    agent = AgentFactory(model="gpt-4.1-mini", active=True)

    result = agent_chat(agent=agent, messages=[{"role": "user", "content": "x"}])

    assert fake_llm.requests[0]["model"] == "gpt-4.1-mini"
    assert (result.provider, result.model) == ("openai", "gpt-4.1-mini")


def test_agent_provider_uses_that_providers_model(fake_llm, settings):
    settings.OLLAMA_BASE_URL = fake_llm.base_url
    settings.OLLAMA_MODEL = "qwen2.5:7b"
    agent = AgentFactory(provider="ollama", model=None)

    assert agent_target(agent) == ("ollama", "qwen2.5:7b")
    agent_chat(agent=agent, messages=[{"role": "user", "content": "x"}])
    assert fake_llm.requests[0]["model"] == "qwen2.5:7b"


def test_explicit_call_arguments_win_over_the_agent(fake_llm):
    agent = AgentFactory(model="gpt-4.1-mini")

    agent_chat(agent=agent, messages=[{"role": "user", "content": "x"}], model="gpt-4o")

    assert fake_llm.requests[0]["model"] == "gpt-4o"


def test_system_prompt_context_overrides_current_date():
    agent = AgentFactory(prompt_template="Date: {{currentDate}}")

    assert agent_system_prompt(agent, {"currentDate": "2020-01-01"}) == "Date: 2020-01-01"


def test_active_version_is_resolved_by_name():
    AgentFactory(name="Writer", version="1.0.0", active=False)
    active = AgentFactory(name="Writer", version="2.0.0", active=True)

    assert agent_require_active(name="Writer") == active
    with pytest.raises(NotFound, match="No active agent found with name: Nobody"):
        agent_require_active(name="Nobody")
