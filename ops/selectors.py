"""Reads for operations pages and health checks."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from config.api.formatting import iso
from config.workers import HEARTBEATS_KEY, heartbeat_client

logger = logging.getLogger(__name__)


def worker_heartbeats(*, now: float | None = None) -> list[dict[str, Any]]:
    """The workers that reported a heartbeat lately, as plain dicts, by name.

    Each: `name` (Celery's node name), `hostname`, `pid`, `concurrency` (pool threads),
    `active` (tasks in flight), `tasks` (task name -> count in flight), `startedAt`, `seenAt`
    (ISO-8601), `secondsSinceSeen`, `state` ("running", "stopping" or "stopped") and `fresh`
    (seen within WORKER_HEARTBEAT_STALE_SECONDS and not stopped). Workers seen within
    WORKER_HEARTBEAT_KEEP_SECONDS are listed, fresh or not.

    Raises redis.RedisError when Redis cannot be reached.
    """
    moment = time.time() if now is None else now
    raw = heartbeat_client().hgetall(HEARTBEATS_KEY)
    beats = []
    for field, value in raw.items():
        try:
            beat = json.loads(value)
            seen = float(beat["seenAt"])
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed worker heartbeat %r", field)
            continue
        age = max(0.0, moment - seen)
        if age > settings.WORKER_HEARTBEAT_KEEP_SECONDS:
            continue
        state = beat.get("state") or "running"
        beats.append(
            {
                "name": beat.get("name") or _text(field),
                "hostname": beat.get("hostname"),
                "pid": beat.get("pid"),
                "concurrency": beat.get("concurrency"),
                "active": int(beat.get("active") or 0),
                "tasks": dict(beat.get("tasks") or {}),
                "startedAt": _iso(beat.get("startedAt")),
                "seenAt": _iso(seen),
                "secondsSinceSeen": round(age, 1),
                "state": state,
                "fresh": state != "stopped" and age <= settings.WORKER_HEARTBEAT_STALE_SECONDS,
            }
        )
    return sorted(beats, key=lambda beat: beat["name"])


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _iso(epoch: Any) -> str | None:
    if not isinstance(epoch, int | float):
        return None
    return iso(datetime.fromtimestamp(epoch, tz=UTC))
