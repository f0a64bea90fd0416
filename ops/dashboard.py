"""The dashboard: counts, recent executions (refreshed by polling a partial), spend, LLM set-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from config.api.formatting import iso
from dags import costs
from dags import selectors as dag_selectors
from goals import selectors as goal_selectors
from ops import health
from runs import selectors as run_selectors

RECENT_EXECUTIONS = 10
# Seconds between refreshes of the live parts (the recent executions table).
POLL_SECONDS = 5


def _spend(viewer: Any) -> dict[str, Decimal]:
    """Spend today and over the last seven days (UTC days)."""
    moment = timezone.now()
    today = moment.astimezone(UTC).date()
    today_start = datetime(today.year, today.month, today.day, tzinfo=UTC)
    week_start = today_start - timedelta(days=6)
    return {
        "today": costs.cost_spent(viewer=viewer, since=today_start, until=moment),
        "week": costs.cost_spent(viewer=viewer, since=week_start, until=moment),
    }


def _recent_context(viewer: Any) -> dict[str, Any]:
    recent = list(dag_selectors.execution_list(viewer=viewer)[:RECENT_EXECUTIONS])
    return {"recent_executions": recent, "poll_seconds": POLL_SECONDS}


@require_GET
@login_required
def dashboard_page(request: HttpRequest) -> HttpResponse:
    viewer = request.user
    status_counts = dag_selectors.execution_status_counts(
        executions=dag_selectors.execution_list(viewer=viewer)
    )
    context = {
        "dag_count": dag_selectors.dag_list(viewer=viewer).count(),
        "execution_total": sum(status_counts.values()),
        "execution_counts": status_counts,
        "goal_count": goal_selectors.goal_count(viewer=viewer),
        "run_count": run_selectors.run_list(viewer=viewer).count(),
        "spend": _spend(viewer),
        **_recent_context(viewer),
    }
    return render(request, "dashboard/index.html", context)


@require_GET
@login_required
def recent_executions_partial(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/_recent.html", _recent_context(request.user))


@require_GET
@login_required
def readiness_partial(request: HttpRequest) -> HttpResponse:
    """The readiness checks (database, Redis, workers, LLM set-up); slow checks have deadlines."""
    status, body = health.readiness(iso(timezone.now()))
    return render(request, "dashboard/_readiness.html", {"ready": body, "http_status": status})
