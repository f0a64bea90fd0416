from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import StrIndex
from django.db.models.lookups import GreaterThan

from agents.models import Agent
from agents.serializers import AGENT_SHAPE
from config.access import sees_everything, visible_to
from config.api.formatting import WireShape
from config.api.renderers import dumps
from config.db import IsoTimestampText
from config.errors import NotFound
from config.list_cache import page_get, page_put
from goals.models import TOOL_NAME_SEPARATOR, Goal, Schedule, SchedulerHeartbeat
from goals.serializers import GOAL_SHAPE, SCHEDULE_SHAPE

GOAL_NOT_FOUND = "Goal not found"


def _attach_schedules(goals: list[Goal]) -> list[Goal]:
    """Set `goal.schedule_list` for every goal with one query.

    Cheaper than `prefetch_related` on the hot goal list: no per-goal queryset objects.
    """
    by_goal: dict[str, list[Schedule]] = defaultdict(list)
    if goals:
        schedules = Schedule.objects.filter(goal_id__in=[goal.id for goal in goals])
        for schedule in schedules.order_by("created_at"):
            by_goal[schedule.goal_id].append(schedule)
    for goal in goals:
        # Read by the goal serializer; not a model field.
        goal.schedule_list = by_goal.get(goal.id, [])  # type: ignore[attr-defined]
    return goals


@dataclass(frozen=True)
class GoalPage:
    rows: list[dict[str, Any]]  # API payloads (GoalListItemOut)
    total: int  # goals matching the filters, on every page


def _wire_columns(shape: WireShape, prefix: str = "") -> tuple[tuple[str, ...], list[Any]]:
    """The shape's wire keys, and the `.values_list()` arguments reading its columns (through
    `prefix`) in the same order, timestamps formatted as API text by the database."""
    assert not shape.amounts, "money columns need money() (see WireShape.of_row)"
    columns: list[Any] = []
    for name in shape.fields:
        column = f"{prefix}{name}"
        columns.append(IsoTimestampText(column) if name in shape.timestamps else column)
    return tuple(shape.columns), columns


def goal_list(
    *, viewer: Any, status: str | None = None, limit: int = 100, offset: int = 0
) -> GoalPage:
    """A page of goals, newest first, as API payloads (GoalListItemOut): the goal's fields,
    `schedules` (oldest first) and `agent` (or None).

    This is the API's busiest read, so each row is built once, straight from the database's
    tuples (timestamps formatted by the database), with no model instances. Two statements, and
    a third (the count) only when the page is not the whole list.
    """
    goals = visible_to(Goal.objects.all(), viewer)
    if status is not None:
        goals = goals.filter(status=status)
    goal_keys, goal_columns = _wire_columns(GOAL_SHAPE)
    agent_keys, agent_columns = _wire_columns(AGENT_SHAPE, "agent__")
    split = len(goal_keys)
    agent_name = split + AGENT_SHAPE.fields.index("name")
    rows: list[dict[str, Any]] = []
    by_goal: dict[str, list[dict[str, Any]]] = {}
    for joined in goals.order_by("-created_at", "-pk").values_list(*goal_columns, *agent_columns)[
        offset : offset + limit
    ]:
        row = dict(zip(goal_keys, joined[:split], strict=True))
        row["schedules"] = by_goal[row["id"]] = []
        # A goal may name an agent version that is gone: its id is the goal's own column.
        row["agent"] = (
            dict(zip(agent_keys, joined[split:], strict=True))
            if joined[agent_name] is not None
            else None
        )
        rows.append(row)
    if rows:
        keys, columns = _wire_columns(SCHEDULE_SHAPE)
        goal_of = keys.index("goalId")
        schedules = Schedule.objects.filter(goal_id__in=list(by_goal)).order_by("created_at")
        for joined in schedules.values_list(*columns):
            by_goal[joined[goal_of]].append(dict(zip(keys, joined, strict=True)))
    # A first page shorter than the limit is the whole list: no need to count.
    total = len(rows) if offset == 0 and len(rows) < limit else goals.count()
    return GoalPage(rows=rows, total=total)


# Pages stored by code that wrote other fields must not be served by this code.
_LIST_FORMAT = zlib.crc32(
    repr((GOAL_SHAPE.columns, AGENT_SHAPE.columns, SCHEDULE_SHAPE.columns)).encode()
)


def _list_scope(viewer: Any) -> str | None:
    """Which goals `viewer` sees, as part of a cache key (the rule of `visible_to`); None when
    it sees none (nothing worth caching)."""
    if sees_everything(viewer):
        return "all"
    if viewer is not None and getattr(viewer, "is_authenticated", False):
        return f"user{viewer.pk}"
    if not settings.API_AUTH_REQUIRED:
        return "unowned"
    return None


def goal_list_json(
    *, viewer: Any, status: str | None = None, limit: int = 100, offset: int = 0
) -> tuple[bytes, int]:
    """`goal_list`'s page as the response body (JSON bytes), and its total.

    Served from the shared page cache while no row the list shows has changed since the page
    was built (`config.list_cache`); built from the database otherwise, or when Redis is away.
    """
    scope = _list_scope(viewer)
    key = f"goals:{_LIST_FORMAT}:{scope}:{status or ''}:{limit}:{offset}"
    version, stored = page_get(key) if scope is not None else (None, None)
    if stored is not None:
        total, _, body = stored.partition(b"\n")
        return body, int(total)
    page = goal_list(viewer=viewer, status=status, limit=limit, offset=offset)
    body = dumps(page.rows)
    if version is not None:
        page_put(key, version, b"%d\n%s" % (page.total, body))
    return body, page.total


def goal_get(*, goal_id: str, viewer: Any, with_schedules: bool = False) -> Goal:
    """The goal, or NotFound when it does not exist or `viewer` may not see it."""
    goal = visible_to(Goal.objects.all(), viewer).filter(pk=goal_id).first()
    if goal is None:
        raise NotFound(GOAL_NOT_FOUND)
    if with_schedules:
        _attach_schedules([goal])
    return goal


def scheduler_heartbeat_get(*, name: str = "beat") -> SchedulerHeartbeat | None:
    return SchedulerHeartbeat.objects.filter(name=name).first()


def failed_schedule_count() -> int:
    """Goal schedules and DAG crons beat had to disable."""
    from dags.models import Dag

    goals = Schedule.objects.filter(error__isnull=False).count()
    return goals + Dag.objects.filter(schedule_error__isnull=False).count()


def goal_count(*, viewer: Any) -> int:
    return visible_to(Goal.objects.all(), viewer).count()


# Page sorts: key → (label, ordering). Each ordering is served by an index or the primary key.
GOAL_SORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "-created": ("Newest first", ("-created_at", "-pk")),
    "created": ("Oldest first", ("created_at", "pk")),
    "-updated": ("Recently changed", ("-updated_at", "-pk")),
    "objective": ("Objective A to Z", ("objective", "pk")),
    "status": ("Status", ("status", "-created_at", "-pk")),
}


def goal_search(
    *, viewer: Any, text: str = "", status: str = "", sort: str = "-created"
) -> QuerySet[Goal]:
    """The viewer's goals for the list page, with their agent."""
    goals = visible_to(Goal.objects.select_related("agent"), viewer)
    if text:
        goals = goals.filter(Q(objective__icontains=text) | Q(pk=text))
    if status:
        goals = goals.filter(status=status)
    return goals.order_by(*GOAL_SORTS.get(sort, GOAL_SORTS["-created"])[1])


def goal_run_stats_attach(goals: list[Goal]) -> list[Goal]:
    """Set `run_count`, `last_run_status` and `last_run_at` on each goal, in one query over
    these goals only (a page), however many goals and runs there are."""
    from runs.models import Run

    stats: dict[str, dict[str, Any]] = {}
    if goals:
        runs = Run.objects.filter(goal=OuterRef("pk"))
        latest = runs.order_by("-created_at", "-pk")
        rows = (
            Goal.objects.filter(pk__in=[goal.pk for goal in goals])
            .annotate(
                run_count=Subquery(
                    runs.order_by().values("goal").annotate(total=Count("pk")).values("total")[:1]
                ),
                last_run_status=Subquery(latest.values("status")[:1]),
                last_run_at=Subquery(latest.values("created_at")[:1]),
            )
            .values("pk", "run_count", "last_run_status", "last_run_at")
        )
        stats = {row["pk"]: dict(row) for row in rows}
    for goal in goals:
        row = stats.get(goal.pk, {})
        # Page annotations set on the instances as a queryset's annotate would (not model fields).
        goal.run_count = row.get("run_count") or 0  # type: ignore[attr-defined]
        goal.last_run_status = row.get("last_run_status")  # type: ignore[attr-defined]
        goal.last_run_at = row.get("last_run_at")  # type: ignore[attr-defined]
    return goals


def goal_schedules_attach(goals: list[Goal]) -> list[Goal]:
    """Set `goal.schedule_list` (oldest first) on each goal, in one query."""
    return _attach_schedules(goals)


# --- goals per tool (the tools page) -----------------------------------------------------------
@dataclass(frozen=True)
class ToolGoals:
    count: int  # the viewer's goals that may call the tool
    newest: list[tuple[str, str]]  # (id, objective) of the newest few of them


def _listed(tool_name: str) -> str:
    return f"{TOOL_NAME_SEPARATOR}{tool_name}{TOOL_NAME_SEPARATOR}"


def _may_call(tool_name: str) -> Q:
    """Goals whose runs may call the tool: those allowing every tool, and those listing it.
    StrIndex, not `contains`: LIKE ignores case on SQLite, and a listed "READFILE" is an
    unknown name, not readFile."""
    return Q(allowed_tool_names__isnull=True) | Q(
        GreaterThan(StrIndex("allowed_tool_names", Value(_listed(tool_name))), 0)
    )


# The newest goals read once for every tool; a tool with fewer than its share among them (only
# a few goals list it) gets a query of its own.
NEWEST_READ_PER_SHOWN = 4


def goals_by_tool(*, viewer: Any, tool_names: list[str], shown: int) -> dict[str, ToolGoals]:
    """Per tool, how many of the viewer's goals may call it and the `shown` newest of them.

    One counting statement, one reading the few newest goals, and one of at most `shown` rows
    per tool rarely allowed among those: nothing read grows with the number of goals.
    """
    goals = visible_to(Goal.objects.all(), viewer).order_by("-created_at", "-pk")
    conditions = {name: _may_call(name) for name in tool_names}
    counts = goals.aggregate(
        **{
            f"tool_{index}": Count("pk", filter=conditions[name])
            for index, name in enumerate(tool_names)
        }
    )
    newest_goals = list(
        goals.values_list("id", "objective", "allowed_tool_names")[: shown * NEWEST_READ_PER_SHOWN]
    )
    by_tool = {}
    for index, name in enumerate(tool_names):
        count = counts[f"tool_{index}"]
        newest = [
            (goal_id, objective)
            for goal_id, objective, listed in newest_goals
            if listed is None or _listed(name) in listed
        ][:shown]
        if len(newest) < min(count, shown):
            newest = list(goals.filter(conditions[name]).values_list("id", "objective")[:shown])
        by_tool[name] = ToolGoals(count=count, newest=newest)
    return by_tool


# --- goals per agent version (the agent pages show them and keep used versions) -------------
def agent_goal_counts(*, agent_ids: list[str]) -> dict[str, int]:
    """How many goals (anyone's) run with each of these agent versions."""
    if not agent_ids:
        return {}
    rows = (
        Goal.objects.filter(agent_id__in=agent_ids)
        .values("agent_id")
        .annotate(count=Count("id"))
        .values_list("agent_id", "count")
    )
    return dict(rows)


@dataclass(frozen=True)
class AgentUsage:
    active: bool
    goal_count: int

    @property
    def used(self) -> bool:
        return self.active or self.goal_count > 0


def agent_usage(*, agent: Agent) -> AgentUsage:
    counts = agent_goal_counts(agent_ids=[agent.pk])
    return AgentUsage(active=agent.active, goal_count=counts.get(agent.pk, 0))
