from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from config.access import visible_to
from config.errors import NotFound
from runs.models import Output, Run, Step


def run_list(
    *, viewer: Any, goal_id: str | None = None, status: str | None = None
) -> QuerySet[Run]:
    runs = visible_to(Run.objects.select_related("goal"), viewer)
    if goal_id is not None:
        runs = runs.filter(goal_id=goal_id)
    if status is not None:
        runs = runs.filter(status=status)
    return runs.order_by("-created_at", "-pk")


def run_get(*, run_id: str, viewer: Any) -> Run:
    """The run, or NotFound when it does not exist or `viewer` may not see it."""
    run = visible_to(Run.objects.select_related("goal"), viewer).filter(pk=run_id).first()
    if run is None:
        raise NotFound("Run not found")
    return run


def run_steps(*, run: Run) -> QuerySet[Step]:
    return Step.objects.filter(run=run).order_by("step_no")


def run_outputs(*, run: Run) -> QuerySet[Output]:
    return Output.objects.filter(run=run).order_by("created_at", "id")
