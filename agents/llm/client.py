"""One chat call to any provider, through the `openai` SDK and the provider's OpenAI endpoint.

`chat()` resolves the provider and model, sends the request, retries transient failures
(429, 5xx, timeouts, connection errors) with exponential backoff and jitter while honouring
`Retry-After`, and returns a `ChatResult` with the text, parsed tool calls, usage and USD cost.
The SDK's own retries are off so these are the only ones. SDK clients are cached per process
and provider/base URL/key so HTTP connections are reused across calls and threads.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import openai
from django.conf import settings

from agents.llm import pricing
from agents.llm.errors import LLMConfigurationError, LLMError
from agents.llm.providers import (
    UnknownProvider,
    canonical_provider,
    missing_configuration,
    provider_api_key,
    provider_base_url,
    resolve_model,
)
from agents.llm.turns import turn_over
from agents.llm.usage import Usage

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
REASONING_EFFORTS = ("minimal", "low", "medium", "high")
_MAX_CACHED_CLIENTS = 32
_OPENROUTER_HEADERS = {"X-Title": "Async Agent"}


# --- results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ToolCallRequest:
    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str
    # Set when the model's arguments were not a JSON object; `arguments` is then {}.
    parse_error: str | None = None


@dataclass
class ChatResult:
    content: str | None
    tool_calls: list[ToolCallRequest]
    finish_reason: str | None
    usage: Usage | None
    cost_usd: Decimal | None
    provider: str
    model: str
    generation_stats: dict[str, Any] | None = None
    # The reply as a message to append to the conversation (tool calls included).
    assistant_message: dict[str, Any] = field(default_factory=dict)


# --- SDK clients ------------------------------------------------------------------------------
_clients: dict[tuple[Any, ...], openai.OpenAI] = {}
_clients_lock = threading.Lock()


def sdk_client(provider: str) -> openai.OpenAI:
    """The SDK client for the provider, shared by every call in this process (its connection
    pool is reused); a new one when the key or base URL changes."""
    base_url = provider_base_url(provider)
    # Ollama needs no key but the SDK insists on one.
    api_key = provider_api_key(provider) or "ollama"
    key = (
        os.getpid(),  # a forked process must not share its parent's connections
        provider,
        base_url,
        hashlib.sha256(api_key.encode()).hexdigest(),
    )
    client = _clients.get(key)
    if client is not None:
        return client
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if len(_clients) >= _MAX_CACHED_CLIENTS:
                _clients.pop(next(iter(_clients)))
            client = openai.OpenAI(
                api_key=api_key,
                base_url=base_url,
                max_retries=0,
                timeout=settings.LLM_REQUEST_TIMEOUT_SECONDS,
                default_headers=_OPENROUTER_HEADERS if provider == "openrouter" else None,
                # The SDK's own HTTP client settings, plus a hook that ends the sending
                # thread's turn (agents/llm/turns.py) once its request has been prepared.
                http_client=openai.DefaultHttpxClient(
                    timeout=settings.LLM_REQUEST_TIMEOUT_SECONDS,
                    event_hooks={"request": [_request_leaving]},
                ),
            )
            _clients[key] = client
    return client


def _request_leaving(_request: object) -> None:
    turn_over()


def clear_client_cache() -> None:
    with _clients_lock:
        _clients.clear()


def cached_client_count() -> int:
    return len(_clients)


# --- request ----------------------------------------------------------------------------------
def is_openai_reasoning_model(model: str) -> bool:
    """OpenAI's reasoning models take `max_completion_tokens` and no `temperature`."""
    name = model.lower().removeprefix("openai/")
    if name.startswith("gpt-5") and "chat" not in name:
        return True
    return len(name) >= 2 and name[0] == "o" and name[1].isdigit()


def _request_body(
    *,
    provider: str,
    model: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    tool_choice: str | dict[str, Any] | None,
    temperature: float | None,
    max_tokens: int | None,
    seed: int | None,
    reasoning_effort: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": messages}
    extra: dict[str, Any] = {}
    if temperature is None:
        temperature = settings.DEFAULT_TEMPERATURE
    if max_tokens is None:
        max_tokens = settings.DEFAULT_MAX_TOKENS
    reasoning = provider == "openai" and is_openai_reasoning_model(model)
    if reasoning:
        body["max_completion_tokens"] = max_tokens
        if reasoning_effort:
            body["reasoning_effort"] = reasoning_effort
    else:
        body["temperature"] = temperature
        body["max_tokens"] = max_tokens
    if provider == "openrouter":
        # Ask OpenRouter for the call's cost in `usage.cost`; it ignores effort for models
        # that do not reason.
        extra["usage"] = {"include": True}
        if reasoning_effort:
            extra["reasoning"] = {"effort": reasoning_effort}
    if seed is not None:
        body["seed"] = seed
    if tools:
        body["tools"] = tools
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
    if extra:
        body["extra_body"] = extra
    return body


# --- errors and retries -----------------------------------------------------------------------
def _provider_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("error") or body.get("detail")
        if message:
            return str(message) if not isinstance(message, Mapping) else json.dumps(message)
    elif isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return error.message


def _error_code(error: openai.APIStatusError) -> str | None:
    body = error.body
    if isinstance(body, Mapping):
        code = body.get("code") or body.get("type")
        return str(code) if code is not None else None
    return None


def _status_failure(error: openai.APIStatusError, provider: str, model: str) -> LLMError:
    status = error.status_code
    detail = _provider_message(error)
    code = _error_code(error)
    if status == 401:
        what = "authentication failed"
        hint = missing_configuration(provider) or "check the API key"
        detail_text = f"{detail} ({hint})"
    elif status == 403:
        what, detail_text = "access denied", detail
    elif status == 404:
        what, detail_text = "model or endpoint not found", detail
    elif status == 400 or status == 422:
        what, detail_text = "request rejected", detail
    elif status == 429:
        what, detail_text = "rate limited", detail
    elif status >= 500:
        what, detail_text = "provider error", detail
    else:
        what, detail_text = "request failed", detail
    retryable = status in RETRYABLE_STATUSES or status >= 500
    if status == 429 and code == "insufficient_quota":
        retryable = False  # an exhausted quota does not come back by waiting
    return LLMError(
        f"{what} (HTTP {status}): {detail_text}",
        provider=provider,
        model=model,
        status=status,
        retryable=retryable,
        detail=detail,
    )


def _retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = email.utils.parsedate_to_datetime(value) if value else None
    if parsed is None:
        return None
    return max(0.0, parsed.timestamp() - time.time())


def _backoff_seconds(retry_number: int) -> float:
    """Exponential backoff with jitter: half the step fixed, half random."""
    step = min(
        settings.LLM_RETRY_MAX_DELAY_SECONDS,
        settings.LLM_RETRY_BASE_DELAY_SECONDS * (2 ** (retry_number - 1)),
    )
    return step / 2 + random.uniform(0, step / 2)


def _as_llm_error(
    error: Exception, provider: str, model: str, timeout: float, base_url: str
) -> tuple[LLMError, float | None]:
    """Our error for an SDK exception, and the server's Retry-After when it gave one."""
    if isinstance(error, openai.APITimeoutError):
        message = f"no reply within {timeout:g} s (timed out)"
        return LLMError(message, provider=provider, model=model, retryable=True), None
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error
        message = f"could not connect to {base_url}: {cause}"
        return LLMError(message, provider=provider, model=model, retryable=True), None
    if isinstance(error, openai.APIStatusError):
        headers = error.response.headers if error.response is not None else None
        return _status_failure(error, provider, model), _retry_after_seconds(headers)
    message = f"unexpected reply: {type(error).__name__}: {error}"
    return LLMError(message, provider=provider, model=model), None


def _body_error(completion: Any, provider: str, model: str) -> LLMError | None:
    """A 200 reply without choices (OpenRouter reports some upstream failures this way)."""
    if not isinstance(completion, Mapping):
        return LLMError("unexpected reply: not a chat completion", provider=provider, model=model)
    choices = completion.get("choices")
    if isinstance(choices, list) and choices and all(isinstance(c, Mapping) for c in choices):
        if isinstance(choices[0].get("message"), Mapping):
            return None
        return LLMError("unexpected reply: not a chat completion", provider=provider, model=model)
    problem = completion.get("error")
    if isinstance(problem, Mapping):
        code = problem.get("code")
        status = code if isinstance(code, int) else None
        retryable = status is None or status in RETRYABLE_STATUSES or status >= 500
        message = str(problem.get("message") or "the provider reported an error")
        return LLMError(
            f"provider error{f' (code {code})' if code else ''}: {message}",
            provider=provider,
            model=model,
            status=status,
            retryable=retryable,
            detail=message,
        )
    return LLMError("the reply had no choices", provider=provider, model=model, retryable=True)


# --- reply parsing ----------------------------------------------------------------------------
def parse_tool_arguments(raw: str | None) -> tuple[dict[str, Any], str | None]:
    """The arguments object of a tool call, or ({}, reason) when the model sent bad JSON."""
    text = (raw or "").strip()
    if not text:
        return {}, None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return {}, f"arguments are not valid JSON: {error}"
    if not isinstance(value, dict):
        return {}, f"arguments must be a JSON object, got {type(value).__name__}"
    return value, None


def _tool_calls(message: Mapping[str, Any]) -> list[ToolCallRequest]:
    calls: list[ToolCallRequest] = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):  # a non-function (custom) tool call: not ours
            continue
        given = function.get("arguments")
        raw = given if isinstance(given, str) else ""
        if not isinstance(given, str) and given is not None:
            raw = json.dumps(given)
        arguments, problem = parse_tool_arguments(raw)
        calls.append(
            ToolCallRequest(
                id=call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
                name=function.get("name") or "",
                arguments=arguments,
                raw_arguments=raw,
                parse_error=problem,
            )
        )
    return calls


def _assistant_message(
    message: Mapping[str, Any], content: str | None, calls: list[ToolCallRequest]
) -> dict:
    reply: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        reply["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.raw_arguments or "{}"},
            }
            for call in calls
        ]
    # OpenRouter asks for reasoning details to be sent back with tool results.
    if message.get("reasoning_details"):
        reply["reasoning_details"] = message["reasoning_details"]
    return reply


def _count(value: Any) -> int:
    """A token count as reported (a number, or a numeric string); 0 when absent or not one."""
    if isinstance(value, bool):
        return 0
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _usage(
    completion: Mapping[str, Any],
) -> tuple[Usage | None, float | str | None, dict[str, Any]]:
    """Usage, the provider-reported cost if any, and token details for the statistics."""
    raw = completion.get("usage")
    if not isinstance(raw, Mapping):
        return None, None, {}
    prompt = _count(raw.get("prompt_tokens"))
    completion_tokens = _count(raw.get("completion_tokens"))
    total = _count(raw.get("total_tokens")) or prompt + completion_tokens
    reported = raw.get("cost")
    if isinstance(reported, bool) or not isinstance(reported, int | float | str):
        reported = None
    details: dict[str, Any] = {}
    prompt_details = raw.get("prompt_tokens_details")
    if isinstance(prompt_details, Mapping) and prompt_details.get("cached_tokens"):
        details["cached_tokens"] = prompt_details["cached_tokens"]
    completion_details = raw.get("completion_tokens_details")
    if isinstance(completion_details, Mapping) and completion_details.get("reasoning_tokens"):
        details["reasoning_tokens"] = completion_details["reasoning_tokens"]
    return Usage(prompt, completion_tokens, total), reported, details


def _result(
    completion: Mapping[str, Any], provider: str, model: str, latency_ms: float, attempts: int
) -> ChatResult:
    choice = completion["choices"][0]
    message = choice["message"]
    calls = _tool_calls(message)
    content = message.get("content") if isinstance(message.get("content"), str) else None
    usage, reported, details = _usage(completion)
    cost = pricing.cost_usd(provider, model, usage, reported)
    replied_model = completion.get("model") if isinstance(completion.get("model"), str) else None
    if cost is None and usage is not None and replied_model:
        cost = pricing.cost_usd(provider, replied_model, usage)
    finish_reason = choice.get("finish_reason")
    stats: dict[str, Any] = {
        "id": completion.get("id"),
        "model": replied_model or model,
        "finish_reason": finish_reason,
        "latency": round(latency_ms, 1),
        "attempts": attempts,
        **details,
    }
    if completion.get("provider"):
        stats["provider"] = completion["provider"]
    if choice.get("native_finish_reason"):
        stats["native_finish_reason"] = choice["native_finish_reason"]
    if reported is not None:
        stats["total_cost"] = reported
    return ChatResult(
        content=content,
        tool_calls=calls,
        finish_reason=finish_reason,
        usage=usage,
        cost_usd=cost,
        provider=provider,
        model=model,
        generation_stats=stats,
        assistant_message=_assistant_message(message, content, calls),
    )


# --- the call ---------------------------------------------------------------------------------
def resolve_target(provider: str | None = None, model: str | None = None) -> tuple[str, str]:
    """(canonical provider, model) for a call; an unknown provider is a configuration error."""
    try:
        name = canonical_provider(provider)
    except UnknownProvider as error:
        raise LLMConfigurationError(
            str(error),
            provider=provider or settings.LLM_PROVIDER or "(none)",
            model=model or settings.LLM_MODEL or "(none)",
        ) from error
    return name, resolve_model(name, model)


def chat(
    *,
    messages: list[dict[str, Any]],
    provider: str | None = None,
    model: str | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: str | dict[str, Any] | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    seed: int | None = None,
    timeout: float | None = None,
    reasoning_effort: str | None = None,
) -> ChatResult:
    """One chat completion (with tools when given); raises `LLMError` when it cannot succeed.

    Provider and model default to the settings (`LLM_PROVIDER`, `<PROVIDER>_MODEL`,
    `LLM_MODEL`); temperature and max tokens to `DEFAULT_TEMPERATURE`/`DEFAULT_MAX_TOKENS`.
    """
    provider_name, model_name = resolve_target(provider, model)
    problem = missing_configuration(provider_name)
    if problem:
        raise LLMConfigurationError(problem, provider=provider_name, model=model_name)
    if reasoning_effort is not None and reasoning_effort not in REASONING_EFFORTS:
        raise LLMConfigurationError(
            f"reasoning_effort must be one of {', '.join(REASONING_EFFORTS)}",
            provider=provider_name,
            model=model_name,
        )
    client = sdk_client(provider_name)
    timeout = timeout or settings.LLM_REQUEST_TIMEOUT_SECONDS
    body = _request_body(
        provider=provider_name,
        model=model_name,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        reasoning_effort=reasoning_effort,
    )
    started = time.monotonic()
    deadline = started + settings.LLM_RETRY_MAX_SECONDS
    attempt = 0
    while True:
        attempt += 1
        attempt_started = time.monotonic()
        retry_after: float | None = None
        try:
            completion = _create_completion(client, body, timeout)
            failure = _body_error(completion, provider_name, model_name)
        except openai.OpenAIError as error:
            failure, retry_after = _as_llm_error(
                error, provider_name, model_name, timeout, provider_base_url(provider_name)
            )
        if failure is None:
            latency_ms = (time.monotonic() - attempt_started) * 1000
            result = _result(completion, provider_name, model_name, latency_ms, attempt)
            logger.debug(
                "llm call ok provider=%s model=%s attempts=%d latency_ms=%.0f",
                provider_name,
                model_name,
                attempt,
                latency_ms,
            )
            return result
        if not failure.retryable or attempt > settings.LLM_MAX_RETRIES:
            raise _final(failure, attempt)
        wait = retry_after if retry_after is not None else _backoff_seconds(attempt)
        if time.monotonic() + wait > deadline:
            raise _final(failure, attempt)
        logger.warning(
            "llm call failed, retrying provider=%s model=%s status=%s attempt=%d wait_s=%.2f: %s",
            provider_name,
            model_name,
            failure.status,
            attempt,
            wait,
            failure.detail[:200],
        )
        time.sleep(wait)


def _create_completion(client: openai.OpenAI, body: dict[str, Any], timeout: float) -> Any:
    """One chat-completions request, sent with the SDK's documented `client.post` for custom
    requests (its "Making custom/undocumented requests" section): the same auth, retries of
    connection errors and error types as `chat.completions.create`, without that method's walk
    over the typed parameters (1.2-2 ms of CPU per call). The reply is taken as the decoded
    JSON (`cast_to=dict`) and its documented fields read here: building the SDK's typed
    `ChatCompletion` from it cost about 0.3 ms of CPU more per call, for the few fields we read.
    Provider extras are merged into the body, as the SDK's `extra_body` would. Returns what the
    provider sent (`_body_error` checks its shape)."""
    payload = dict(body)
    payload.update(payload.pop("extra_body", None) or {})
    return client.post(
        "/chat/completions",
        body=payload,
        cast_to=dict,
        options={"timeout": timeout},
    )


def _final(failure: LLMError, attempts: int) -> LLMError:
    if attempts > 1:
        failure.args = (f"{failure.args[0]} (gave up after {attempts} attempts)",)
    logger.warning(
        "llm call failed provider=%s model=%s status=%s attempts=%d",
        failure.provider,
        failure.model,
        failure.status,
        attempts,
    )
    return failure
