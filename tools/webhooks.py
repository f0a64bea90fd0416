"""Signed JSON webhooks: used by the sendWebhook tool and by goal runs when they finish.

The body is the compact JSON encoding of the payload; when `WEBHOOK_SECRET` is set, the
`X-AsyncAgent-Signature: sha256=<hex>` header carries the HMAC-SHA256 of exactly those bytes, so
a receiver verifies by recomputing it over the raw body it received.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from tools.base import CancelScope, ToolContext, ToolError
from tools.netguard import FetchError, HttpResult, guarded_request
from tools.schemas import SendWebhookParams

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-AsyncAgent-Signature"
# The same value on every attempt to deliver the same thing (a DAG task's webhook however often
# the task is retried or taken over by another worker; a run's end): receivers drop repeats.
IDEMPOTENCY_HEADER = "Idempotency-Key"
WEBHOOK_USER_AGENT = "AsyncAgent/1.0"

# Headers a caller may not set: hop-by-hop ones (RFC 9110 §7.6.1), framing, and ours.
FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        SIGNATURE_HEADER.lower(),
    }
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))


def webhook_body(payload: Any) -> bytes:
    """The exact bytes sent (and signed) for `payload`."""
    try:
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), cls=DjangoJSONEncoder)
    except (TypeError, ValueError) as error:
        raise ToolError(f"The webhook payload cannot be sent as JSON: {error}") from None
    return text.encode("utf-8")


def webhook_signature(body: bytes) -> str | None:
    """`sha256=<hex>` HMAC-SHA256 of `body` with WEBHOOK_SECRET, or None when no secret is set."""
    secret = getattr(settings, "WEBHOOK_SECRET", "") or ""
    if not secret:
        return None
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def idempotency_key(*parts: str) -> str:
    """A stable, opaque key for what `parts` name (hex SHA-256 of them)."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def clean_webhook_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The caller's headers minus the forbidden ones; header injection is refused."""
    cleaned: dict[str, str] = {}
    for name, value in (headers or {}).items():
        name = str(name).strip()
        value = str(value)
        if not name or any(ch in name for ch in " :\r\n\t\x00"):
            raise ToolError(f"'{name}' is not a valid header name.")
        if any(ch in value for ch in "\r\n\x00"):
            raise ToolError(f"The value of header '{name}' contains a line break.")
        if name.lower() in FORBIDDEN_HEADERS:
            logger.info("webhook header %s dropped (not allowed from callers)", name)
            continue
        cleaned[name] = value
    return cleaned


def webhook_post(
    *,
    url: str,
    payload: Any,
    headers: dict | None = None,
    timeout: float = 10,
    attempts: int = 3,
    cancel: CancelScope | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """POST `payload` as signed JSON to `url`, through the network guard.

    `key` goes in the `Idempotency-Key` header (unless the caller's headers set one), the same
    on every attempt.

    Retries (with 1 s, 2 s, ... backoff, scaled by TOOLS_RETRY_BACKOFF_SECONDS) on timeouts,
    connection failures, 429 and 5xx. Any HTTP answer ends up in the result
    `{url, status, statusText, success, response}`; a refused URL or a network failure on the
    last attempt raises a ToolError.
    """
    cancel = cancel or CancelScope()
    body = webhook_body(payload)
    send_headers = {"Content-Type": "application/json", "User-Agent": WEBHOOK_USER_AGENT}
    custom = clean_webhook_headers(headers)
    lowered = {name.lower(): name for name in send_headers}
    for name, value in custom.items():
        send_headers.pop(lowered.get(name.lower(), name), None)
        send_headers[name] = value
    if key and IDEMPOTENCY_HEADER.lower() not in {name.lower() for name in send_headers}:
        send_headers[IDEMPOTENCY_HEADER] = key
    signature = webhook_signature(body)
    if signature:
        send_headers[SIGNATURE_HEADER] = signature

    attempts = max(1, int(attempts))
    backoff = float(getattr(settings, "TOOLS_RETRY_BACKOFF_SECONDS", 1.0))
    result: HttpResult | None = None
    for attempt in range(1, attempts + 1):
        try:
            result = guarded_request(
                "POST",
                url,
                headers=send_headers,
                body=body,
                timeout=timeout,
                max_bytes=settings.WEBHOOK_RESPONSE_MAX_BYTES,
                oversize="truncate",
                cancel=cancel,
            )
        except FetchError as error:
            if not error.retryable or attempt == attempts:
                raise ToolError(
                    f"Webhook to {url} failed after {attempt} attempt(s): {error.message}"
                ) from None
            logger.info("webhook attempt %s/%s failed: %s", attempt, attempts, error.message)
        else:
            if result.status not in RETRY_STATUSES or attempt == attempts:
                break
            logger.info("webhook attempt %s/%s got HTTP %s", attempt, attempts, result.status)
        cancel.sleep(backoff * attempt)
    assert result is not None
    return {
        "url": url,
        "status": result.status,
        "statusText": result.reason,
        "success": result.ok,
        "response": _response_content(result),
    }


def _response_content(result: HttpResult) -> Any:
    if not result.body:
        return None
    text = result.text()
    if "json" in result.content_type:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def send_webhook(params: SendWebhookParams, context: ToolContext) -> dict[str, Any]:
    """The sendWebhook tool."""
    context.report(f"Sending webhook to {params.url}")
    result = webhook_post(
        url=params.url,
        payload=params.payload,
        headers=params.headers,
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        attempts=3,
        cancel=context.cancel,
        key=_task_key(context),
    )
    context.report(f"Webhook answered HTTP {result['status']}", completed=True)
    return result


def _task_key(context: ToolContext) -> str | None:
    """The DAG task's own key: the same for every retry and re-claim of that task."""
    if context.execution_id and context.sub_step_id:
        return idempotency_key("dag-task", context.execution_id, context.sub_step_id)
    return None


def webhook_output(result: dict[str, Any], arguments: Mapping[str, Any]) -> tuple[str, str]:
    """A run's record of a webhook it sent: where, the answer, and what was sent."""
    record = {
        "url": result.get("url"),
        "status": result.get("status"),
        "delivered": bool(result.get("success")),
        "payload": arguments.get("payload"),
    }
    return "webhook", json.dumps(record, default=str)
