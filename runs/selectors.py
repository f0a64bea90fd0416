from __future__ import annotations

from django.db.models import QuerySet

from config.errors import NotFound
from runs.models import Output, Run, Step

RUN_LIST_LIMIT = 50


def run_list(*, goal_id: str | None = None, status: str | None = None) -> QuerySet[Run]:
    runs = Run.objects.select_related("goal")
    if goal_id is not None:
        runs = runs.filter(goal_id=goal_id)
    if status is not None:
        runs = runs.filter(status=status)
    return runs.order_by("-created_at")[:RUN_LIST_LIMIT]


def run_get(*, run_id: str) -> Run:
    run = Run.objects.select_related("goal").filter(pk=run_id).first()
    if run is None:
        raise NotFound("Run not found")
    return run


def run_steps(*, run: Run) -> QuerySet[Step]:
    return Step.objects.filter(run=run).order_by("step_no")


def run_outputs(*, run: Run) -> QuerySet[Output]:
    return Output.objects.filter(run=run).order_by("created_at", "id")
