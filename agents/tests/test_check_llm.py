"""`manage.py check_llm` against the chat-completions fake, and its result on /health/ready."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.llm.checks import CHECK_TOOL_NAME
from agents.models import LlmCheck
from agents.tests.llm_helpers import fast_retries
from ops import health
from tests.factories import AgentFactory
from tests.fakes.openai_server import ChatReply, ToolCall

pytestmark = pytest.mark.django_db


def _tool_calling_model(body: dict) -> ChatReply:
    """Answers like a model that supports tools: it calls the tool it was offered."""
    if body.get("tools"):
        name = body["tools"][0]["function"]["name"]
        return ChatReply(content=None, tool_calls=[ToolCall(name, {"status": "ok"})])
    return ChatReply(content="hello")


@pytest.fixture(autouse=True)
def _quick(settings):
    fast_retries(settings, retries=0)
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 0.2
    health.reset_cache()
    yield
    health.reset_cache()


def test_check_llm_reports_tool_calling_ok_and_health_shows_it(fake_llm, staff_client):
    fake_llm.responder = _tool_calling_model
    out = StringIO()

    call_command("check_llm", stdout=out)

    text = out.getvalue()
    header, row = text.splitlines()[:2]
    assert header.split()[:2] == ["PROVIDER", "MODEL"]
    assert "openai" in row and "gpt-4o-mini" in row and "default" in row
    assert row.rstrip().endswith("OK")
    assert "All 1 LLM check(s) passed." in text
    request = fake_llm.requests[0]
    assert request["tools"][0]["function"]["name"] == CHECK_TOOL_NAME
    assert request["tool_choice"] == "required"

    check = LlmCheck.objects.get()
    assert (check.provider, check.model, check.ok, check.tool_calling) == (
        "openai",
        "gpt-4o-mini",
        True,
        True,
    )

    response = staff_client.get("/health/ready")
    llm = response.json()["llm"]
    assert llm["provider"] == "openai" and llm["model"] == "gpt-4o-mini"
    assert llm["configured"] is True
    assert llm["lastCheck"]["ok"] is True
    assert llm["lastCheck"]["toolCalling"] is True
    assert llm["lastCheck"]["checkedAt"].endswith("Z")


def test_a_model_that_ignores_the_tool_fails_the_check(fake_llm, staff_client):
    fake_llm.default = ChatReply(content="I cannot call tools")
    out = StringIO()

    with pytest.raises(CommandError, match="1 of 1 LLM check"):
        call_command("check_llm", stdout=out)

    assert "FAILED: the model answered without calling the tool" in out.getvalue()
    check = LlmCheck.objects.get()
    assert check.ok is False and check.tool_calling is False
    body = staff_client.get("/health/ready").json()
    assert body["llm"]["lastCheck"]["ok"] is False
    assert body["status"] in ("degraded", "unavailable")


def test_missing_key_and_provider_errors_are_reported(fake_llm, settings):
    settings.OPENAI_API_KEY = ""
    out = StringIO()

    with pytest.raises(CommandError):
        call_command("check_llm", "--default-only", stdout=out)

    assert "MISSING" in out.getvalue()
    assert "no API key: set OPENAI_API_KEY" in out.getvalue()
    assert fake_llm.call_count == 0
    assert LlmCheck.objects.get().configured is False


def test_every_active_agents_provider_and_model_is_checked_once(fake_llm, settings):
    fake_llm.responder = _tool_calling_model
    settings.OLLAMA_BASE_URL = fake_llm.base_url
    AgentFactory(name="A", active=True)  # default provider/model: shares the default row
    AgentFactory(name="B", model="gpt-4.1-mini", active=True)
    AgentFactory(name="C", model="gpt-4.1-mini", active=True)
    AgentFactory(name="D", provider="ollama", model="llama3.1:8b", active=True)
    AgentFactory(name="E", model="never-checked", active=False)
    out = StringIO()

    call_command("check_llm", stdout=out)

    checks = {(c.provider, c.model): c for c in LlmCheck.objects.all()}
    assert set(checks) == {
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4.1-mini"),
        ("ollama", "llama3.1:8b"),
    }
    assert checks[("openai", "gpt-4o-mini")].used_by == ["default", "agent:A"]
    assert checks[("openai", "gpt-4.1-mini")].used_by == ["agent:B", "agent:C"]
    assert all(check.ok for check in checks.values())
    assert fake_llm.call_count == 3
    # Ollama's endpoint is not sent tool_choice.
    ollama_request = next(r for r in fake_llm.requests if r["model"] == "llama3.1:8b")
    assert "tool_choice" not in ollama_request


def test_health_without_any_check_reports_none(fake_llm, staff_client):
    llm = staff_client.get("/health/ready").json()["llm"]

    assert llm["lastCheck"] is None
    assert llm["configured"] is True
