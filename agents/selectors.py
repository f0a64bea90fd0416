from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, Max, QuerySet, Window
from django.db.models.functions import RowNumber

from agents.models import Agent
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
    """The active agent of that name (at most one: a partial unique index says so)."""
    # A slice, not `first()`: with at most one row there is nothing to order (every DAG node
    # runs this, and the ORDER BY was a good part of building the statement).
    found = list(Agent.objects.filter(name=name, active=True)[:1])
    return found[0] if found else None


def agents_get_active(*, names: list[str]) -> dict[str, Agent]:
    """The active agent of each name that has one, by name, in one statement."""
    return {agent.name: agent for agent in Agent.objects.filter(name__in=names, active=True)}


def agent_require_active(*, name: str) -> Agent:
    agent = agent_get_active(name=name)
    if agent is None:
        raise NotFound(f"No active agent found with name: {name}")
    return agent


# --- the agents page: versions grouped by name ---------------------------------------------------
AGENT_SORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "name": ("Name (A to Z)", ("name",)),
    "-name": ("Name (Z to A)", ("-name",)),
    "-updated": ("Recently changed", ("-latest", "name")),
}
ACTIVE_FILTERS = {"active": "Active versions", "inactive": "Inactive versions"}


@dataclass
class AgentGroup:
    """One agent name and its versions (the active one first, then the newest)."""

    name: str
    version_count: int
    versions: list[Agent] = field(default_factory=list)

    @property
    def hidden_count(self) -> int:
        return max(0, self.version_count - len(self.versions))

    @property
    def active(self) -> Agent | None:
        return next((agent for agent in self.versions if agent.active), None)


def _filtered(agents: QuerySet[Agent], *, text: str, active: str) -> QuerySet[Agent]:
    if text:
        agents = agents.filter(name__icontains=text)
    if active == "active":
        agents = agents.filter(active=True)
    elif active == "inactive":
        agents = agents.filter(active=False)
    return agents


def agent_name_rows(*, text: str = "", active: str = "", sort: str = "name") -> QuerySet[Any, Any]:
    """One row per agent name (`name`, `version_count`, `latest`) that matches; a page of it
    is turned into groups by `agent_groups`."""
    order = AGENT_SORTS.get(sort, AGENT_SORTS["name"])[1]
    return (
        _filtered(Agent.objects.all(), text=text, active=active)
        .values("name")
        .annotate(version_count=Count("id"), latest=Max("updated_at"))
        .order_by(*order)
    )


# Versions listed under each name (the active one first, then the newest); the agent's page
# lists them all.
VERSIONS_SHOWN = 5
LIST_COLUMNS = ("id", "name", "version", "provider", "model", "active", "created_at", "updated_at")


def agent_groups(*, rows: Iterable[dict[str, Any]], active: str = "") -> list[AgentGroup]:
    """The groups of a page of `agent_name_rows`, each with up to VERSIONS_SHOWN versions:
    two queries whatever the number of rows. Templates are not loaded (they can be long)."""
    groups = {row["name"]: AgentGroup(row["name"], row["version_count"]) for row in rows}
    if not groups:
        return []
    ranked = _filtered(
        Agent.objects.filter(name__in=list(groups)), text="", active=active
    ).annotate(
        rank=Window(
            RowNumber(),
            partition_by=[F("name")],
            order_by=[F("active").desc(), F("created_at").desc()],
        )
    )
    versions = list(
        ranked.filter(rank__lte=VERSIONS_SHOWN).only(*LIST_COLUMNS).order_by("name", "rank")
    )
    for agent in versions:
        groups[agent.name].versions.append(agent)
    return list(groups.values())


def agent_versions(*, name: str) -> QuerySet[Agent]:
    return Agent.objects.filter(name=name).order_by("-created_at")
