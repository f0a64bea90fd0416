"""Goal lifecycle: create (with an optional schedule), update, pause, resume, delete."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils.timezone import now

from agents.models import Agent
from agents.selectors import agent_get_active
from config.cron import require_cron, require_timezone
from config.errors import Conflict, InvalidInput
from config.list_cache import lists_changed
from goals.models import Goal, Schedule
from goals.schedules import (
    goal_schedule_remove,
    goal_schedule_sync,
    goal_schedules_remove,
    goal_schedules_sync,
)
from goals.selectors import agent_usage

logger = logging.getLogger(__name__)

DEFAULT_AGENT_NAME = "defaultAgent"


def _resolve_agent(agent_name: str | None, agent_id: str | None) -> Agent | None:
    if agent_name:
        agent = agent_get_active(name=agent_name)
        if agent is None:
            raise InvalidInput(f"No active agent found with name: {agent_name}")
        return agent
    if agent_id:
        agent = Agent.objects.filter(pk=agent_id).first()
        if agent is None:
            raise InvalidInput(f"Agent not found with id: {agent_id}")
        return agent
    return agent_get_active(name=DEFAULT_AGENT_NAME)


@transaction.atomic
def goal_create(
    *,
    objective: str,
    params: dict[str, Any] | None = None,
    webhook_url: str | None = None,
    agent_name: str | None = None,
    agent_id: str | None = None,
    schedule: dict[str, str] | None = None,
    owner: Any,
) -> Goal:
    """A new goal owned by `owner` (a user, or None for the anonymous local user); its runs
    and scheduled runs belong to the same owner."""
    agent = _resolve_agent(agent_name, agent_id)
    if schedule is not None:
        require_cron(schedule["cron_expr"], ["schedule", "cronExpr"])
        require_timezone(schedule.get("timezone", "UTC"), ["schedule", "timezone"])
    goal = Goal.objects.create(
        objective=objective,
        params=params or {},
        webhook_url=webhook_url,
        agent=agent,
        owner=owner,
    )
    if schedule is not None:
        schedule_add(
            goal=goal,
            cron_expr=schedule["cron_expr"],
            timezone=schedule.get("timezone", "UTC"),
        )
    logger.info(
        "goal created id=%s agent=%s scheduled=%s", goal.id, goal.agent_id, schedule is not None
    )
    return goal


@transaction.atomic
def schedule_add(*, goal: Goal, cron_expr: str, timezone: str = "UTC") -> Schedule:
    """Add a schedule to the goal and register it with beat."""
    require_cron(cron_expr, ["cronExpr"])
    require_timezone(timezone, ["timezone"])
    schedule = Schedule.objects.create(goal=goal, cron_expr=cron_expr.strip(), timezone=timezone)
    goal_schedule_sync(schedule=schedule)
    return schedule


@transaction.atomic
def schedule_update(*, schedule: Schedule, changes: dict[str, Any]) -> Schedule:
    """Change a schedule's cron, time zone or active flag and update its beat row."""
    if "cron_expr" in changes:
        require_cron(changes["cron_expr"], ["cronExpr"])
        changes["cron_expr"] = changes["cron_expr"].strip()
    if "timezone" in changes:
        require_timezone(changes["timezone"], ["timezone"])
    if {"cron_expr", "timezone"} & set(changes):
        # A new cron or zone is a fresh start for a schedule beat had to disable.
        changes = {**changes, "error": None, "error_at": None}
    for field, value in changes.items():
        setattr(schedule, field, value)
    if changes:
        schedule.save(update_fields=list(changes))
    goal_schedule_sync(schedule=schedule)
    return schedule


@transaction.atomic
def schedule_delete(*, schedule: Schedule) -> None:
    goal_schedule_remove(schedule_id=schedule.id)
    schedule.delete()


@transaction.atomic
def goal_update(*, goal: Goal, changes: dict[str, Any]) -> Goal:
    if not changes:
        return goal
    for field, value in changes.items():
        setattr(goal, field, value)
    goal.updated_at = now()
    goal.save(update_fields=[*changes, "updated_at"])
    if "status" in changes:
        # A paused or archived goal's schedules stop firing; an active one's fire again.
        goal_schedules_sync(goal=goal)
    return goal


@transaction.atomic
def goal_pause(*, goal: Goal) -> Goal:
    goal.status = Goal.Status.PAUSED
    goal.updated_at = now()
    goal.save(update_fields=["status", "updated_at"])
    goal.schedules.update(active=False)
    lists_changed()
    goal_schedules_sync(goal=goal)
    logger.info("goal paused id=%s", goal.id)
    return goal


@transaction.atomic
def goal_resume(*, goal: Goal) -> Goal:
    goal.status = Goal.Status.ACTIVE
    goal.updated_at = now()
    goal.save(update_fields=["status", "updated_at"])
    goal.schedules.update(active=True)
    lists_changed()
    goal_schedules_sync(goal=goal)
    logger.info("goal resumed id=%s", goal.id)
    return goal


@transaction.atomic
def goal_delete(*, goal: Goal) -> None:
    """Delete the goal with its schedules, runs, steps, outputs and memories."""
    goal_id = goal.id
    goal_schedules_remove(goal=goal)
    goal.delete()
    logger.info("goal deleted id=%s", goal_id)


@transaction.atomic
def goal_schedules_set(*, goal: Goal, schedules: list[dict[str, str]]) -> dict[str, int]:
    """Make the goal's schedules exactly `schedules` ({"id"?, "cron_expr", "timezone"}): rows
    with a known id are updated, rows without one are added, and the goal's other schedules
    are deleted. Ids of another goal's schedules are treated as new rows."""
    existing = {schedule.id: schedule for schedule in Schedule.objects.filter(goal=goal)}
    kept: set[str] = set()
    counts = {"added": 0, "updated": 0, "deleted": 0}
    for wanted in schedules:
        schedule = existing.get(wanted.get("id") or "")
        if schedule is None:
            schedule_add(goal=goal, cron_expr=wanted["cron_expr"], timezone=wanted["timezone"])
            counts["added"] += 1
            continue
        kept.add(schedule.id)
        changes = {
            field: wanted[field]
            for field in ("cron_expr", "timezone")
            if wanted[field] != getattr(schedule, field)
        }
        if changes:
            schedule.goal = goal
            schedule_update(schedule=schedule, changes=changes)
            counts["updated"] += 1
    for schedule_id, schedule in existing.items():
        if schedule_id not in kept:
            schedule_delete(schedule=schedule)
            counts["deleted"] += 1
    return counts


def agent_delete_unused(*, agent: Agent) -> None:
    """Delete a version nothing uses; `Conflict` says what still uses it.

    Stricter than `agent_delete` (the API's rule, which only protects the active version): a
    goal that names a deleted version silently falls back to the default agent, so the pages
    refuse to delete a version that goals run with.
    """
    with transaction.atomic():
        usage = agent_usage(agent=agent)
        if usage.active:
            raise Conflict(
                f"Version {agent.version} is the active version of {agent.name}: every call "
                f"to {agent.name} uses it. Activate another version first."
            )
        if usage.goal_count:
            goals = "goal runs" if usage.goal_count == 1 else "goals run"
            raise Conflict(
                f"{usage.goal_count} {goals} with version {agent.version}; deleting it would "
                "switch them to the default agent without notice. Point them at another "
                "agent first.",
                goalCount=usage.goal_count,
            )
        agent.delete()
    logger.info("agent deleted id=%s name=%s version=%s", agent.id, agent.name, agent.version)
