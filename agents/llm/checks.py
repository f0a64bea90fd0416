"""Readiness of the LLM set-up: a tiny real call with a dummy tool per provider/model in use.

Results are stored (one row per provider/model, `LlmCheck`) so every web process can report
the last one on /health/ready.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.timezone import now

from agents.llm.client import chat, resolve_target
from agents.llm.errors import LLMConfigurationError, LLMError
from agents.llm.providers import missing_configuration
from agents.models import Agent, LlmCheck
from config.api.formatting import iso

logger = logging.getLogger(__name__)

CHECK_TOOL_NAME = "report_status"
CHECK_TOOL = {
    "type": "function",
    "function": {
        "name": CHECK_TOOL_NAME,
        "description": "Report that this connection check reached the model.",
        "parameters": {
            "type": "object",
            "properties": {"status": {"type": "string", "enum": ["ok"]}},
            "required": ["status"],
            "additionalProperties": False,
        },
    },
}
CHECK_MESSAGES = [
    {
        "role": "system",
        "content": (
            f"You are a connectivity check. Call the {CHECK_TOOL_NAME} tool once with "
            'status "ok". Do not answer with text.'
        ),
    },
    {"role": "user", "content": "Report your status."},
]
CHECK_MAX_TOKENS = 512


@dataclass
class CheckTarget:
    provider: str
    model: str
    used_by: list[str] = field(default_factory=list)
    # Set when the pair cannot even be resolved (unknown provider).
    problem: str | None = None


@dataclass
class CheckOutcome:
    provider: str
    model: str
    used_by: list[str]
    configured: bool
    ok: bool
    tool_calling: bool
    latency_ms: int | None
    error: str


def llm_check_targets(*, include_agents: bool = True) -> list[CheckTarget]:
    """The default provider/model and every active agent's distinct pair, in that order."""
    targets: dict[tuple[str, str], CheckTarget] = {}

    def add(provider: str | None, model: str | None, label: str) -> None:
        try:
            key = resolve_target(provider, model)
            problem = None
        except LLMConfigurationError as error:
            key, problem = (error.provider, error.model), error.detail
        target = targets.setdefault(key, CheckTarget(key[0], key[1], problem=problem))
        target.used_by.append(label)

    add(None, None, "default")
    if include_agents:
        for agent in Agent.objects.filter(active=True).order_by("name"):
            add(agent.provider or None, agent.model or None, f"agent:{agent.name}")
    return list(targets.values())


def llm_check_run(*, target: CheckTarget, timeout: float | None = None) -> CheckOutcome:
    """One check call; never raises (a failure is the outcome)."""
    configured = target.problem is None and missing_configuration(target.provider) is None
    outcome = CheckOutcome(
        target.provider, target.model, list(target.used_by), configured, False, False, None, ""
    )
    if target.problem:
        outcome.error = target.problem
        return outcome
    if not configured:
        outcome.error = missing_configuration(target.provider) or "not configured"
        return outcome
    started = time.monotonic()
    try:
        result = chat(
            messages=CHECK_MESSAGES,
            provider=target.provider,
            model=target.model,
            tools=[CHECK_TOOL],
            # Ollama's OpenAI endpoint does not take tool_choice; the prompt asks for the call.
            tool_choice=None if target.provider == "ollama" else "required",
            temperature=0,
            max_tokens=CHECK_MAX_TOKENS,
            reasoning_effort="low",
            timeout=timeout or settings.LLM_REQUEST_TIMEOUT_SECONDS,
        )
    except LLMError as error:
        outcome.latency_ms = round((time.monotonic() - started) * 1000)
        outcome.error = str(error)
        return outcome
    outcome.latency_ms = round((time.monotonic() - started) * 1000)
    calls = [call for call in result.tool_calls if call.name == CHECK_TOOL_NAME]
    if calls and calls[0].parse_error is None:
        outcome.ok = outcome.tool_calling = True
    elif calls:
        outcome.error = f"the tool call's arguments were unusable: {calls[0].parse_error}"
    else:
        outcome.error = (
            "the model answered without calling the tool: it may not support tool calling"
        )
    return outcome


def llm_check_record(*, outcome: CheckOutcome) -> LlmCheck:
    with transaction.atomic():
        check, _ = LlmCheck.objects.update_or_create(
            provider=outcome.provider,
            model=outcome.model,
            defaults={
                "configured": outcome.configured,
                "ok": outcome.ok,
                "tool_calling": outcome.tool_calling,
                "latency_ms": outcome.latency_ms,
                "error": outcome.error[:2000],
                "used_by": outcome.used_by,
                "checked_at": now(),
            },
        )
    return check


def llm_checks_run(
    *, include_agents: bool = True, timeout: float | None = None
) -> list[CheckOutcome]:
    """Check every target, store each result, and return them."""
    outcomes = []
    for target in llm_check_targets(include_agents=include_agents):
        outcome = llm_check_run(target=target, timeout=timeout)
        llm_check_record(outcome=outcome)
        logger.info(
            "llm check provider=%s model=%s ok=%s tool_calling=%s",
            outcome.provider,
            outcome.model,
            outcome.ok,
            outcome.tool_calling,
        )
        outcomes.append(outcome)
    return outcomes


def check_payload(check: LlmCheck) -> dict[str, Any]:
    return {
        "provider": check.provider,
        "model": check.model,
        "ok": check.ok,
        "toolCalling": check.tool_calling,
        "configured": check.configured,
        "latencyMs": check.latency_ms,
        "error": check.error or None,
        "usedBy": check.used_by,
        "checkedAt": iso(check.checked_at),
    }


def llm_last_check(*, provider: str, model: str) -> dict[str, Any] | None:
    """The stored result of the last check of this pair, in its wire shape, or None."""
    check = LlmCheck.objects.filter(provider=provider, model=model).first()
    return check_payload(check) if check else None
