"""The system page: is the service ready, and for staff why (database, Redis, Celery workers,
beat, the LLM set-up, versions).

The page itself reads only the database; the checks that wait on Redis and the workers come
in a partial loaded after it, so the page answers at once even when no worker replies. Other
users than staff see ready / not ready, as `/health/ready` tells them. Nothing configured as a
secret (keys, passwords, tokens, passwords inside URLs) is ever part of the answer.
"""

from __future__ import annotations

import logging
import platform
import tomllib
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

import celery
import django
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET

from agents.llm.checks import check_payload
from agents.models import LlmCheck
from config.access import sees_everything
from config.api.formatting import iso
from ops import health

logger = logging.getLogger(__name__)

# Settings whose values are secrets, by how their names end (OPENAI_API_KEY, WEBHOOK_SECRET,
# EMAIL_HOST_PASSWORD, ...); URLs may carry a password too.
SECRET_NAME_ENDINGS = ("KEY", "SECRET", "PASSWORD", "TOKEN", "PASS", "KEY_FALLBACKS")
URL_SETTINGS = ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
MASK = "••••••"
# Shorter values are not treated as secrets: masking a common word would garble the page.
MIN_SECRET_LENGTH = 6
# Worker inspection waits at most this long for replies (it stops early once every worker
# that answered the last ping has replied).
INSPECT_TIMEOUT_SECONDS = 1.0
_inspect_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="system-inspect")


def secret_values() -> set[str]:
    """Every configured secret string: keys, passwords and tokens, and the passwords and
    user names of URLs that carry credentials."""
    found: set[str] = set()
    for name in dir(settings):
        if not name.isupper():
            continue
        value = getattr(settings, name, None)
        if not name.endswith(SECRET_NAME_ENDINGS):
            continue
        values = value if isinstance(value, list | tuple) else [value]
        found.update(
            item for item in values if isinstance(item, str) and len(item) >= MIN_SECRET_LENGTH
        )
    urls = [str(getattr(settings, name, "") or "") for name in URL_SETTINGS]
    for url in urls:
        parts = urlsplit(url)
        for secret in (parts.password, parts.username):
            if secret and len(secret) >= MIN_SECRET_LENGTH:
                found.add(secret)
    database = settings.DATABASES.get("default", {})
    if len(str(database.get("PASSWORD") or "")) >= MIN_SECRET_LENGTH:
        found.add(str(database["PASSWORD"]))
    return found


def redact(text: str) -> str:
    """`text` with every configured secret replaced by a mask (longest first, so a secret
    that contains another is masked whole)."""
    for secret in sorted(secret_values(), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _address(url: str) -> str:
    """A URL's scheme, host, port and path, without credentials."""
    parts = urlsplit(url)
    if not parts.scheme:
        return ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def versions() -> list[tuple[str, str]]:
    try:
        app_version = metadata.version("async-agent")
    except metadata.PackageNotFoundError:
        # Run from a checkout that is not installed as a package: its pyproject says.
        try:
            with open(settings.BASE_DIR / "pyproject.toml", "rb") as handle:
                app_version = tomllib.load(handle)["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            app_version = "unknown"
    return [
        ("Async Agent", app_version),
        ("Python", platform.python_version()),
        ("Django", django.get_version()),
        ("Celery", celery.__version__),
    ]


def worker_details(known: list[str]) -> list[dict[str, Any]]:
    """Name, pool, concurrency and tasks in flight of each worker, from Celery's inspect
    (stats and active, asked at once). Only the workers in `known` (those that answered the
    last ping) are waited for, so the call ends as soon as they have replied."""
    if not known:
        return []
    from config.celery import app

    inspector = app.control.inspect(
        destination=known, timeout=INSPECT_TIMEOUT_SECONDS, limit=len(known)
    )
    stats_future = _inspect_pool.submit(inspector.stats)
    active_future = _inspect_pool.submit(inspector.active)
    try:
        stats = stats_future.result(timeout=INSPECT_TIMEOUT_SECONDS * 3) or {}
        active = active_future.result(timeout=INSPECT_TIMEOUT_SECONDS * 3) or {}
    except Exception as error:  # an unreachable broker is a finding on the page, not a crash
        logger.warning("worker inspection failed: %s", error)
        stats, active = {}, {}
    workers = []
    for name in sorted(set(known) | set(stats) | set(active)):
        info = stats.get(name) or {}
        pool = info.get("pool") or {}
        tasks = active.get(name)
        workers.append(
            {
                "name": name,
                "replied": name in stats,
                "pool": str(pool.get("implementation", "")).rsplit(":", 1)[-1].rsplit(".", 1)[-1],
                "concurrency": pool.get("max-concurrency"),
                "in_flight": len(tasks) if isinstance(tasks, list) else None,
                # Task names only: arguments may hold prompts or other private text.
                "tasks": sorted(
                    {str(task.get("name", "")) for task in tasks or [] if isinstance(task, dict)}
                ),
                "uptime_ms": info["uptime"] * 1000 if info.get("uptime") is not None else None,
                "processed": sum((info.get("total") or {}).values()),
            }
        )
    return workers


def _llm_context() -> dict[str, Any]:
    return {
        "status": health.llm_status(),
        "checks": [
            check_payload(check) for check in LlmCheck.objects.order_by("provider", "model")
        ],
    }


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200):
    # Rendered, then masked: no configured secret leaves the server whatever a check reports.
    body = redact(render_to_string(template, context, request=request))
    return HttpResponse(body, status=status)


@require_GET
@login_required
def system_page(request: HttpRequest) -> HttpResponse:
    staff = sees_everything(request.user)
    context: dict[str, Any] = {"staff": staff}
    if staff:
        context.update(
            {
                "versions": versions(),
                "llm": _llm_context(),
                "scheduler": health.scheduler_check(),
                "broker": _address(settings.CELERY_BROKER_URL),
                "database_vendor": connection.vendor,
            }
        )
    return _render(request, "system/index.html", context)


@require_GET
@login_required
def system_checks_partial(request: HttpRequest) -> HttpResponse:
    """The readiness checks (they wait on Redis and the workers, each with a deadline)."""
    status, body = health.readiness(iso(timezone.now()))
    staff = sees_everything(request.user)
    context: dict[str, Any] = {"staff": staff, "ready": status < 500, "status": body["status"]}
    if staff:
        celery_check = body["checks"].get("celery", {})
        context.update(
            {
                "checks": body["checks"],
                "workers": worker_details(list(celery_check.get("names") or [])),
                "queue": body.get("scheduler", {}).get("queue"),
                "checked_at": body["timestamp"],
            }
        )
    return _render(request, "system/_checks.html", context)
