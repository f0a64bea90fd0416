"""`manage.py check_llm`: a tiny real call (with a dummy tool) per provider/model in use."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from agents.llm.checks import CheckOutcome, llm_checks_run

_COLUMNS = ("PROVIDER", "MODEL", "USED BY", "KEY", "TOOLS", "LATENCY", "RESULT")


def _users(used_by: list[str]) -> str:
    if len(used_by) <= 3:
        return ", ".join(used_by)
    return f"{', '.join(used_by[:2])} +{len(used_by) - 2} more"


def _row(outcome: CheckOutcome) -> tuple[str, ...]:
    return (
        outcome.provider,
        outcome.model,
        _users(outcome.used_by),
        "set" if outcome.configured else "MISSING",
        "OK" if outcome.tool_calling else "-",
        f"{outcome.latency_ms} ms" if outcome.latency_ms is not None else "-",
        "OK" if outcome.ok else f"FAILED: {outcome.error}",
    )


class Command(BaseCommand):
    help = (
        "Check the LLM set-up: for the default provider/model and every active agent's "
        "provider/model, make a tiny real call with a dummy tool and report whether chat and "
        "tool calling work. Exits non-zero when any check fails."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--default-only", action="store_true", help="Check only the default provider/model."
        )
        parser.add_argument(
            "--timeout", type=float, default=None, help="Seconds to wait for each reply."
        )
        parser.add_argument("--json", action="store_true", help="Print the results as JSON.")

    def handle(self, *args, **options) -> None:
        outcomes = llm_checks_run(
            include_agents=not options["default_only"], timeout=options["timeout"]
        )
        if options["json"]:
            self.stdout.write(json.dumps([outcome.__dict__ for outcome in outcomes], indent=2))
        else:
            self._table(outcomes)
        failed = [outcome for outcome in outcomes if not outcome.ok]
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(outcomes)} LLM check(s) failed: "
                + "; ".join(f"{outcome.provider}/{outcome.model}" for outcome in failed)
            )
        self.stdout.write(self.style.SUCCESS(f"All {len(outcomes)} LLM check(s) passed."))

    def _table(self, outcomes: list[CheckOutcome]) -> None:
        rows = [_COLUMNS, *(_row(outcome) for outcome in outcomes)]
        # The last column (the result with its error) is not padded.
        widths = [max(len(row[index]) for row in rows) for index in range(len(_COLUMNS) - 1)]
        for number, row in enumerate(rows):
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            line = "  ".join([*cells, row[-1]])
            if number == 0:
                self.stdout.write(line)
            elif outcomes[number - 1].ok:
                self.stdout.write(self.style.SUCCESS(line))
            else:
                self.stdout.write(self.style.ERROR(line))
