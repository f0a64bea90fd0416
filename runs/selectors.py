from __future__ import annotations

from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet

from config.access import visible_to
from config.errors import NotFound
from runs.models import Output, Run, RunEvent, Step


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


# Page sorts: key → (label, ordering).
RUN_SORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "-created": ("Newest first", ("-created_at", "-pk")),
    "created": ("Oldest first", ("created_at", "pk")),
    "-duration": ("Longest first", ("-duration", "-created_at", "-pk")),
    "duration": ("Shortest first", ("duration", "-created_at", "-pk")),
    "-steps": ("Most steps", ("-steps_executed", "-created_at", "-pk")),
    "-cost": ("Most expensive", ("-cost_usd", "-created_at", "-pk")),
    "status": ("Status", ("status", "-created_at", "-pk")),
}


def run_search(
    *, viewer: Any, status: str = "", trigger: str = "", text: str = "", sort: str = "-created"
) -> QuerySet[Run]:
    """The viewer's runs for the list page with their goal and `duration` (ended minus started,
    None while running)."""
    runs = visible_to(Run.objects.select_related("goal"), viewer)
    if status:
        runs = runs.filter(status=status)
    if trigger:
        runs = runs.filter(trigger=trigger)
    if text:
        runs = runs.filter(Q(goal__objective__icontains=text) | Q(pk=text) | Q(goal_id=text))
    runs = runs.annotate(
        duration=ExpressionWrapper(F("ended_at") - F("started_at"), output_field=DurationField())
    )
    return runs.order_by(*RUN_SORTS.get(sort, RUN_SORTS["-created"])[1])


def run_status_counts(*, viewer: Any) -> dict[str, int]:
    """How many of the viewer's runs are in each status, and `total`: one query."""
    counts = visible_to(Run.objects.all(), viewer).aggregate(
        total=Count("pk"),
        **{status: Count("pk", filter=Q(status=status)) for status in Run.Status.values},
    )
    return {key: value or 0 for key, value in counts.items()}


def run_memories(*, run: Run) -> QuerySet[Any]:
    """Memories the run left on its goal (they name the run in their metadata).

    Reached through the goal's reverse relation: runs sit below goals and do not import them.
    """
    return run.goal.memories.filter(metadata__runId=run.id).order_by("created_at", "id")


def run_events_recent(*, run: Run, limit: int) -> list[RunEvent]:
    """The run's latest `limit` stored events, oldest first."""
    rows = list(RunEvent.objects.filter(run=run).order_by("-seq")[:limit])
    rows.reverse()
    return rows
