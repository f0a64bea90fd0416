"""Cost read-outs: per execution, per DAG, and a summary over time (USD as decimal strings)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import BigIntegerField, F, Sum
from django.db.models.functions import Cast, Round, Substr, TruncDate
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import now

from agents.llm.usage import Spend
from config.access import visible_to
from config.api.formatting import iso, money
from config.errors import FieldInvalid
from dags.models import SYNTHESIS_TASK_ID, Dag, DagExecution, SubStep

ZERO = Decimal(0)
UNSETTLED = frozenset(
    {DagExecution.Status.PENDING, DagExecution.Status.RUNNING, DagExecution.Status.WAITING}
)
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
    # The execution's stored totals are summed from its nodes when it stops; while it still runs
    # they lag, and its nodes' own figures (the rows read here) are the current ones.
    spend = Spend.of(execution.total_usage, execution.total_cost_usd)
    if execution.status in UNSETTLED:
        spend = Spend()
        for row in rows:
            spend = spend.plus(row.usage or None, row.cost_usd)
    execution_cost = spend.cost_usd
    return {
        "dagId": execution.dag_id,
        "executionId": execution.id,
        "planning": _planning(dag) if dag else None,
        "execution": {
            "totalUsage": spend.usage_dict(),
            "totalCostUsd": money(execution_cost),
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
            "executionCostUsd": money(execution_cost or ZERO),
            "grandTotalCostUsd": money((planning_cost or ZERO) + (execution_cost or ZERO)),
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


def _day_bucket(day: date, group_by: str) -> str:
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


# Costs are summed in the database as whole units of 1e-10 USD (the cost columns' scale):
# integers add exactly on every database, where SQLite would add the decimals as floats.
COST_SCALE = 10**10
ID_CHUNK = 500


def _scaled_sum(field: str) -> Sum:
    return Sum(Cast(Round(F(field) * COST_SCALE), BigIntegerField()))


def _unscaled(units: int) -> Decimal:
    return Decimal(units).scaleb(-10)


def _utc_day(field: str) -> Any:
    """The UTC day of a timestamp column, computed by the database. SQLite keeps timestamps
    as UTC text, so the day is its first ten characters (Django's date truncation would call
    back into Python for every row); other databases truncate natively."""
    if connection.vendor == "sqlite":
        return Substr(field, 1, 10)
    return TruncDate(field, tzinfo=UTC)


def _per_day(rows: Any, moment_field: str, cost_field: str) -> list[tuple[date, int]]:
    """(UTC day, cost units) of `rows`, summed per day in the database (one query)."""
    per_day = (
        rows.annotate(day=_utc_day(moment_field))
        .values("day")
        .annotate(units=_scaled_sum(cost_field))
        .order_by()
        .values_list("day", "units")
    )
    return [
        (day if isinstance(day, date) else date.fromisoformat(day), units or 0)
        for day, units in per_day
    ]


def _per_dag(dags: Any, executions: Any) -> tuple[list[tuple], list[tuple]]:
    """Planning cost units per DAG and execution cost units per DAG (summed in the database),
    each with the DAG's planner agent and request parameters to name its group."""
    planning = list(
        dags.annotate(
            units=Cast(Round(F("planning_total_cost_usd") * COST_SCALE), BigIntegerField())
        ).values_list("agent_name", "params", "units")
    )
    per_dag = dict(
        executions.values("dag_id")
        .annotate(units=_scaled_sum("total_cost_usd"))
        .order_by()
        .values_list("dag_id", "units")
    )
    # The DAGs' names for their groups, read by id (fewer rows than executions; in chunks, as
    # databases bound the number of query parameters).
    ids = [dag_id for dag_id in per_dag if dag_id is not None]
    names: dict[str, tuple[Any, Any]] = {}
    for first in range(0, len(ids), ID_CHUNK):
        chunk = Dag.objects.filter(pk__in=ids[first : first + ID_CHUNK])
        names.update(
            (dag_id, (agent_name, params))
            for dag_id, agent_name, params in chunk.values_list("id", "agent_name", "params")
        )
    execution = [(*names.get(dag_id, (None, None)), units) for dag_id, units in per_dag.items()]
    return planning, execution


def cost_summaries(
    *, start: datetime, end: datetime, group_bys: Sequence[str], viewer: Any
) -> dict[str, dict[str, Any]]:
    """`cost_summary` for several groupings at once: the time groupings share one sum per
    day, the agent and model groupings one sum per DAG (four queries in all, and one more per
    500 DAGs that spent in the range)."""
    dags = visible_to(Dag.objects.all(), viewer).filter(
        created_at__gte=start, created_at__lte=end, planning_total_cost_usd__isnull=False
    )
    executions = visible_to(DagExecution.objects.all(), viewer).filter(
        completed_at__gte=start, completed_at__lte=end, total_cost_usd__isnull=False
    )
    days: tuple[list, list] | None = None
    per_dag: tuple[list, list] | None = None
    summaries = {}
    for group_by in group_bys:
        planning: dict[str, int] = defaultdict(int)
        execution: dict[str, int] = defaultdict(int)
        if group_by in BY_DAG:
            if per_dag is None:
                per_dag = _per_dag(dags, executions)
            for buckets, rows in zip((planning, execution), per_dag, strict=True):
                for agent_name, params, units in rows:
                    buckets[_dag_key(agent_name, params, group_by)] += units or 0
        else:
            if days is None:
                days = (
                    _per_day(dags, "created_at", "planning_total_cost_usd"),
                    _per_day(executions, "completed_at", "total_cost_usd"),
                )
            for buckets, rows in zip((planning, execution), days, strict=True):
                for day, units in rows:
                    buckets[_day_bucket(day, group_by)] += units
        summaries[group_by] = _summary(start, end, group_by, planning, execution)
    return summaries


def _summary(
    start: datetime,
    end: datetime,
    group_by: str,
    planning: dict[str, int],
    execution: dict[str, int],
) -> dict[str, Any]:
    keys = sorted(set(planning) | set(execution))
    summary = [
        {
            "date": key,
            "planningCostUsd": money(_unscaled(planning.get(key, 0))),
            "executionCostUsd": money(_unscaled(execution.get(key, 0))),
            "totalCostUsd": money(_unscaled(planning.get(key, 0) + execution.get(key, 0))),
        }
        for key in keys
    ]
    planning_total = sum(planning.values())
    execution_total = sum(execution.values())
    return {
        "dateRange": {"from": iso(start), "to": iso(end), "groupBy": group_by},
        "summary": summary,
        "totals": {
            "planningCostUsd": money(_unscaled(planning_total)),
            "executionCostUsd": money(_unscaled(execution_total)),
            "totalCostUsd": money(_unscaled(planning_total + execution_total)),
        },
    }


def cost_summary(*, start: datetime, end: datetime, group_by: str, viewer: Any) -> dict[str, Any]:
    """Planning costs of the DAGs and execution costs of the executions `viewer` may see.

    `group_by` is day, week or month (when the cost was incurred), or agent or model (the DAG's
    planner agent or requested model; an execution counts for its DAG's). Summed in the
    database: two queries whatever the number of rows."""
    return cost_summaries(start=start, end=end, group_bys=[group_by], viewer=viewer)[group_by]


def cost_periods(*, start: datetime, end: datetime, group_by: str) -> list[str]:
    """Every day, week (from Sunday) or month key from `start` to `end`, in the summary's
    format, so that a chart shows the periods without spend too."""
    first = _day_bucket(start.astimezone(UTC).date(), group_by)
    last_day = end.astimezone(UTC).date()
    keys = [first]
    day = start.astimezone(UTC).date()
    step = timedelta(days=7 if group_by == "week" else 1)
    while day < last_day:
        day = min(day + step, last_day)
        key = _day_bucket(day, group_by)
        if key != keys[-1]:
            keys.append(key)
    return keys


def cost_top_executions(
    *, viewer: Any, start: datetime, end: datetime, limit: int = 10
) -> list[DagExecution]:
    """The executions `viewer` may see that cost most, among those completed in the range (the
    same executions the summary counts)."""
    return list(
        visible_to(DagExecution.objects.all(), viewer)
        .filter(completed_at__gte=start, completed_at__lte=end, total_cost_usd__gt=0)
        .select_related("dag")
        .only(
            "id",
            "status",
            "primary_intent",
            "total_cost_usd",
            "completed_at",
            "dag__id",
            "dag__dag_title",
        )
        .order_by("-total_cost_usd", "id")[:limit]
    )


def cost_summary_rows(summary: dict[str, Any]) -> list[list[str]]:
    """A summary as rows for a spreadsheet: a heading, one row per group, then the totals."""
    group_by = summary["dateRange"]["groupBy"]
    rows = [[group_by, "planning_usd", "execution_usd", "total_usd"]]
    for row in summary["summary"]:
        rows.append(
            [row["date"], row["planningCostUsd"], row["executionCostUsd"], row["totalCostUsd"]]
        )
    totals = summary["totals"]
    rows.append(
        ["total", totals["planningCostUsd"], totals["executionCostUsd"], totals["totalCostUsd"]]
    )
    return rows
