"""`manage.py cancel_execution <execution id>`: stop scheduling an execution's nodes."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from config.commands import add_user_argument, command_user, failure
from config.errors import DomainError
from dags import selectors
from dags.execution.services import execution_cancel


class Command(BaseCommand):
    help = (
        "Cancel a pending, running or waiting execution (as POST /dag-executions/<id>/cancel "
        "does): nothing new starts, queued nodes are revoked, nodes already running finish and "
        "are recorded. It can be resumed later. Exit codes: 0 cancelled, 1 it cannot be "
        "cancelled (already settled) or does not exist, 2 bad usage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("execution_id", help="The execution's id (dag-exec_…).")
        parser.add_argument("--reason", default="Cancelled by an operator", help="Recorded.")
        add_user_argument(parser)

    def handle(self, *args, **options) -> None:
        user = command_user(options["user"])
        try:
            execution = selectors.execution_get(execution_id=options["execution_id"], viewer=user)
            execution = execution_cancel(execution_id=execution.id, reason=options["reason"])
        except DomainError as error:
            raise failure(error) from None
        self.stdout.write(self.style.SUCCESS(f"Cancelled {execution.id}."))
