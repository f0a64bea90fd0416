from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from config.errors import NotFound
from goals.models import Goal, Schedule

GOAL_NOT_FOUND = "Goal not found"


def goal_list(*, status: str | None = None) -> QuerySet[Goal]:
    goals = Goal.objects.select_related("agent").prefetch_related(
        Prefetch("schedules", queryset=Schedule.objects.order_by("created_at"))
    )
    if status is not None:
        goals = goals.filter(status=status)
    return goals.order_by("-created_at")


def goal_get(*, goal_id: str, with_schedules: bool = False) -> Goal:
    goals = Goal.objects.all()
    if with_schedules:
        goals = goals.prefetch_related(
            Prefetch("schedules", queryset=Schedule.objects.order_by("created_at"))
        )
    goal = goals.filter(pk=goal_id).first()
    if goal is None:
        raise NotFound(GOAL_NOT_FOUND)
    return goal
