"""Re-queue DAG nodes whose worker died and finish executions whose last step was lost."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from config.commands import console_for
from dags.execution.recovery import executions_recover


class Command(BaseCommand):
    help = (
        "Find running DAG nodes whose worker stopped (lapsed lease) or whose queue message was "
        "lost, and hand them to the workers again; push on executions that stalled. Safe to run "
        "at any time: live nodes are left alone. Beat runs the same sweep periodically."
    )

    def handle(self, *args, **options) -> None:
        with console_for(self.stdout).status("Looking for stalled nodes and executions…"):
            counts = executions_recover()
        self.stdout.write(
            f"Re-queued {counts['lapsed']} node(s) whose worker stopped and {counts['stale']} "
            f"whose message was lost; gave up on {counts['given_up']}; advanced "
            f"{counts['advanced']} stalled execution(s)."
        )
