"""`manage.py prune_executions --older-than 30d`: delete old settled executions."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandParser
from django.utils.timezone import now
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from config.commands import UsageError, add_user_argument, command_user, console_for
from config.errors import DomainError
from dags.costs import parse_moment
from dags.services import executions_count_owned, executions_delete, executions_prunable

BATCH_SIZE = 200


class Command(BaseCommand):
    help = (
        "Delete settled executions (completed, failed, partial, suspended, cancelled) not "
        "changed for longer than --older-than, with their sub-steps and events. Running, "
        "pending and waiting executions are never touched. Reports what was (or, with "
        "--dry-run, would be) deleted. Exit codes: 0 done, 1 a database failure, 2 bad usage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            required=True,
            metavar="AGE",
            help="An age such as 30d, 2w or 3m (months of 30 days), or an ISO date.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go, delete nothing."
        )
        add_user_argument(parser)

    def handle(self, *args, **options) -> None:
        try:
            cutoff = parse_moment(options["older_than"], default=now(), field="older-than")
        except DomainError as error:
            raise UsageError(error.message) from None
        if cutoff > now() - timedelta(minutes=1):
            raise UsageError("--older-than must reach into the past (e.g. 30d).")
        user = command_user(options["user"])
        ids = list(executions_prunable(older_than=cutoff, viewer=user).values_list("pk", flat=True))
        if options["dry_run"]:
            counts = executions_count_owned(execution_ids=ids)
            self.stdout.write(self._report("Would delete", counts, cutoff))
            return
        totals = {"executions": 0, "subSteps": 0, "events": 0}
        console = console_for(self.stdout)
        with Progress(
            TextColumn("Deleting executions"), BarColumn(), MofNCompleteColumn(), console=console
        ) as progress:
            bar = progress.add_task("prune", total=len(ids))
            for start in range(0, len(ids), BATCH_SIZE):
                batch = ids[start : start + BATCH_SIZE]
                for key, value in executions_delete(execution_ids=batch).items():
                    totals[key] += value
                progress.update(bar, advance=len(batch))
        self.stdout.write(self.style.SUCCESS(self._report("Deleted", totals, cutoff)))

    @staticmethod
    def _report(verb: str, counts: dict[str, int], cutoff) -> str:
        return (
            f"{verb} {counts['executions']} execution(s) settled before "
            f"{cutoff:%Y-%m-%d %H:%M} UTC, {counts['subSteps']} sub-step(s) and "
            f"{counts['events']} event(s)."
        )
