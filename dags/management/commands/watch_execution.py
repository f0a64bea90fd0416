"""`manage.py watch_execution <execution id>`: follow an execution until it settles."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from config.commands import add_user_argument, command_user, console_for, failure
from config.errors import DomainError
from dags import selectors
from dags.management.executions import watch_until_settled


class Command(BaseCommand):
    help = (
        "Show an execution's nodes live from its stored events until it settles (it may have "
        "settled already). Ctrl-C stops watching only. Exit codes: 0 completed, 1 failed, "
        "partial, suspended or cancelled, 2 bad usage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("execution_id", help="The execution's id (dag-exec_…).")
        add_user_argument(parser)

    def handle(self, *args, **options) -> None:
        user = command_user(options["user"])
        try:
            execution = selectors.execution_get(execution_id=options["execution_id"], viewer=user)
        except DomainError as error:
            raise failure(error) from None
        watch_until_settled(
            execution_id=execution.id, viewer=user, console=console_for(self.stdout)
        )
