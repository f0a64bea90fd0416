"""`manage.py execute_dag <dag id>`: run a stored DAG and watch its nodes."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.access import owner_for_new_row
from config.commands import add_user_argument, command_user, console_for, failure
from config.errors import DomainError
from dags import selectors
from dags.execution.services import ClarificationNeeded, execution_launch
from dags.management.executions import watch_until_settled
from dags.plan import PlanError


class Command(BaseCommand):
    help = (
        "Start an execution of a stored DAG on the workers (as POST /execute-dag does) and "
        "show each node's progress from the execution's events until it settles. Ctrl-C stops "
        "watching; the execution goes on. Exit codes: 0 completed (or started, with "
        "--no-watch), 1 it failed, was suspended or cancelled, or could not start, 2 bad usage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dag_id", help="The DAG's id (see GET /api/v1/dags).")
        parser.add_argument(
            "--no-watch", action="store_true", help="Print the execution id and return at once."
        )
        add_user_argument(parser)

    def handle(self, *args, **options) -> None:
        user = command_user(options["user"])
        console = console_for(self.stdout)
        try:
            dag = selectors.dag_get(dag_id=options["dag_id"], viewer=user)
            execution = execution_launch(dag=dag, owner=owner_for_new_row(user))
        except DomainError as error:
            raise failure(error) from None
        except (PlanError, ClarificationNeeded) as error:
            raise CommandError(f"DAG {options['dag_id']} cannot run: {error}") from None
        console.print(f"Execution {execution.id} started ({execution.total_tasks} task(s)).")
        if not options["no_watch"]:
            watch_until_settled(execution_id=execution.id, viewer=user, console=console)
