"""`manage.py plan "<request>"`: plan a request as a DAG, and optionally run it."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.access import owner_for_new_row
from config.commands import add_user_argument, command_user, console_for, failure
from config.errors import DomainError
from dags.execution.services import ClarificationNeeded, execution_launch
from dags.management.executions import watch_until_settled
from dags.plan import PlanError
from dags.planning.services import PlanRequest, dag_plan


class Command(BaseCommand):
    help = (
        "Plan a request with a planner agent and store the DAG (as POST /create-dag does). "
        "With --execute, start it on the workers and show each node's progress until it "
        "settles (Ctrl-C stops watching; the execution goes on). Exit codes: 0 planned (and, "
        "with --execute, completed), 1 planning or the execution failed or the planner asks "
        "a question, 2 bad usage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("request", help="What to do, in plain words.")
        parser.add_argument(
            "--agent", default="DecomposerV8", help="The planner agent (default: DecomposerV8)."
        )
        parser.add_argument(
            "--execute", action="store_true", help="Run the DAG once planned and watch it."
        )
        parser.add_argument(
            "--no-watch",
            action="store_true",
            help="With --execute: print the execution id and return at once.",
        )
        add_user_argument(parser)

    def handle(self, *args, **options) -> None:
        user = command_user(options["user"])
        console = console_for(self.stdout)
        request = PlanRequest(goal_text=options["request"], agent_name=options["agent"])
        try:
            with console.status(f"Planning with {options['agent']}…"):
                result = dag_plan(request=request, owner=owner_for_new_row(user))
        except DomainError as error:
            raise failure(error) from None
        if result.dag is None:
            question = result.job.clarification_query or "the planner needs more detail"
            raise CommandError(f"The planner asks for clarification: {question}")
        dag = result.dag
        tasks = len(result.job.sub_tasks)
        console.print(f"DAG {dag.id}: {dag.dag_title or '(untitled)'}, {tasks} task(s)")
        if not options["execute"]:
            return
        try:
            execution = execution_launch(
                dag=dag, owner=owner_for_new_row(user), original_request=options["request"]
            )
        except (PlanError, ClarificationNeeded) as error:
            raise CommandError(f"DAG {dag.id} was stored but cannot run: {error}") from None
        console.print(f"Execution {execution.id} started.")
        if not options["no_watch"]:
            watch_until_settled(execution_id=execution.id, viewer=user, console=console)
