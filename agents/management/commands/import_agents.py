"""`manage.py import_agents FILE`: create the agent versions an export lists (idempotent)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rich.progress import track

from agents.serializers import AgentIn
from agents.services import agent_import
from config.commands import UsageError, console_for

_SAY = {
    "created": "created",
    "unchanged": "already present, same content",
    "conflict": "EXISTS WITH DIFFERENT CONTENT: left as it is (import it as a new version)",
}


class Command(BaseCommand):
    help = (
        "Create the agent versions listed in a file written by export_agents ('-' reads "
        "standard input). A version that already exists with the same content is skipped, so "
        "importing twice changes nothing; one that exists with different content is reported "
        "and never overwritten. An imported version becomes active only when its agent has no "
        "active version. Exit codes: 0 imported, 1 some versions conflict (the others were "
        "imported), 2 the file is unreadable or invalid (nothing imported)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="A JSON file from export_agents, or '-'.")

    def handle(self, *args, **options) -> None:
        records = self._records(options["file"])
        console = console_for(self.stdout)
        outcomes = []
        with transaction.atomic():
            for record in track(records, description="Importing agents", console=console):
                outcomes.append(agent_import(record=record))
        for outcome in outcomes:
            self.stdout.write(f"{outcome.name} {outcome.version}: {_SAY[outcome.action]}")
        counts = {action: sum(o.action == action for o in outcomes) for action in _SAY}
        summary = (
            f"{counts['created']} created, {counts['unchanged']} unchanged, "
            f"{counts['conflict']} conflicting."
        )
        if counts["conflict"]:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))

    def _records(self, name: str) -> list[dict]:
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
            document = json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UsageError(f"Cannot read {name}: {error}") from None
        agents = document.get("agents") if isinstance(document, dict) else None
        if not isinstance(agents, list):
            raise UsageError(f"{name} is not an export_agents file (no 'agents' list).")
        records = []
        for index, item in enumerate(agents):
            serializer = AgentIn(data=item)
            if not isinstance(item, dict) or not serializer.is_valid():
                errors = serializer.errors if isinstance(item, dict) else "not an object"
                raise UsageError(f"agents[{index}] is invalid: {errors}")
            records.append({**serializer.validated_data, "active": bool(item.get("active"))})
        return records
