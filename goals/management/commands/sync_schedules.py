"""`manage.py sync_schedules`: rebuild the beat rows of every goal and DAG schedule."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from config.commands import console_for
from goals.schedules import schedules_sync_all


class Command(BaseCommand):
    help = (
        "Rebuild the django-celery-beat rows of all goal schedules and DAG crons from the "
        "database, and remove rows whose schedule or DAG is gone (after a restore or import)."
    )

    def handle(self, *args, **options) -> None:
        with console_for(self.stdout).status("Rebuilding the beat rows…"):
            counts = schedules_sync_all()
        self.stdout.write(
            self.style.SUCCESS(
                f"Synced {counts['goalSchedules']} goal schedule(s) and "
                f"{counts['dagSchedules']} DAG schedule(s); "
                f"removed {counts['removed']} stale row(s)."
            )
        )
