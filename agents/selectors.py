from __future__ import annotations

from django.db.models import QuerySet

from agents.models import Agent
from config.db import read_instances
from config.errors import NotFound


def agent_list(*, name: str | None = None, active: bool | None = None) -> QuerySet[Agent]:
    agents = Agent.objects.all()
    if name is not None:
        agents = agents.filter(name=name)
    if active is not None:
        agents = agents.filter(active=active)
    return agents.order_by("-created_at")


def agent_get(*, agent_id: str) -> Agent:
    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is None:
        raise NotFound("Agent not found")
    return agent


def agent_get_active(*, name: str) -> Agent | None:
    """The active agent of that name (at most one: a partial unique index says so).

    Every inference node looks its agent up, so this is SQL: the ORM's query compiler cost
    several times the lookup itself (see `dags.execution.statements`).
    """
    rows = read_instances(
        Agent,
        f"SELECT {{columns}} FROM {Agent._meta.db_table} WHERE name = %s AND active = %s LIMIT 1",
        [name, True],
    )
    return rows[0] if rows else None


def agent_require_active(*, name: str) -> Agent:
    agent = agent_get_active(name=name)
    if agent is None:
        raise NotFound(f"No active agent found with name: {name}")
    return agent
