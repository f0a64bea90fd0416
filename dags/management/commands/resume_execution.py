"""`manage.py resume_execution <execution id>`: run again what did not complete."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from config.commands import add_user_argument, command_user, console_for, failure
from config.errors import DomainError
from dags import selectors
from dags.execution.services import execution_resume
from dags.management.executions import watch_until_settled


class Command(BaseCommand):
    help = (
        "Resume a suspended, failed or cancelled execution (as POST "
        "/dag-executions/<id>/resume does): failed, cancelled and pending nodes run again, "
        "completed results are kept. With --watch, follow it until it settles. Exit codes: 0 "
        "resumed (with --watch: completed), 1 it cannot be resumed or failed again, 2 bad usage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("execution_id", help="The execution's id (dag-exec_…).")
        parser.add_argument("--watch", action="store_true", help="Follow it until it settles.")
        add_user_argument(parser)

    def handle(self, *args, **options) -> None:
        user = command_user(options["user"])
        console = console_for(self.stdout)
        try:
            execution = selectors.execution_get(execution_id=options["execution_id"], viewer=user)
            execution = execution_resume(execution_id=execution.id)
        except DomainError as error:
            raise failure(error) from None
        console.print(
            f"Resumed {execution.id} (retry {execution.retry_count}; "
            f"{execution.completed_tasks}/{execution.total_tasks} task(s) already done)."
        )
        if options["watch"]:
            watch_until_settled(execution_id=execution.id, viewer=user, console=console)
