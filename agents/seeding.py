"""The default agents the system relies on, seeded idempotently (`manage.py seed_agents`).

A default agent is created (version 1.0.0, active, default provider/model) only when its name
has no active version and no version 1.0.0. Nothing that exists is ever changed, so seeding twice
changes nothing and an agent an operator edited or replaced stays as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from agents.models import Agent
from agents.services import agent_create
from config.errors import Conflict

logger = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).with_name("prompts")
SEED_VERSION = "1.0.0"


@dataclass(frozen=True)
class DefaultAgent:
    name: str
    description: str

    @property
    def prompt_file(self) -> Path:
        return PROMPTS_DIR / f"{self.name}.txt"

    @property
    def prompt_template(self) -> str:
        return _prompt(self.name)


DEFAULT_AGENTS: tuple[DefaultAgent, ...] = (
    DefaultAgent(
        "defaultAgent",
        "Default autonomous agent for goal runs: works toward the objective step by step "
        "with tools.",
    ),
    DefaultAgent(
        "DecomposerV8",
        "Planner: turns a request into a DAG of tool calls and inference tasks (a DecomposerJob).",
    ),
    DefaultAgent("TitleMaster", "Writes a short title for a DAG from its request."),
    DefaultAgent("Synthesizer", "Writes the final Markdown report of a DAG execution."),
    DefaultAgent(
        "InferenceAgent",
        "General inference agent for DAG tasks: analyses, summarises, extracts and writes.",
    ),
    DefaultAgent("ParaphrasePro", "Paraphrases text and attached files (used through /task)."),
)


@cache
def _prompt(name: str) -> str:
    return (PROMPTS_DIR / f"{name}.txt").read_text(encoding="utf-8").strip() + "\n"


def default_agent(name: str) -> DefaultAgent | None:
    return next((agent for agent in DEFAULT_AGENTS if agent.name == name), None)


@dataclass(frozen=True)
class SeedOutcome:
    name: str
    action: str  # "created", "kept" (ours, unchanged), "kept-edited", "kept-other-version"
    agent_id: str | None
    version: str | None


def _existing_outcome(definition: DefaultAgent) -> SeedOutcome | None:
    rows = Agent.objects.filter(name=definition.name)
    current = rows.filter(active=True).first() or rows.filter(version=SEED_VERSION).first()
    if current is None:
        return None
    if current.version != SEED_VERSION:
        action = "kept-other-version"
    elif current.prompt_template == definition.prompt_template:
        action = "kept"
    else:
        action = "kept-edited"
    return SeedOutcome(definition.name, action, current.id, current.version)


def agents_seed() -> list[SeedOutcome]:
    """Create the default agents that are missing; report what was done for each."""
    outcomes = []
    for definition in DEFAULT_AGENTS:
        outcome = _existing_outcome(definition)
        if outcome is None:
            try:
                agent = agent_create(
                    name=definition.name,
                    version=SEED_VERSION,
                    prompt_template=definition.prompt_template,
                    metadata={"description": definition.description, "createdBy": "system"},
                    active=True,
                )
            except Conflict:  # another process seeded it at the same moment
                outcome = _existing_outcome(definition)
            else:
                outcome = SeedOutcome(definition.name, "created", agent.id, agent.version)
                logger.info("seeded default agent %s", definition.name)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes
