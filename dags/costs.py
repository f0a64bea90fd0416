"""Cost read-outs: per execution, per DAG, and a summary over time (USD as decimal strings)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import now

from config.access import visible_to
from config.api.formatting import iso, money
from config.errors import FieldInvalid
from dags.models import SYNTHESIS_TASK_ID, Dag, DagExecution, SubStep

ZERO = Decimal(0)
_RELATIVE = re.compile(r"^(\d{1,4})([dwm])$")


def _planning(dag: Dag) -> dict[str, Any]:
    return {
        "totalUsage": dag.planning_total_usage,
        "totalCostUsd": money(dag.planning_total_cost_usd),
        "attempts": dag.planning_attempts,
    }


def execution_costs(*, execution: DagExecution) -> dict[str, Any]:
    rows = list(
        SubStep.objects.filter(execution=execution)
        .order_by("task_id")
        .only("id", "task_id", "action_type", "tool_or_prompt_name", "usage", "cost_usd")
    )
    synthesis = next((row for row in rows if row.task_id == SYNTHESIS_TASK_ID), None)
    dag = execution.dag
    planning_cost = dag.planning_total_cost_usd if dag else None
    return {
        "dagId": execution.dag_id,
        "executionId": execution.id,
        "planning": _planning(dag) if dag else None,
        "execution": {
            "totalUsage": execution.total_usage,
            "totalCostUsd": money(execution.total_cost_usd),
            "subSteps": [
                {
                    "id": row.id,
                    "taskId": row.task_id,
                    "actionType": row.action_type,
                    "toolOrPromptName": row.tool_or_prompt_name,
                    "usage": row.usage,
                    "costUsd": money(row.cost_usd),
                }
                for row in rows
                if row.task_id != SYNTHESIS_TASK_ID
            ],
            "synthesis": (
                {"usage": synthesis.usage, "costUsd": money(synthesis.cost_usd)}
                if synthesis
                else None
            ),
        },
        "totals": {
            "planningCostUsd": money(planning_cost or ZERO),
            "executionCostUsd": money(execution.total_cost_usd or ZERO),
            "grandTotalCostUsd": money(
                (planning_cost or ZERO) + (execution.total_cost_usd or ZERO)
            ),
        },
    }


def dag_costs(*, dag: Dag, viewer: Any) -> dict[str, Any]:
    """The DAG's planning cost and the costs of its executions that `viewer` may see."""
    executions = list(
        visible_to(DagExecution.objects.filter(dag=dag), viewer)
        .order_by("-created_at")
        .only("id", "status", "total_cost_usd", "started_at", "completed_at")
    )
    executions_total = sum((e.total_cost_usd or ZERO for e in executions), ZERO)
    planning = dag.planning_total_cost_usd or ZERO
    return {
        "dagId": dag.id,
        "planning": _planning(dag),
        "executions": [
            {
                "executionId": e.id,
                "status": e.status,
                "totalCostUsd": money(e.total_cost_usd),
                "startedAt": iso(e.started_at),
                "completedAt": iso(e.completed_at),
            }
            for e in executions
        ],
        "totals": {
            "planningCostUsd": money(planning),
            "executionsCostUsd": money(executions_total),
            "grandTotalCostUsd": money(planning + executions_total),
        },
    }


def parse_moment(value: str | None, *, default: datetime, field: str) -> datetime:
    """An ISO date/date-time, or `<n>d` / `<n>w` / `<n>m` back from now (months as 30 days),
    in UTC. Raises FieldInvalid for anything else, including dates that do not exist."""
    if value is None or value == "":
        return default
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        days = {"d": 1, "w": 7, "m": 30}[unit] * amount
        return now() - timedelta(days=days)
    try:
        moment = parse_datetime(text)
        if moment is None and len(text) == 10:
            day = parse_date(text)
            if day is not None:
                moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if moment is not None:
            # Offsets at the ends of the calendar (0001-01-01T00:00+05:00) do not fit in UTC.
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # well-formed but impossible, e.g. 2026-02-30
        moment = None
    if moment is None:
        raise FieldInvalid(
            [field], f"Invalid time value '{value}': use an ISO date or <n>d, <n>w, <n>m."
        )
    return moment


def summary_range(*, start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """The `from`/`to` of a cost summary: `to` defaults to now, `from` to 30 days before `to`."""
    until = parse_moment(end, default=now(), field="to")
    try:
        default_start = until - timedelta(days=30)
    except OverflowError:
        default_start = datetime.min.replace(tzinfo=UTC)
    since = parse_moment(start, default=default_start, field="from")
    if since > until:
        raise FieldInvalid(["from"], "'from' must not be later than 'to'.")
    return since, until


def _bucket(moment: datetime, group_by: str) -> str:
    day: date = moment.astimezone(UTC).date()
    if group_by == "week":
        day -= timedelta(days=(day.weekday() + 1) % 7)  # back to Sunday
        return day.isoformat()
    if group_by == "month":
        return day.strftime("%Y-%m")
    return day.isoformat()


BY_TIME = ("day", "week", "month")
BY_DAG = ("agent", "model")


def _dag_key(agent_name: str | None, params: Any, group_by: str) -> str:
    """A DAG's planner agent, or the model its request named ("default" when none)."""
    if group_by == "agent":
        return agent_name or "(unknown)"
    model = params.get("model") if isinstance(params, dict) else None
    return model or "default"


def cost_spent(*, viewer: Any, since: datetime, until: datetime | None = None) -> Decimal:
    """Planning plus execution cost incurred in [since, until] by what `viewer` may see, summed
    in the database (two aggregate queries, whatever the number of rows); counted by the same
    dates as `cost_summary` (a DAG when planned, an execution when completed)."""
    until = until or now()
    planned = visible_to(Dag.objects.all(), viewer).filter(
        created_at__gte=since, created_at__lte=until
    )
    executed = visible_to(DagExecution.objects.all(), viewer).filter(
        completed_at__gte=since, completed_at__lte=until
    )
    total = ZERO
    for rows, field in ((planned, "planning_total_cost_usd"), (executed, "total_cost_usd")):
        total += rows.aggregate(total=Sum(field))["total"] or ZERO
    # SQLite sums decimals in floating point: back to the stored precision.
    return total.quantize(Decimal("1e-10"))


def cost_summary(*, start: datetime, end: datetime, group_by: str, viewer: Any) -> dict[str, Any]:
    """Planning costs of the DAGs and execution costs of the executions `viewer` may see.

    `group_by` is day, week or month (when the cost was incurred), or agent or model (the DAG's
    planner agent or requested model; an execution counts for its DAG's)."""
    planning: dict[str, Decimal] = defaultdict(lambda: ZERO)
    execution: dict[str, Decimal] = defaultdict(lambda: ZERO)
    by_time = group_by not in BY_DAG
    dags = visible_to(Dag.objects.all(), viewer).filter(
        created_at__gte=start, created_at__lte=end, planning_total_cost_usd__isnull=False
    )
    for created_at, cost, agent_name, params in dags.values_list(
        "created_at", "planning_total_cost_usd", "agent_name", "params"
    ):
        if cost is None:  # excluded by the filter
            continue
        key = _bucket(created_at, group_by) if by_time else _dag_key(agent_name, params, group_by)
        planning[key] += cost
    executions = visible_to(DagExecution.objects.all(), viewer).filter(
        completed_at__gte=start, completed_at__lte=end, total_cost_usd__isnull=False
    )
    for completed_at, cost, agent_name, params in executions.values_list(
        "completed_at", "total_cost_usd", "dag__agent_name", "dag__params"
    ):
        if cost is None or completed_at is None:  # excluded by the filter
            continue
        key = _bucket(completed_at, group_by) if by_time else _dag_key(agent_name, params, group_by)
        execution[key] += cost
    keys = sorted(set(planning) | set(execution))
    summary = [
        {
            "date": key,
            "planningCostUsd": money(planning[key]),
            "executionCostUsd": money(execution[key]),
            "totalCostUsd": money(planning[key] + execution[key]),
        }
        for key in keys
    ]
    planning_total = sum(planning.values(), ZERO)
    execution_total = sum(execution.values(), ZERO)
    return {
        "dateRange": {"from": iso(start), "to": iso(end), "groupBy": group_by},
        "summary": summary,
        "totals": {
            "planningCostUsd": money(planning_total),
            "executionCostUsd": money(execution_total),
            "totalCostUsd": money(planning_total + execution_total),
        },
    }
