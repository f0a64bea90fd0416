"""Agents at run time: every call made for an agent has its rendered template as system message."""

from __future__ import annotations

from typing import Any

from agents.llm.client import ChatResult, chat, resolve_target
from agents.models import Agent
from agents.templating import current_date_text, render_template


def agent_target(agent: Agent) -> tuple[str, str]:
    """(provider, model) a call for this agent uses: the agent's own, else the defaults."""
    return resolve_target(agent.provider or None, agent.model or None)


def agent_system_prompt(agent: Agent, context: dict[str, Any] | None = None) -> str:
    """The agent's template rendered with `context`; `{{currentDate}}` is always available."""
    values: dict[str, Any] = {"currentDate": current_date_text()}
    values.update(context or {})
    return render_template(agent.prompt_template, values)


def agent_chat(
    *,
    agent: Agent,
    messages: list[dict[str, Any]],
    context: dict[str, Any] | None = None,
    **chat_kwargs: Any,
) -> ChatResult:
    """`chat()` as `agent`: its rendered template first, its provider/model unless overridden.

    `chat_kwargs` are `chat()`'s keyword arguments; an explicit `provider` or `model` there wins
    over the agent's, which win over the settings.
    """
    provider = chat_kwargs.pop("provider", None) or agent.provider or None
    model = chat_kwargs.pop("model", None)
    if model is None and provider == (agent.provider or None):
        model = agent.model or None
    system = {"role": "system", "content": agent_system_prompt(agent, context)}
    return chat(messages=[system, *messages], provider=provider, model=model, **chat_kwargs)
