"""The chat client against the real HTTP chat-completions fake (the openai SDK pointed at it)."""

from __future__ import annotations

import socket
import time
from decimal import Decimal

import pytest

from agents.llm import client as llm_client
from agents.llm.client import ChatResult, ToolCallRequest, chat, parse_tool_arguments
from agents.llm.errors import LLMConfigurationError, LLMError
from agents.llm.providers import provider_base_url
from agents.llm.usage import Usage
from agents.tests.llm_helpers import fast_retries
from tests.fakes.http import Reply
from tests.fakes.openai_server import ChatReply, ToolCall

USER = [{"role": "user", "content": "Say hi"}]


@pytest.fixture(autouse=True)
def _fast(settings):
    fast_retries(settings)


def test_reply_with_usage_and_cost_from_the_price_table(fake_llm):
    fake_llm.enqueue(ChatReply(content="Hello!", prompt_tokens=1000, completion_tokens=500))

    result = chat(messages=USER)

    assert isinstance(result, ChatResult)
    assert result.content == "Hello!"
    assert result.finish_reason == "stop"
    assert result.tool_calls == []
    assert (result.provider, result.model) == ("openai", "gpt-4o-mini")
    assert result.usage == Usage(1000, 500, 1500)
    assert result.usage.as_dict() == {
        "promptTokens": 1000,
        "completionTokens": 500,
        "totalTokens": 1500,
    }
    # gpt-4o-mini: 0.15 USD / 1M prompt tokens, 0.60 USD / 1M completion tokens.
    assert result.cost_usd == Decimal("0.00045")
    assert result.assistant_message == {"role": "assistant", "content": "Hello!"}
    assert result.generation_stats["attempts"] == 1
    assert result.generation_stats["id"].startswith("chatcmpl-")
    assert fake_llm.requests[0]["messages"] == USER


def test_provider_reported_cost_wins(fake_llm):
    fake_llm.enqueue(ChatReply(prompt_tokens=1000, completion_tokens=500, cost=0.0123))

    result = chat(messages=USER)

    assert result.cost_usd == Decimal("0.0123")
    assert result.generation_stats["total_cost"] == 0.0123


def test_unknown_model_has_usage_but_no_cost(fake_llm):
    result = chat(messages=USER, model="some-private-finetune")

    assert result.usage is not None
    assert result.cost_usd is None
    assert fake_llm.requests[0]["model"] == "some-private-finetune"


def test_request_carries_the_call_options(fake_llm):
    tools = [
        {
            "type": "function",
            "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
        }
    ]

    chat(
        messages=USER,
        tools=tools,
        tool_choice="auto",
        temperature=0.2,
        max_tokens=123,
        seed=0,
    )

    body = fake_llm.requests[0]
    assert body["model"] == "gpt-4o-mini"
    assert body["tools"] == tools
    assert body["tool_choice"] == "auto"
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 123
    assert body["seed"] == 0  # 0 is a real seed, not "absent"
    assert "reasoning_effort" not in body  # gpt-4o-mini does not take it


def test_defaults_come_from_settings(fake_llm, settings):
    settings.DEFAULT_MAX_TOKENS = 777
    settings.DEFAULT_TEMPERATURE = 0.3

    chat(messages=USER)

    body = fake_llm.requests[0]
    assert (body["max_tokens"], body["temperature"]) == (777, 0.3)
    assert "tools" not in body and "seed" not in body


def test_openai_reasoning_models_get_their_own_parameters(fake_llm):
    chat(messages=USER, model="o4-mini", max_tokens=200, temperature=0.5, reasoning_effort="high")

    body = fake_llm.requests[0]
    assert body["max_completion_tokens"] == 200
    assert body["reasoning_effort"] == "high"
    assert "temperature" not in body and "max_tokens" not in body


def test_openrouter_asks_for_cost_and_sends_effort(fake_llm, settings):
    settings.OPENROUTER_BASE_URL = fake_llm.base_url
    settings.OPENROUTER_API_KEY = "or-test-key"
    fake_llm.enqueue(ChatReply(cost=0.5))

    result = chat(
        messages=USER, provider="openrouter-fetch", model="openai/gpt-4o", reasoning_effort="low"
    )

    body = fake_llm.requests[0]
    assert body["usage"] == {"include": True}
    assert body["reasoning"] == {"effort": "low"}
    assert result.provider == "openrouter"
    assert result.cost_usd == Decimal("0.5")
    headers = {k.lower(): v for k, v in fake_llm.raw_requests[0].headers.items()}
    assert headers["authorization"] == "Bearer or-test-key"
    assert headers["x-title"] == "Async Agent"


def test_retry_after_429_then_success(fake_llm):
    fake_llm.enqueue(
        ChatReply(status=429, error_message="slow down"),
        ChatReply(status=503, error_message="overloaded"),
        ChatReply(content="finally"),
    )

    result = chat(messages=USER)

    assert result.content == "finally"
    assert fake_llm.call_count == 3
    assert result.generation_stats["attempts"] == 3


def test_retry_after_header_is_honoured(fake_llm, settings):
    settings.LLM_RETRY_BASE_DELAY_SECONDS = 0.001
    fake_llm.enqueue(ChatReply(status=429, headers={"Retry-After": "0.4"}), ChatReply(content="ok"))

    started = time.monotonic()
    result = chat(messages=USER)

    assert result.content == "ok"
    assert time.monotonic() - started >= 0.4


def test_retries_are_bounded_in_count(fake_llm, settings):
    settings.LLM_MAX_RETRIES = 2
    fake_llm.responder = lambda body: ChatReply(status=500, error_message="boom")

    with pytest.raises(LLMError) as caught:
        chat(messages=USER)

    assert fake_llm.call_count == 3
    assert caught.value.status == 500
    assert caught.value.retryable is True
    assert "boom" in str(caught.value) and "3 attempts" in str(caught.value)


def test_retries_are_bounded_in_time(fake_llm, settings):
    settings.LLM_MAX_RETRIES = 10
    settings.LLM_RETRY_MAX_SECONDS = 1.0
    fake_llm.responder = lambda body: ChatReply(status=429, headers={"Retry-After": "5"})

    started = time.monotonic()
    with pytest.raises(LLMError) as caught:
        chat(messages=USER)

    # The server asked for 5 s, more than the budget left: give up at once.
    assert time.monotonic() - started < 1.0
    assert fake_llm.call_count == 1
    assert caught.value.status == 429


def test_no_retry_on_401_and_the_error_names_provider_and_model(fake_llm):
    fake_llm.responder = lambda body: ChatReply(status=401, error_message="Incorrect API key")

    with pytest.raises(LLMError) as caught:
        chat(messages=USER)

    error = caught.value
    assert fake_llm.call_count == 1
    assert (error.provider, error.model, error.status) == ("openai", "gpt-4o-mini", 401)
    assert error.retryable is False
    message = str(error)
    assert "openai" in message and "gpt-4o-mini" in message
    assert "authentication failed" in message and "Incorrect API key" in message


def test_no_retry_on_400(fake_llm):
    fake_llm.responder = lambda body: ChatReply(status=400, error_message="context too long")

    with pytest.raises(LLMError) as caught:
        chat(messages=USER)

    assert fake_llm.call_count == 1
    assert caught.value.status == 400
    assert caught.value.detail == "context too long"


def test_exhausted_quota_is_not_retried(http_server, settings):
    quota = {"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}}
    http_server.route("POST", "/v1/chat/completions", Reply(429, quota))
    settings.OPENAI_BASE_URL = http_server.url("/v1")
    settings.OPENAI_API_KEY = "sk-test"

    with pytest.raises(LLMError) as caught:
        chat(messages=USER)

    assert caught.value.retryable is False
    assert caught.value.status == 429
    assert "exceeded your quota" in str(caught.value)
    assert len(http_server.requests) == 1


def test_a_reply_that_is_not_a_completion_is_a_clear_error(http_server, settings):
    http_server.route("POST", "/v1/chat/completions", Reply(200, {"object": "nothing"}))
    settings.OPENAI_BASE_URL = http_server.url("/v1")
    settings.OPENAI_API_KEY = "sk-test"
    settings.LLM_MAX_RETRIES = 0

    with pytest.raises(LLMError) as caught:
        chat(messages=USER)

    assert "no choices" in str(caught.value)


def test_timeout_is_retried_then_reported(fake_llm, settings):
    settings.LLM_MAX_RETRIES = 1
    fake_llm.responder = lambda body: ChatReply(delay=1.0)

    started = time.monotonic()
    with pytest.raises(LLMError) as caught:
        chat(messages=USER, timeout=0.2)

    assert time.monotonic() - started < 1.5
    assert caught.value.retryable is True
    assert caught.value.status is None
    assert "timed out" in str(caught.value)
    assert fake_llm.call_count == 2


def test_timeout_setting_applies_and_a_retry_can_succeed(fake_llm, settings):
    settings.LLM_REQUEST_TIMEOUT_SECONDS = 0.2
    fake_llm.enqueue(ChatReply(delay=1.0), ChatReply(content="second try"))

    assert chat(messages=USER).content == "second try"


def test_connection_error_is_retryable(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{port}/v1"
    settings.OPENAI_API_KEY = "sk-test"
    settings.LLM_MAX_RETRIES = 1

    with pytest.raises(LLMError) as caught:
        chat(messages=USER)

    assert caught.value.retryable is True
    assert "could not connect" in str(caught.value)


def test_missing_key_is_a_configuration_error_without_a_request(fake_llm, settings):
    settings.OPENAI_API_KEY = ""

    with pytest.raises(LLMConfigurationError) as caught:
        chat(messages=USER)

    assert "OPENAI_API_KEY" in str(caught.value)
    assert fake_llm.call_count == 0


def test_unknown_provider_is_a_configuration_error(fake_llm):
    with pytest.raises(LLMConfigurationError) as caught:
        chat(messages=USER, provider="anthropic-direct")

    assert "anthropic-direct" in str(caught.value)
    assert fake_llm.call_count == 0


def test_tool_calls_are_parsed(fake_llm):
    fake_llm.enqueue(
        ChatReply(
            content=None,
            tool_calls=[
                ToolCall("webSearch", {"query": "django 5.2", "limit": 3}, id="call_a"),
                ToolCall("readFile", '{"path": "notes.md"', id="call_b"),  # malformed JSON
                ToolCall("fetchPage", '["not", "an", "object"]', id="call_c"),
            ],
        )
    )

    result = chat(messages=USER, tools=[])

    assert result.finish_reason == "tool_calls"
    first, second, third = result.tool_calls
    assert first == ToolCallRequest(
        id="call_a",
        name="webSearch",
        arguments={"query": "django 5.2", "limit": 3},
        raw_arguments='{"query": "django 5.2", "limit": 3}',
        parse_error=None,
    )
    assert second.arguments == {} and "not valid JSON" in second.parse_error
    assert second.raw_arguments == '{"path": "notes.md"'
    assert third.arguments == {} and "JSON object" in third.parse_error
    message = result.assistant_message
    assert message["role"] == "assistant" and message["content"] is None
    assert [call["id"] for call in message["tool_calls"]] == ["call_a", "call_b", "call_c"]
    assert message["tool_calls"][1]["function"] == {
        "name": "readFile",
        "arguments": '{"path": "notes.md"',
    }


def test_parse_tool_arguments_accepts_empty_arguments():
    assert parse_tool_arguments("") == ({}, None)
    assert parse_tool_arguments(None) == ({}, None)
    assert parse_tool_arguments('{"a": 1}') == ({"a": 1}, None)


def test_sdk_client_is_reused_between_calls(fake_llm):
    llm_client.clear_client_cache()
    chat(messages=USER)
    first = llm_client.sdk_client("openai")
    chat(messages=USER)

    assert llm_client.sdk_client("openai") is first
    assert llm_client.cached_client_count() == 1


def test_ollama_base_url_gets_its_v1_path(settings):
    settings.OLLAMA_BASE_URL = "http://gpu-box:11434"
    assert provider_base_url("ollama") == "http://gpu-box:11434/v1"
    settings.OLLAMA_BASE_URL = "http://gpu-box:11434/v1/"
    assert provider_base_url("ollama") == "http://gpu-box:11434/v1"


def test_ollama_needs_no_key_and_costs_nothing(fake_llm, settings):
    settings.OLLAMA_BASE_URL = fake_llm.base_url
    fake_llm.enqueue(ChatReply(prompt_tokens=5000, completion_tokens=5000))

    result = chat(messages=USER, provider="ollama", model="llama3.1:8b")

    assert result.cost_usd == Decimal(0)
    assert fake_llm.requests[0]["model"] == "llama3.1:8b"


def test_usage_sum_and_add():
    total = Usage.sum(
        [
            Usage(1, 2, 3),
            None,
            {"promptTokens": 10, "completionTokens": 20, "totalTokens": 30},
            {"prompt_tokens": 100, "completion_tokens": 200},
        ]
    )
    assert total == Usage(111, 222, 333)
    assert Usage.sum([None, None]) is None
    assert Usage(1, 1, 2).add(None) == Usage(1, 1, 2)
    assert Usage(1, 1, 2).add(Usage(2, 2, 4)).as_dict()["totalTokens"] == 6


def test_http_client_request_lines_stay_out_of_info_logs(fake_llm, caplog):
    """httpx logs each request's full URL at INFO; URLs may carry secrets in their query."""
    import logging

    caplog.set_level(logging.INFO)
    fake_llm.enqueue(ChatReply(content="ok"))
    chat(messages=[{"role": "user", "content": "hi"}])
    assert not [record for record in caplog.records if record.name.startswith("httpx")]
