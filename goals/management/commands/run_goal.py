"""`manage.py run_goal <goal id>`: run a goal in this process and print each step as it ends."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from config.api.formatting import money
from config.errors import DomainError
from runs.loop import run_execute
from runs.models import Run, Step
from runs.services import run_trigger


class Command(BaseCommand):
    help = (
        "Run a goal now, in this process (no worker needed), printing every step as it "
        "happens. The run counts against MAX_CONCURRENT_RUNS like any other."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("goal_id", help="The goal's id (goal_...).")
        parser.add_argument(
            "--observation-chars",
            type=int,
            default=400,
            help="How much of each tool observation to print (default 400).",
        )

    def handle(self, *args, goal_id: str, observation_chars: int, **options) -> None:
        try:
            run = run_trigger(goal_id=goal_id, enqueue=False)
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"Run {run.id} of goal {goal_id}: budget {run.step_budget} steps")

        def show(step: Step) -> None:
            self.stdout.write(self.style.MIGRATE_HEADING(f"Step {step.step_no}"))
            if step.thought:
                self.stdout.write(f"  thought: {step.thought.strip()}")
            for call in step.tool_calls or []:
                mark = {"ok": "->", "refused": "!! refused", "error": "!! error"}[call["status"]]
                self.stdout.write(f"  {mark} {call['name']}({_short(call['arguments'], 200)})")
                if call.get("error"):
                    self.stdout.write(f"     {call['error']}")
            if step.observation:
                self.stdout.write(f"  observation: {_short(step.observation, observation_chars)}")

        finished = run_execute(run_id=run.id, on_step=show)
        if finished is None:
            raise CommandError(f"Run {run.id} was taken by another process.")
        usage = finished.usage or {}
        self.stdout.write(
            f"Status: {finished.status}, {finished.steps_executed} step(s), "
            f"{usage.get('totalTokens', 0)} tokens, cost {money(finished.cost_usd) or '0'} USD"
        )
        if finished.status == Run.Status.COMPLETED:
            summary = (finished.working_memory or {}).get("summary", "")
            self.stdout.write(self.style.SUCCESS("Summary:"))
            self.stdout.write(summary)
        else:
            raise CommandError(f"Run {finished.id} failed: {finished.error}")


def _short(value, limit: int) -> str:
    text = value if isinstance(value, str) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
