"""Liveness and readiness: database, Redis, Celery workers, schedules and the LLM set-up.

Readiness checks run in parallel with a deadline and are cached briefly per process, so the
endpoint answers fast and never hangs on an unreachable dependency. Workers are judged by the
heartbeats they record (config/workers.py), not by a broadcast ping, which would wait for replies.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import redis
from django.conf import settings
from django.db import connection

from agents.llm.providers import (
    UnknownProvider,
    canonical_provider,
    provider_configured,
    resolve_model,
)
from config.api.formatting import iso

logger = logging.getLogger(__name__)

_executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="health")
_cache_lock = threading.Lock()
_cache: dict[str, Any] = {"at": 0.0, "value": None}


class WorkersUnavailable(Exception):
    """No live worker; `detail` still lists the heartbeats seen."""

    def __init__(self, reason: str, detail: dict[str, Any]) -> None:
        super().__init__(reason)
        self.detail = detail


def _timed(check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check() or {}
        result = {"ok": True, **detail}
    except WorkersUnavailable as error:
        result = {"ok": False, "error": str(error), **error.detail}
    except Exception as error:  # any failure is a finding, not a crash
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    result["latencyMs"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()
    return {"vendor": connection.vendor}


def _check_redis() -> dict[str, Any]:
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()
    return {}


def _check_workers() -> dict[str, Any]:
    """Ok when at least one worker recorded a heartbeat within WORKER_HEARTBEAT_STALE_SECONDS."""
    from ops.selectors import worker_heartbeats

    beats = worker_heartbeats()
    live = [beat for beat in beats if beat["fresh"]]
    detail = {
        "workers": len(live),
        "names": [beat["name"] for beat in live],
        "heartbeats": beats,
    }
    if live:
        return detail
    limit = settings.WORKER_HEARTBEAT_STALE_SECONDS
    if not beats:
        reason = "no Celery worker has recorded a heartbeat"
    else:
        latest = min(beats, key=lambda beat: beat["secondsSinceSeen"])
        reason = (
            f"no Celery worker heartbeat in the last {limit:g} s (latest: {latest['name']}, "
            f"{latest['state']}, {latest['secondsSinceSeen']:g} s ago)"
        )
    raise WorkersUnavailable(reason, detail)


def _run_checks() -> dict[str, dict[str, Any]]:
    deadline = settings.HEALTH_CHECK_TIMEOUT_SECONDS * 2 + 0.5
    futures = {
        "database": _executor.submit(_timed, _check_database),
        "redis": _executor.submit(_timed, _check_redis),
        "celery": _executor.submit(_timed, _check_workers),
    }
    results: dict[str, dict[str, Any]] = {}
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=deadline)
        except FutureTimeout:
            results[name] = {"ok": False, "error": "timed out"}
    if not results["redis"]["ok"]:
        results["celery"] = {"ok": False, "error": "Redis is unreachable"}
    return results


def cached_checks() -> dict[str, dict[str, Any]]:
    with _cache_lock:
        if _cache["value"] is not None and time.monotonic() - _cache["at"] < (
            settings.HEALTH_CACHE_SECONDS
        ):
            return _cache["value"]
    value = _run_checks()
    with _cache_lock:
        _cache.update(at=time.monotonic(), value=value)
    return value


def reset_cache() -> None:
    with _cache_lock:
        _cache.update(at=0.0, value=None)


def llm_status() -> dict[str, Any]:
    try:
        provider = canonical_provider(None)
    except UnknownProvider as error:
        return {
            "provider": settings.LLM_PROVIDER,
            "model": settings.LLM_MODEL,
            "configured": False,
            "error": str(error),
        }
    model = resolve_model(provider)
    return {
        "provider": provider,
        "model": model,
        "configured": provider_configured(provider),
        "lastCheck": _last_llm_check(provider, model),
    }


def _last_llm_check(provider: str, model: str) -> dict[str, Any] | None:
    """The stored result of the last `manage.py check_llm` for this pair (None if never run)."""
    from agents.llm.checks import llm_last_check

    try:
        return llm_last_check(provider=provider, model=model)
    except Exception as error:  # the database check reports an unreachable database
        logger.warning("could not read the last LLM check: %s", error)
        return None


def schedule_summary() -> dict[str, Any]:
    """Schedule and run-queue figures, read from the database (no in-process state)."""
    from dags.models import Dag
    from goals.models import Goal, Schedule
    from runs.models import Run

    active_goal_schedules = Schedule.objects.filter(
        active=True, goal__status=Goal.Status.ACTIVE
    ).count()
    scheduled_dags = list(
        Dag.objects.filter(schedule_active=True, cron_schedule__isnull=False)
        .exclude(cron_schedule="")
        .values_list("id", flat=True)
    )
    queued = Run.objects.filter(status=Run.Status.PENDING).count()
    running = Run.objects.filter(status=Run.Status.RUNNING).count()
    return {
        "scheduler": {
            "activeSchedules": active_goal_schedules,
            "maxConcurrency": settings.MAX_CONCURRENT_RUNS,
            "queue": {
                "size": queued,
                "pending": running,
                "concurrency": settings.MAX_CONCURRENT_RUNS,
                "isPaused": False,
            },
        },
        "dagScheduler": {"activeSchedules": len(scheduled_dags), "schedules": scheduled_dags},
    }


def scheduler_check() -> dict[str, Any]:
    """Beat's last tick, as beat recorded it in the database. Not ok when it is older than
    SCHEDULER_STALE_SECONDS, unless SCHEDULER_REQUIRED is off (no beat is meant to run)."""
    from django.utils.timezone import now

    from goals.selectors import failed_schedule_count, scheduler_heartbeat_get

    heartbeat = scheduler_heartbeat_get()
    required = settings.SCHEDULER_REQUIRED
    result: dict[str, Any] = {
        "ok": True,
        "required": required,
        "lastTickAt": iso(heartbeat.ticked_at) if heartbeat else None,
        "secondsSinceTick": None,
        "failedSchedules": failed_schedule_count(),
    }
    if heartbeat is not None:
        age = max(0.0, (now() - heartbeat.ticked_at).total_seconds())
        result["secondsSinceTick"] = round(age, 1)
        result["host"] = heartbeat.hostname
    if not required:
        return result
    limit = settings.SCHEDULER_STALE_SECONDS
    if heartbeat is None:
        result.update(ok=False, error="the scheduler (celery beat) has never ticked")
    elif result["secondsSinceTick"] > limit:
        result.update(
            ok=False,
            error=f"the scheduler (celery beat) has not ticked for more than {limit:g} s",
        )
    return result


def readiness(now_iso: str) -> tuple[int, dict[str, Any]]:
    checks = dict(cached_checks())
    llm = llm_status()
    body: dict[str, Any] = {"status": "ready", "provider": llm["provider"], "model": llm["model"]}
    if checks["database"]["ok"]:
        try:
            body.update(schedule_summary())
        except Exception as error:
            logger.warning("schedule summary failed: %s", error)
        checks["scheduler"] = _timed(scheduler_check)
    else:
        checks["scheduler"] = {"ok": False, "error": "the database is unreachable"}
    body["llm"] = llm
    body["checks"] = checks
    body["timestamp"] = now_iso
    essential = ("database", "redis", "celery", "scheduler")
    if not all(checks[name]["ok"] for name in essential):
        body["status"] = "unavailable"
        return 503, body
    last_llm_check = llm.get("lastCheck")
    llm_failed = last_llm_check is not None and not last_llm_check["ok"]
    if not llm["configured"] or llm_failed:
        body["status"] = "degraded"
    return 200, body


def liveness() -> dict[str, Any]:
    from django.utils.timezone import now

    return {"status": "ok", "timestamp": iso(now())}
