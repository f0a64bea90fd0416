"""The price table (bundled, overridable) and `manage.py refresh_llm_prices`."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.llm.client import chat
from agents.llm.pricing import cost_usd, model_price
from agents.llm.usage import Usage
from tests.fakes.http import Reply
from tests.fakes.openai_server import ChatReply

MILLION = Usage(1_000_000, 1_000_000, 2_000_000)


@pytest.fixture(autouse=True)
def _no_override(settings, tmp_path):
    settings.LLM_PRICES_FILE = str(tmp_path / "prices-override.json")


def test_bundled_prices_for_common_models():
    assert cost_usd("openai", "gpt-4o", MILLION) == Decimal("12.50")
    assert cost_usd("openrouter", "anthropic/claude-sonnet-4", MILLION) == Decimal("18")


def test_dated_snapshots_are_priced_as_their_family():
    assert model_price("openai", "gpt-4o-mini-2024-07-18") == model_price("openai", "gpt-4o-mini")
    assert model_price("openai", "gpt-4o-2024-08-06") == model_price("openai", "gpt-4o")
    assert model_price("openai", "gpt-4o-2024-05-13").prompt == Decimal("5.00")


def test_openrouter_variants_and_openai_fallback():
    assert cost_usd("openrouter", "meta-llama/llama-3.3-70b-instruct:free", MILLION) == 0
    # Not listed under openrouter, but an OpenAI model: priced as OpenAI lists it.
    assert cost_usd("openrouter", "openai/o1", MILLION) == Decimal("75")
    assert cost_usd("openrouter-fetch", "openai/gpt-4o-mini", MILLION) == Decimal("0.75")


def test_local_models_cost_nothing():
    assert cost_usd("ollama", "llama3.1:70b", MILLION) == Decimal(0)


def test_unknown_model_or_missing_usage_has_no_cost():
    assert cost_usd("openai", "my-finetune", MILLION) is None
    assert cost_usd("openai", "gpt-4o", None) is None


def test_reported_cost_wins():
    assert cost_usd("openai", "gpt-4o", MILLION, reported=0.25) == Decimal("0.25")
    assert cost_usd("openai", "my-finetune", None, reported=0) == Decimal(0)
    # A nonsense report falls back to the table.
    assert cost_usd("openai", "gpt-4o", MILLION, reported=-1) == Decimal("12.50")


def test_override_file_wins_and_is_reread_when_changed(settings, tmp_path):
    override = tmp_path / "prices-override.json"
    override.write_text(
        json.dumps(
            {
                "providers": {
                    "openai": {
                        "gpt-4o": {"prompt": "1", "completion": "1"},
                        "my-finetune": {"prompt": "3", "completion": "6"},
                    }
                }
            }
        )
    )
    assert cost_usd("openai", "gpt-4o", MILLION) == Decimal(2)
    assert cost_usd("openai", "my-finetune", MILLION) == Decimal(9)
    assert cost_usd("openai", "gpt-4o-mini", MILLION) == Decimal("0.75")  # bundled still there

    changed = {"providers": {"openai": {"gpt-4o": {"prompt": "2.5", "completion": "2.5"}}}}
    override.write_text(json.dumps(changed))
    assert cost_usd("openai", "gpt-4o", MILLION) == Decimal(5)


def test_a_broken_override_file_is_ignored(tmp_path):
    (tmp_path / "prices-override.json").write_text("{not json")
    assert cost_usd("openai", "gpt-4o", MILLION) == Decimal("12.50")


OPENROUTER_MODELS = {
    "data": [
        {"id": "acme/rocket-1", "pricing": {"prompt": "0.000002", "completion": "0.000008"}},
        {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}},
        {"id": "acme/free-1:free", "pricing": {"prompt": "0", "completion": "0"}},
        {"id": "broken", "pricing": {}},
    ]
}


def test_refresh_llm_prices_writes_openrouter_prices(http_server, settings, tmp_path, fake_llm):
    override = tmp_path / "prices-override.json"
    override.write_text(
        json.dumps({"providers": {"openai": {"my-finetune": {"prompt": "3", "completion": "6"}}}})
    )
    http_server.route("GET", "/api/v1/models", Reply(200, OPENROUTER_MODELS))
    settings.OPENROUTER_BASE_URL = http_server.url("/api/v1")
    out = StringIO()

    call_command("refresh_llm_prices", stdout=out)

    assert "2 OpenRouter models" in out.getvalue()
    document = json.loads(override.read_text())
    assert document["providers"]["openrouter"] == {
        "acme/rocket-1": {"prompt": "2", "completion": "8"},
        "acme/free-1:free": {"prompt": "0", "completion": "0"},
    }
    assert document["providers"]["openai"]["my-finetune"] == {"prompt": "3", "completion": "6"}
    assert document["unit"] == "USD per million tokens"
    assert cost_usd("openrouter", "acme/rocket-1", MILLION) == Decimal(10)

    # And a real call through OpenRouter is costed from the refreshed table.
    settings.OPENROUTER_BASE_URL = fake_llm.base_url
    settings.OPENROUTER_API_KEY = "or-key"
    fake_llm.enqueue(ChatReply(prompt_tokens=500_000, completion_tokens=250_000))
    result = chat(
        messages=[{"role": "user", "content": "hi"}], provider="openrouter", model="acme/rocket-1"
    )
    assert result.cost_usd == Decimal(3)


def test_refresh_llm_prices_reports_failures_and_keeps_the_file(http_server, settings, tmp_path):
    override = tmp_path / "prices-override.json"
    override.write_text('{"providers": {}}')
    http_server.route("GET", "/api/v1/models", Reply(503, {"error": "down"}))
    settings.OPENROUTER_BASE_URL = http_server.url("/api/v1")

    with pytest.raises(CommandError, match="HTTP 503"):
        call_command("refresh_llm_prices", stdout=StringIO())
    http_server.route("GET", "/api/v1/models", Reply(200, {"unexpected": True}))
    with pytest.raises(CommandError, match="Unexpected reply"):
        call_command("refresh_llm_prices", stdout=StringIO())

    assert override.read_text() == '{"providers": {}}'
