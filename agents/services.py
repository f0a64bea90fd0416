"""Agent lifecycle: create, update, activate (one active version per name), delete."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.timezone import now

from agents.cache import agents_changed
from agents.models import Agent
from config.errors import Conflict, InvalidInput
from config.list_cache import lists_changed

logger = logging.getLogger(__name__)

DUPLICATE_MESSAGE = "Agent with this name and version already exists"


def agent_create(
    *,
    name: str,
    version: str,
    prompt_template: str,
    provider: str | None = None,
    model: str | None = None,
    metadata: dict[str, Any] | None = None,
    active: bool = False,
) -> Agent:
    try:
        with transaction.atomic():
            if Agent.objects.filter(name=name, version=version).exists():
                raise Conflict(DUPLICATE_MESSAGE)
            if active:
                Agent.objects.filter(name=name, active=True).update(active=False, updated_at=now())
                lists_changed()  # goals show their agent
                agents_changed()
            agent = Agent.objects.create(
                name=name,
                version=version,
                prompt_template=prompt_template,
                provider=provider,
                model=model,
                metadata=metadata if metadata is not None else {},
                active=active,
            )
    except IntegrityError as error:  # a concurrent create of the same pair
        raise Conflict(DUPLICATE_MESSAGE) from error
    logger.info("agent created id=%s name=%s version=%s", agent.id, name, version)
    return agent


def agent_update(*, agent: Agent, changes: dict[str, Any]) -> Agent:
    """Apply the given model-field changes; a clash with another agent is a 409, never a 500."""
    if not changes:
        return agent
    name = changes.get("name", agent.name)
    version = changes.get("version", agent.version)
    try:
        with transaction.atomic():
            others = Agent.objects.exclude(pk=agent.pk)
            if (name, version) != (agent.name, agent.version) and others.filter(
                name=name, version=version
            ).exists():
                raise Conflict(DUPLICATE_MESSAGE)
            if (
                agent.active
                and name != agent.name
                and others.filter(name=name, active=True).exists()
            ):
                raise Conflict(
                    f"Cannot rename an active agent to '{name}': that name already has an "
                    "active version."
                )
            for field, value in changes.items():
                setattr(agent, field, value)
            agent.updated_at = now()
            agent.save(update_fields=[*changes, "updated_at"])
    except IntegrityError as error:
        raise Conflict(DUPLICATE_MESSAGE) from error
    return agent


def agent_activate(*, agent: Agent) -> Agent:
    """Make this version the active one of its name, in one transaction."""
    with transaction.atomic():
        stamp = now()
        Agent.objects.filter(name=agent.name, active=True).exclude(pk=agent.pk).update(
            active=False, updated_at=stamp
        )
        Agent.objects.filter(pk=agent.pk).update(active=True, updated_at=stamp)
        lists_changed()  # goals show their agent
        agents_changed()
    agent.refresh_from_db()
    logger.info("agent activated id=%s name=%s version=%s", agent.id, agent.name, agent.version)
    return agent


def agent_delete(*, agent: Agent) -> None:
    if agent.active:
        raise InvalidInput("Cannot delete active agent. Activate another version first.")
    agent.delete()


# --- export and import ----------------------------------------------------------------------------
EXPORT_FIELDS = ("name", "version", "prompt_template", "provider", "model", "active", "metadata")


def agent_export_record(agent: Agent) -> dict[str, Any]:
    """An agent as a JSON-safe record (no ids or timestamps: those belong to each database)."""
    return {
        "name": agent.name,
        "version": agent.version,
        "promptTemplate": agent.prompt_template,
        "provider": agent.provider,
        "model": agent.model,
        "active": agent.active,
        "metadata": agent.metadata if agent.metadata is not None else {},
    }


def _same_content(agent: Agent, record: dict[str, Any]) -> bool:
    mine = agent_export_record(agent)
    return all(
        mine[key] == record.get(key, default)
        for key, default in (
            ("promptTemplate", None),
            ("provider", None),
            ("model", None),
            ("metadata", {}),
        )
    )


@dataclass(frozen=True)
class AgentImportOutcome:
    name: str
    version: str
    action: str  # created | unchanged | conflict


def agent_import(*, record: dict[str, Any]) -> AgentImportOutcome:
    """Create the agent version a record describes, unless it exists.

    An existing (name, version) with the same content is left as it is; one with different
    content is a conflict and is never overwritten (versions are immutable by convention: make a
    new version instead). A record marked active becomes the active version only when its name
    has no active version yet, so an import never switches what is running.
    """
    name, version = record["name"], record["version"]
    existing = Agent.objects.filter(name=name, version=version).first()
    if existing is not None:
        action = "unchanged" if _same_content(existing, record) else "conflict"
        return AgentImportOutcome(name, version, action)
    wants_active = (
        bool(record.get("active")) and not Agent.objects.filter(name=name, active=True).exists()
    )
    agent_create(
        name=name,
        version=version,
        prompt_template=record["promptTemplate"],
        provider=record.get("provider"),
        model=record.get("model"),
        metadata=record.get("metadata") or {},
        active=wants_active,
    )
    return AgentImportOutcome(name, version, "created")
