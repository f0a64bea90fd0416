"""sendWebhook / webhook_post: signed JSON, header rules, retries with backoff, guard."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tests.fakes.http import RecordedRequest, Reply
from tools.base import ToolError
from tools.services import tool_run
from tools.webhooks import idempotency_key, webhook_body, webhook_post, webhook_signature

SECRET = "s3cret-for-tests"


def expected_signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_webhook_posts_signed_json(tool_settings, http_server):
    tool_settings.WEBHOOK_SECRET = SECRET
    http_server.route("POST", "/hook", Reply(200, {"received": True}))
    payload = {"event": "report.ready", "items": [1, 2.5, None], "note": "naïve ✓"}

    result = tool_run(
        name="sendWebhook",
        params={"url": http_server.url("/hook"), "payload": payload},
        timeout=20,
    )

    assert result == {
        "url": http_server.url("/hook"),
        "status": 200,
        "statusText": "OK",
        "success": True,
        "response": {"received": True},
    }
    (request,) = http_server.requests
    assert request.json() == payload
    assert request.headers["Content-Type"] == "application/json"
    # The receiver can verify the exact bytes it got.
    assert request.headers["X-AsyncAgent-Signature"] == expected_signature(request.body)
    assert request.body == webhook_body(payload)


def test_no_signature_without_a_secret(tool_settings, http_server):
    http_server.route("POST", "/hook", Reply(204))

    result = tool_run(
        name="sendWebhook", params={"url": http_server.url("/hook"), "payload": {}}, timeout=20
    )

    assert result["status"] == 204
    assert result["response"] is None
    assert "X-AsyncAgent-Signature" not in http_server.requests[0].headers
    assert webhook_signature(b"{}") is None


def test_caller_headers_are_sent_except_hop_by_hop_host_and_signature(tool_settings, http_server):
    tool_settings.WEBHOOK_SECRET = SECRET
    http_server.route("POST", "/hook", Reply(200, b"thanks", {"Content-Type": "text/plain"}))
    headers = {
        "Authorization": "Bearer abc",
        "X-Team": "blue",
        "User-Agent": "custom-agent",
        "Host": "evil.example",
        "Connection": "keep-alive, X-Team",
        "Transfer-Encoding": "chunked",
        "Upgrade": "websocket",
        "Proxy-Authorization": "Basic xyz",
        "X-AsyncAgent-Signature": "sha256=forged",
    }

    result = tool_run(
        name="sendWebhook",
        params={"url": http_server.url("/hook"), "payload": {"a": 1}, "headers": headers},
        timeout=20,
    )

    assert result["response"] == "thanks"
    sent = http_server.requests[0].headers
    assert sent["Authorization"] == "Bearer abc"
    assert sent["X-Team"] == "blue"
    assert sent["User-Agent"] == "custom-agent"
    assert sent["Host"] == f"127.0.0.1:{http_server.port}"
    assert sent["Connection"] == "close"
    assert "Upgrade" not in sent and "Proxy-Authorization" not in sent
    assert "Transfer-Encoding" not in sent
    assert sent["X-AsyncAgent-Signature"] == expected_signature(http_server.requests[0].body)


def test_header_injection_is_refused(tool_settings, http_server):
    http_server.route("POST", "/hook", Reply(200))

    with pytest.raises(ToolError, match="line break"):
        tool_run(
            name="sendWebhook",
            params={
                "url": http_server.url("/hook"),
                "payload": {},
                "headers": {"X-A": "1\r\nX-Injected: yes"},
            },
            timeout=20,
        )

    assert http_server.requests == []


def test_5xx_is_retried_with_backoff_then_succeeds(tool_settings, http_server):
    replies = iter([Reply(503, b"busy"), Reply(502, b"bad gateway"), Reply(200, {"ok": 1})])
    http_server.route("POST", "/hook", lambda request: next(replies))

    result = tool_run(
        name="sendWebhook",
        params={"url": http_server.url("/hook"), "payload": {"n": 1}},
        timeout=20,
    )

    assert result["status"] == 200 and result["success"] is True
    assert len(http_server.requests) == 3
    # The same signed bytes every time.
    assert len({request.body for request in http_server.requests}) == 1


def test_persistent_5xx_returns_the_last_answer_after_three_attempts(tool_settings, http_server):
    http_server.route("POST", "/hook", Reply(500, {"error": "down"}))

    result = tool_run(
        name="sendWebhook", params={"url": http_server.url("/hook"), "payload": {}}, timeout=20
    )

    assert result["status"] == 500
    assert result["statusText"] == "Internal Server Error"
    assert result["success"] is False
    assert result["response"] == {"error": "down"}
    assert len(http_server.requests) == 3


def test_4xx_is_not_retried(tool_settings, http_server):
    http_server.route("POST", "/hook", Reply(422, {"error": "bad payload"}))

    result = tool_run(
        name="sendWebhook", params={"url": http_server.url("/hook"), "payload": {}}, timeout=20
    )

    assert result["status"] == 422 and result["success"] is False
    assert len(http_server.requests) == 1


def test_timeouts_are_retried(tool_settings, http_server):
    calls: list[RecordedRequest] = []

    def first_slow(request: RecordedRequest) -> Reply:
        calls.append(request)
        return Reply(200, {"attempt": len(calls)}, delay=2.0 if len(calls) == 1 else 0)

    http_server.route("POST", "/hook", first_slow)

    result = webhook_post(url=http_server.url("/hook"), payload={"x": 1}, timeout=0.5)

    assert result["response"] == {"attempt": 2}
    assert len(calls) == 2


def test_unreachable_endpoint_fails_after_all_attempts(tool_settings):
    from config.embedded_redis import free_port

    url = f"http://127.0.0.1:{free_port()}/hook"

    with pytest.raises(ToolError, match="failed after 3 attempt"):
        webhook_post(url=url, payload={}, timeout=2)


def test_redirect_keeps_post_on_307(tool_settings, http_server):
    http_server.route("POST", "/old", Reply(307, b"", {"Location": "/new"}))
    http_server.route("POST", "/new", Reply(200, {"ok": True}))

    result = webhook_post(url=http_server.url("/old"), payload={"k": "v"})

    assert result["success"] is True
    assert [(request.path, request.json()) for request in http_server.requests] == [
        ("/old", {"k": "v"}),
        ("/new", {"k": "v"}),
    ]


def test_webhook_post_body_is_compact_json(tool_settings, http_server):
    http_server.route("POST", "/hook", Reply(200))

    webhook_post(url=http_server.url("/hook"), payload={"a": [1, 2], "b": "é"})

    assert (
        http_server.requests[0].body
        == json.dumps({"a": [1, 2], "b": "é"}, separators=(",", ":"), ensure_ascii=False).encode()
    )


def test_a_dag_task_sends_the_same_idempotency_key_on_every_run(tool_settings, http_server):
    from tools.base import ToolContext

    http_server.route("POST", "/hook", Reply(200))
    params = {"url": http_server.url("/hook"), "payload": {"n": 1}}
    task = ToolContext(execution_id="dag-exec_aaaaaaaaaaaaaaaa", sub_step_id="002")
    for _ in range(2):  # a retry, or another worker re-claiming the task
        tool_run(name="sendWebhook", params=params, context=task, timeout=20)
    other = ToolContext(execution_id="dag-exec_aaaaaaaaaaaaaaaa", sub_step_id="003")
    tool_run(name="sendWebhook", params=params, context=other, timeout=20)
    own = {**params, "headers": {"idempotency-key": "mine"}}
    tool_run(name="sendWebhook", params=own, context=task, timeout=20)

    keys = [
        {name.lower(): value for name, value in request.headers.items()}.get("idempotency-key")
        for request in http_server.requests
    ]
    assert keys[0] == keys[1] == idempotency_key("dag-task", "dag-exec_aaaaaaaaaaaaaaaa", "002")
    assert keys[2] != keys[0]
    assert keys[3] == "mine"  # a key the plan sets itself is kept
