"""`manage.py seed_agents`: create the default agents that are missing (idempotent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from agents.seeding import agents_seed
from config.commands import console_for

_DESCRIPTIONS = {
    "created": "created (version {version}, active)",
    "kept": "already present (version {version})",
    "kept-edited": "already present, edited by an operator (version {version}): left unchanged",
    "kept-other-version": "version {version} is active: left unchanged",
}


class Command(BaseCommand):
    help = (
        "Seed the default agents (defaultAgent, DecomposerV8, TitleMaster, Synthesizer, "
        "InferenceAgent, ParaphrasePro). Existing agents are never changed."
    )

    def handle(self, *args, **options) -> None:
        with console_for(self.stdout).status("Seeding the default agents…"):
            outcomes = agents_seed()
        width = max(len(outcome.name) for outcome in outcomes)
        for outcome in outcomes:
            text = _DESCRIPTIONS[outcome.action].format(version=outcome.version)
            line = f"{outcome.name.ljust(width)}  {text}"
            style = self.style.SUCCESS if outcome.action == "created" else (lambda s: s)
            self.stdout.write(style(line))
        created = sum(outcome.action == "created" for outcome in outcomes)
        kept = len(outcomes) - created
        self.stdout.write(f"{created} agent(s) created, {kept} left as they were.")
