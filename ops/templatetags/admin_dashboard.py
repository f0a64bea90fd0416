"""`{% admin_dashboard %}`: the numbers on the admin's index page (templates/admin/index.html).

Counts by status, spend today and the schedules that are failing, read through the selectors
with the signed-in user as viewer. A fixed number of queries, however many rows there are.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django import template
from django.db.models import Count, Q, Sum
from django.utils.timezone import now

from config.access import visible_to
from config.admin_tools import admin_link, admin_url, status_badge
from config.display import usd
from dags import costs
from dags import selectors as dag_selectors
from dags.models import Dag, DagExecution
from goals.models import Goal, Schedule, ScheduleTick
from runs import selectors as run_selectors
from runs.models import Run

register = template.Library()

# Failing schedules listed by name; the rest are counted and reachable through the filtered list.
FAILING_LISTED = 10
# Failed ticks counted over this window.
TICK_WINDOW = timedelta(hours=24)


def _counts(rows, statuses: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(statuses, 0)
    for status, count in rows.order_by().values_list("status").annotate(count=Count("pk")):
        counts[status] = count
    return counts


def _status_rows(model, counts: dict[str, int]) -> list[dict[str, Any]]:
    listing = admin_url(model, "changelist")
    return [
        {"badge": status_badge(status), "count": count, "url": f"{listing}?status__exact={status}"}
        for status, count in counts.items()
    ]


def dashboard_numbers(*, viewer: Any, moment: datetime | None = None) -> dict[str, Any]:
    moment = moment or now()
    today = moment.astimezone(UTC).date()
    today_start = datetime(today.year, today.month, today.day, tzinfo=UTC)

    executions = dag_selectors.execution_status_counts(
        executions=dag_selectors.execution_list(viewer=viewer)
    )
    runs = _counts(run_selectors.run_list(viewer=viewer), Run.Status.values)
    goals = _counts(visible_to(Goal.objects.all(), viewer), Goal.Status.values)

    dag_spend = costs.cost_spent(viewer=viewer, since=today_start, until=moment)
    run_spend = run_selectors.run_list(viewer=viewer).filter(
        ended_at__gte=today_start, ended_at__lte=moment
    ).aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)

    failing_schedules = (
        visible_to(Schedule.objects.all(), viewer, owner_field="goal__owner")
        .filter(error__isnull=False)
        .exclude(error="")
        .select_related("goal")
        .order_by("-error_at")
    )
    failing_dags = (
        dag_selectors.dag_list(viewer=viewer)
        .filter(schedule_error__isnull=False)
        .exclude(schedule_error="")
        .only("id", "dag_title", "schedule_error", "schedule_error_at")
        .order_by("-schedule_error_at")
    )
    ticks = ScheduleTick.objects.filter(
        outcome=ScheduleTick.Outcome.FAILED, created_at__gte=moment - TICK_WINDOW
    ).filter(
        Q(schedule__in=visible_to(Schedule.objects.all(), viewer, owner_field="goal__owner"))
        | Q(dag__in=dag_selectors.dag_list(viewer=viewer).order_by())
    )
    failing = [
        {
            "link": admin_link(schedule, f"goal {schedule.goal_id} · {schedule.cron_expr}"),
            "error": schedule.error,
            "at": schedule.error_at,
        }
        for schedule in failing_schedules[:FAILING_LISTED]
    ] + [
        {
            "link": admin_link(dag, f"DAG {dag}"),
            "error": dag.schedule_error,
            "at": dag.schedule_error_at,
        }
        for dag in failing_dags[:FAILING_LISTED]
    ]
    return {
        "executions": _status_rows(DagExecution, executions),
        "execution_total": sum(executions.values()),
        "runs": _status_rows(Run, runs),
        "run_total": sum(runs.values()),
        "goals": _status_rows(Goal, goals),
        "goal_total": sum(goals.values()),
        "spend_dags": usd(dag_spend),
        "spend_runs": usd(run_spend),
        "spend_total": usd(dag_spend + run_spend),
        "failing": failing,
        "failing_schedule_count": failing_schedules.count(),
        "failing_dag_count": failing_dags.count(),
        "failed_ticks": ticks.count(),
        "failed_ticks_url": admin_url(ScheduleTick, "changelist")
        + f"?outcome__exact={ScheduleTick.Outcome.FAILED}",
        "dag_url": admin_url(Dag, "changelist"),
        "today": today,
    }


@register.inclusion_tag("admin/dashboard.html", takes_context=True)
def admin_dashboard(context: template.Context) -> dict[str, Any]:
    return dashboard_numbers(viewer=context["request"].user)
