"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions protocol.

Replies are scripted: queue them with `enqueue()` (consumed in order) or decide per request
with `responder`. Every request is recorded so tests can see exactly what reached the model.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http import LocalHttpServer, RecordedRequest, Reply


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any] | str
    id: str | None = None


@dataclass
class ChatReply:
    """One scripted answer. `status` other than 200 answers with an OpenAI-style error."""

    content: str | None = "ok"
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 10
    completion_tokens: int = 5
    cost: float | None = None
    delay: float = 0.0
    status: int = 200
    error_message: str = "scripted error"
    headers: dict[str, str] = field(default_factory=dict)
    model: str | None = None


class FakeChatCompletions:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.raw_requests: list[RecordedRequest] = []
        self.default = ChatReply()
        self.responder: Callable[[dict[str, Any]], ChatReply] | None = None
        self._queue: deque[ChatReply] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server = LocalHttpServer()
        self._server.route("POST", "/v1/chat/completions", self._chat)
        self._server.route("GET", "/v1/models", self._models)

    # --- control -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self._server.url("/v1")

    def enqueue(self, *replies: ChatReply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.raw_requests.clear()
            self.responder = None
            self.default = ChatReply()

    @property
    def call_count(self) -> int:
        return len(self.requests)

    def start(self) -> FakeChatCompletions:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    # --- protocol ------------------------------------------------------------------------------
    def _next_reply(self, body: dict[str, Any]) -> ChatReply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(body)
        return self.default

    def _models(self, _request: RecordedRequest) -> Reply:
        return Reply(200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})

    def _chat(self, request: RecordedRequest) -> Reply:
        body = request.json()
        with self._lock:
            self.requests.append(body)
            self.raw_requests.append(request)
        reply = self._next_reply(body)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.status != 200:
            error = {"error": {"message": reply.error_message, "type": "scripted", "code": None}}
            return Reply(reply.status, error, headers=reply.headers)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id or f"call_{next(self._ids)}",
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": call.arguments
                        if isinstance(call.arguments, str)
                        else json.dumps(call.arguments),
                    },
                }
                for call in reply.tool_calls
            ]
        usage: dict[str, Any] = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }
        if reply.cost is not None:
            usage["cost"] = reply.cost
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        payload = {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or body.get("model", "fake-model"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }
        return Reply(200, payload, headers=reply.headers)
