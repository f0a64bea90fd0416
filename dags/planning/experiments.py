"""dag-experiments: plan one request with several models and temperatures, in parallel.

Each model/temperature pair is one Celery task (`dags.plan_experiment`) running the planning
service on a worker; successful plans are stored there as `dag_…` DAGs, so nothing is lost if
the caller stops waiting. The API call waits for the group's outcomes through the Redis result
backend (the outcomes are the reply, not state: they expire, the DAGs stay).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from celery import group, signature
from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.contrib.auth import get_user_model
from kombu.exceptions import OperationalError

from config.api.ids import new_id
from config.errors import DomainError
from dags.planning.services import PlanRequest, dag_plan

logger = logging.getLogger(__name__)

PLAN_EXPERIMENT_TASK = "dags.plan_experiment"

MAX_EXPERIMENTS = 25
_LISTED_ISSUES = 3


class QueueUnavailable(DomainError):
    status = 503


def _failure_text(error: DomainError) -> str:
    """One line saying why a run failed, with the detail the error body carries."""
    text = error.message
    details = error.extra.get("details")
    issues = error.extra.get("validation_errors") or []
    gaps = error.extra.get("gaps") or []
    if details:
        text += f": {details}"
    elif issues:
        text += ": " + "; ".join(issue["message"] for issue in issues[:_LISTED_ISSUES])
        if len(issues) > _LISTED_ISSUES:
            text += f" (and {len(issues) - _LISTED_ISSUES} more)"
    elif gaps:
        text += ": gaps left uncovered: " + "; ".join(gaps)
    return text


def experiment_run(*, request: dict[str, Any], owner_id: int | None = None) -> dict[str, Any]:
    """One experiment (on a worker): plan, store as `dag_…` owned by user `owner_id`, and say
    how it went."""
    plan_request = PlanRequest(**request)
    owner = get_user_model().objects.filter(pk=owner_id).first() if owner_id is not None else None
    try:
        result = dag_plan(request=plan_request, owner=owner, dag_id=new_id("dag"))
    except DomainError as error:
        return {"dagId": None, "success": False, "error": _failure_text(error)}
    except Exception as error:  # reported in the experiment's outcome, never lost
        logger.exception("experiment planning failed model=%s", plan_request.model)
        return {"dagId": None, "success": False, "error": f"Unexpected error: {error}"}
    if result.dag is None:
        question = result.job.clarification_query or ""
        return {
            "dagId": None,
            "success": False,
            "error": f"Clarification required (nothing stored): {question}",
        }
    return {"dagId": result.dag.id, "success": True}


def experiments_run(
    *, base: PlanRequest, models: list[str], temperatures: list[float], owner: Any
) -> dict[str, Any]:
    """Plan `base` with every model and temperature in parallel, the DAGs owned by `owner`;
    the reply body clients expect."""
    owner_id = owner.pk if owner is not None else None
    pairs = [(model, temperature) for model in models for temperature in temperatures]
    # Named, not imported: the task (dags/tasks.py) calls `experiment_run` in this module.
    signatures = [
        signature(
            PLAN_EXPERIMENT_TASK,
            args=(replace(base, model=model, temperature=temperature).as_dict(),),
            kwargs={"owner_id": owner_id},
        )
        for model, temperature in pairs
    ]
    try:
        pending = group(signatures).apply_async()
    except OperationalError as error:
        raise QueueUnavailable(f"Could not reach the task queue: {error}") from None
    timeout = float(settings.DAG_EXPERIMENTS_TIMEOUT_SECONDS)
    deadline = time.monotonic() + timeout
    results: list[dict[str, Any]] = []
    for (model, temperature), async_result in zip(pairs, pending.results, strict=True):
        remaining = max(0.01, deadline - time.monotonic())
        try:
            outcome = async_result.get(timeout=remaining, propagate=False)
        except CeleryTimeout:
            async_result.backend.remove_pending_result(async_result)
            outcome = {
                "dagId": None,
                "success": False,
                "error": f"No result within {timeout:g} s; the plan is stored as a DAG if it "
                "still succeeds.",
            }
        else:
            async_result.forget()
        if not isinstance(outcome, dict):  # the task itself raised (e.g. a time limit)
            outcome = {"dagId": None, "success": False, "error": f"Planning failed: {outcome}"}
        entry = {
            "dagId": outcome.get("dagId"),
            "model": model,
            "temperature": temperature,
            "success": bool(outcome.get("success")),
        }
        if not entry["success"]:
            entry["error"] = outcome.get("error") or "Planning failed"
        results.append(entry)
    success_count = sum(1 for entry in results if entry["success"])
    logger.info("dag experiments done total=%d succeeded=%d", len(results), success_count)
    return {
        "status": "completed",
        "totalExperiments": len(results),
        "successCount": success_count,
        "failureCount": len(results) - success_count,
        "results": results,
    }
