"""The goal's webhook: a signed JSON POST to `webhookUrl` when a run ends.

Sent through `tools.webhooks.webhook_post` (the one signing and posting function: HMAC-SHA256
of the body with WEBHOOK_SECRET in `X-AsyncAgent-Signature`, the tools' network guard, retries
with backoff). Each delivery, good or bad, is recorded as a `webhook` output of the run. Every
attempt carries the same `Idempotency-Key` (derived from the run id), and a run whose webhook
was delivered is not sent again.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings

from config.api.formatting import iso, money
from runs.models import Output, Run
from tools.base import ToolError
from tools.webhooks import idempotency_key, webhook_post

logger = logging.getLogger(__name__)

RUN_FINISHED_EVENT = "run.finished"


def run_webhook_payload(run: Run) -> dict[str, Any]:
    """What the receiver gets: `{runId, goalId, status, summary, ...}`."""
    memory = run.working_memory if isinstance(run.working_memory, dict) else {}
    outputs = [
        {"kind": output.kind, "pathOrPayload": output.path_or_payload}
        for output in run.outputs.exclude(kind=Output.Kind.WEBHOOK).order_by("created_at")
        if output.kind != Output.Kind.SUMMARY
    ]
    return {
        "event": RUN_FINISHED_EVENT,
        "runId": run.id,
        "goalId": run.goal_id,
        "status": run.status,
        "summary": memory.get("summary"),
        "error": run.error,
        "stepsExecuted": run.steps_executed,
        "stepBudget": run.step_budget,
        "trigger": run.trigger,
        "startedAt": iso(run.started_at),
        "endedAt": iso(run.ended_at),
        "usage": run.usage,
        "costUsd": money(run.cost_usd),
        "outputs": outputs,
    }


def run_webhook_deliver(*, run_id: str) -> dict[str, Any] | None:
    """POST the finished run to its goal's webhook URL, if it has one; record the outcome."""
    run = Run.objects.select_related("goal").filter(pk=run_id).first()
    if run is None or run.status not in (Run.Status.COMPLETED, Run.Status.FAILED):
        return None
    url = run.goal.webhook_url
    if not url:
        return None
    if _already_delivered(run):  # a redelivered task message: the receiver has it
        logger.info("run %s webhook already delivered; not sent again", run.id)
        return None
    payload = run_webhook_payload(run)
    record: dict[str, Any] = {"url": url, "event": RUN_FINISHED_EVENT, "runStatus": run.status}
    try:
        result = webhook_post(
            url=url,
            payload=payload,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            attempts=settings.RUN_WEBHOOK_ATTEMPTS,
            key=idempotency_key("run", run.id, RUN_FINISHED_EVENT),
        )
    except ToolError as error:
        record.update(delivered=False, error=error.message)
        logger.warning("run %s webhook not delivered: %s", run.id, error.message)
    else:
        record.update(delivered=bool(result["success"]), status=result["status"])
        if not result["success"]:
            logger.warning("run %s webhook answered HTTP %s", run.id, result["status"])
    Output.objects.create(run=run, kind=Output.Kind.WEBHOOK, path_or_payload=json.dumps(record))
    return record


def _already_delivered(run: Run) -> bool:
    for output in run.outputs.filter(kind=Output.Kind.WEBHOOK):
        try:
            if json.loads(output.path_or_payload).get("delivered"):
                return True
        except (TypeError, ValueError, AttributeError):
            continue
    return False
