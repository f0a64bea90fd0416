"""`manage.py export_agents`: every agent version as JSON, for import_agents elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.selectors import agent_list
from agents.services import agent_export_record

FORMAT = "async-agent/agents@1"


class Command(BaseCommand):
    help = (
        "Write every agent version (name, version, prompt, provider, model, active flag, "
        "metadata) as JSON to --output or standard output. `import_agents` reads it back. "
        "Exit codes: 0 written, 1 the file could not be written, 2 bad usage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", metavar="FILE", help="Default: standard output.")
        parser.add_argument("--name", help="Only the versions of this agent.")

    def handle(self, *args, **options) -> None:
        agents = agent_list(name=options["name"]).order_by("name", "created_at", "version")
        document = {"format": FORMAT, "agents": [agent_export_record(a) for a in agents]}
        text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
        if not options["output"]:
            self.stdout.write(text, ending="")
            return
        try:
            Path(options["output"]).write_text(text, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"Cannot write {options['output']}: {error}") from None
        self.stderr.write(
            f"Exported {len(document['agents'])} agent version(s) to {options['output']}."
        )
