"""`manage.py prepare`: migrate, collect static files and seed the default agents."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ops.services import system_prepare


class Command(BaseCommand):
    help = (
        "Apply migrations, collect static files and seed the default agents. Safe to run on "
        "every deployment (e.g. the one-shot `migrate` service of docker-compose.yml)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--no-static",
            action="store_true",
            help="Skip collectstatic (e.g. when the image already holds the collected files).",
        )

    def handle(self, *args, **options) -> None:
        system_prepare(
            stdout=self.stdout,
            collect_static=not options["no_static"],
            verbosity=options["verbosity"],
        )
        self.stdout.write(self.style.SUCCESS("Database ready."))
