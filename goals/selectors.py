from __future__ import annotations

from collections import defaultdict

from config.errors import NotFound
from goals.models import Goal, Schedule

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
        goal.schedule_list = by_goal.get(goal.id, [])
    return goals


def goal_list(*, status: str | None = None) -> list[Goal]:
    """Goals newest first, each with its agent and `schedule_list`."""
    goals = Goal.objects.select_related("agent")
    if status is not None:
        goals = goals.filter(status=status)
    return _attach_schedules(list(goals.order_by("-created_at")))


def goal_get(*, goal_id: str, with_schedules: bool = False) -> Goal:
    goal = Goal.objects.filter(pk=goal_id).first()
    if goal is None:
        raise NotFound(GOAL_NOT_FOUND)
    if with_schedules:
        _attach_schedules([goal])
    return goal
