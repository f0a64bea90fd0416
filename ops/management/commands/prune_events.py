"""`manage.py prune_events --older-than 30d [--finished-executions] [--dry-run]`.

Deletes stored live events (executions' and runs') created before the cutoff and, with
`--finished-executions`, the completed, partial, failed and cancelled executions that finished
before it, with their sub-steps and events. Suspended executions are kept: they can be resumed.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Model, QuerySet
from django.db.models.functions import Coalesce
from django.utils.timezone import now

from config.api.formatting import iso
from dags.models import DagExecution, ExecutionEvent, SubStep
from runs.models import RunEvent

BATCH_SIZE = 2000
PRUNABLE_EXECUTION_STATUSES = (
    DagExecution.Status.COMPLETED,
    DagExecution.Status.PARTIAL,
    DagExecution.Status.FAILED,
    DagExecution.Status.CANCELLED,
)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AGE_RE = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w`, or a bare number of days."""
    match = _AGE_RE.match(text or "")
    if not match:
        raise ValueError(f"invalid age {text!r}: use a number with s, m, h, d or w, e.g. 30d")
    amount, unit = int(match.group(1)), (match.group(2) or "d").lower()
    return timedelta(**{_UNITS[unit]: amount})


def _delete_in_batches(queryset: QuerySet) -> int:
    """Delete by primary key in short transactions, so a big prune never holds long locks."""
    model: type[Model] = queryset.model
    deleted = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:BATCH_SIZE])
        if not ids:
            return deleted
        with transaction.atomic():
            # Every event model has the default `objects` manager; `type[Model]` does not say so.
            model.objects.filter(pk__in=ids).delete()  # type: ignore[attr-defined]
        deleted += len(ids)


class Command(BaseCommand):
    help = "Delete stored events (and, optionally, finished executions) older than an age."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            default="30d",
            help="Age cutoff: a number with s, m, h, d or w (default 30d).",
        )
        parser.add_argument(
            "--finished-executions",
            action="store_true",
            help="Also delete completed, partial, failed and cancelled executions that finished "
            "before the cutoff, with their sub-steps and events.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count what would be deleted."
        )

    def handle(self, *args, **options) -> None:
        try:
            age = parse_age(options["older_than"])
        except ValueError as error:
            raise CommandError(str(error)) from error
        cutoff = now() - age
        dry_run = options["dry_run"]
        verb = "Would delete" if dry_run else "Deleted"

        if options["finished_executions"]:
            executions = DagExecution.objects.annotate(
                finished_at=Coalesce("completed_at", "updated_at")
            ).filter(status__in=PRUNABLE_EXECUTION_STATUSES, finished_at__lt=cutoff)
            ids = list(executions.values_list("pk", flat=True))
            sub_steps = SubStep.objects.filter(execution_id__in=ids).count()
            events = ExecutionEvent.objects.filter(execution_id__in=ids).count()
            if not dry_run:
                for start in range(0, len(ids), BATCH_SIZE):
                    # Sub-steps and events go with their execution (CASCADE).
                    batch = ids[start : start + BATCH_SIZE]
                    _delete_in_batches(ExecutionEvent.objects.filter(execution_id__in=batch))
                    with transaction.atomic():
                        DagExecution.objects.filter(pk__in=batch).delete()
            self.stdout.write(
                f"{verb} {len(ids)} finished executions with {sub_steps} sub-steps and "
                f"{events} events."
            )

        old_execution_events = ExecutionEvent.objects.filter(created_at__lt=cutoff)
        old_run_events = RunEvent.objects.filter(created_at__lt=cutoff)
        if dry_run:
            execution_count, run_count = old_execution_events.count(), old_run_events.count()
        else:
            execution_count = _delete_in_batches(old_execution_events)
            run_count = _delete_in_batches(old_run_events)
        self.stdout.write(
            f"{verb} {execution_count} execution events and {run_count} run events created "
            f"before {iso(cutoff)}."
        )
