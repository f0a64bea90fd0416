"""The goal-run step loop: think, call tools, observe, within the step budget.

Each step sends the agent's rendered template (objective, tools, steps remaining, bounded
working memory, constraints, date) as the system message, then the opening message (objective
and notes from earlier runs) and the conversation so far: assistant messages with their tool
calls and one `tool` message per result, trimmed to RUN_CONTEXT_MAX_CHARS. Only the goal's
`allowedTools` are offered and run; a call to any other tool is refused and recorded. The run
ends when the model answers without tool calls (that answer is the summary) or when the budget
is spent (one more call, without tools, writes the summary).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import close_old_connections

from agents.llm.client import ChatResult, ToolCallRequest
from agents.llm.errors import LLMError
from agents.llm.usage import Usage
from agents.models import Agent
from agents.runtime import agent_chat
from agents.seeding import default_agent
from agents.selectors import agent_get_active
from artifacts.selectors import artifact_access_check
from artifacts.services import artifact_record_tool_write
from runs import conversation, leases, notify, services
from runs.models import Run, Step
from tools.base import ToolContext, ToolError
from tools.registry import TOOL_NAMES, get_tool, tool_definitions
from tools.services import tool_run

if TYPE_CHECKING:  # runs sit below goals: the goal reaches a run through Run.goal
    from goals.models import Goal

logger = logging.getLogger(__name__)

DEFAULT_AGENT_NAME = "defaultAgent"
STOP_FINISHED = "finished"
STOP_BUDGET = "budget_exhausted"
MAX_PARALLEL_TOOL_CALLS = 4

StepListener = Callable[[Step], None]


@dataclass
class CallOutcome:
    call: ToolCallRequest
    status: str  # ok, error, refused
    result: Any = None
    error: str | None = None
    duration_ms: int = 0

    def record(self) -> dict[str, Any]:
        return {
            "id": self.call.id,
            "name": self.call.name,
            "arguments": self.call.arguments,
            "status": self.status,
            "error": self.error,
            "durationMs": self.duration_ms,
        }

    def model_text(self) -> str:
        if self.status == "ok":
            return conversation.clip(
                conversation.as_text(self.result), settings.RUN_TOOL_RESULT_MAX_CHARS
            )
        return f"Error: {self.error}"


# --- entry point --------------------------------------------------------------------------------
def run_execute(*, run_id: str, on_step: StepListener | None = None) -> Run | None:
    """Claim a pending run and run it to its end; None if it was not pending (a duplicate
    delivery). Never raises for a failure of the run itself: that is recorded on the run."""
    run = services.run_claim(run_id=run_id)
    if run is None:
        logger.info("run %s is not pending; nothing to do", run_id)
        return None
    try:
        _run_loop(run, on_step)
    except LLMError as error:
        services.run_fail(run_id=run_id, error=f"LLM call failed: {error}")
    except Exception as error:  # recorded on the run; the worker stays up
        logger.exception("run %s failed unexpectedly", run_id)
        services.run_fail(run_id=run_id, error=f"Unexpected error: {type(error).__name__}: {error}")
    finally:
        leases.release(run_id)
    notify.run_webhook_deliver(run_id=run_id)
    return Run.objects.select_related("goal").get(pk=run_id)


# --- the loop -----------------------------------------------------------------------------------
def goal_agent(goal: Goal) -> Agent:
    """The goal's agent; else the active defaultAgent; else the bundled default template."""
    if goal.agent_id:
        agent = Agent.objects.filter(pk=goal.agent_id).first()
        if agent is not None:
            return agent
        logger.warning("goal %s names a deleted agent; using %s", goal.id, DEFAULT_AGENT_NAME)
    agent = agent_get_active(name=DEFAULT_AGENT_NAME)
    if agent is not None:
        return agent
    bundled = default_agent(DEFAULT_AGENT_NAME)
    assert bundled is not None, "the default agent's template ships with the code"
    return Agent(name=DEFAULT_AGENT_NAME, prompt_template=bundled.prompt_template)


def allowed_tool_names(params: dict[str, Any]) -> list[str]:
    """The goal's allowed tools that exist; all tools when the list is absent or empty."""
    wanted = params.get("allowedTools") if isinstance(params, dict) else None
    if not wanted:
        return list(TOOL_NAMES)
    known = [name for name in dict.fromkeys(wanted) if name in TOOL_NAMES]
    unknown = [name for name in wanted if name not in TOOL_NAMES]
    if unknown:
        logger.warning("allowedTools names unknown tools (ignored): %s", ", ".join(unknown))
    return known


def _still_running(run: Run) -> bool:
    return Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).exists()


def _run_loop(run: Run, on_step: StepListener | None) -> None:
    goal = run.goal
    params = goal.params if isinstance(goal.params, dict) else {}
    agent = goal_agent(goal)
    allowed = allowed_tool_names(params)
    definitions = tool_definitions(allowed) if allowed else []
    notes = list(
        goal.memories.order_by("-created_at").values_list("content", flat=True)[
            : settings.RUN_MEMORY_NOTES
        ]
    )
    opening = {"role": "user", "content": conversation.opening_message(goal.objective, notes)}
    turns: list[list[dict[str, Any]]] = []
    static_context = {
        "objective": goal.objective,
        "toolsList": conversation.tools_list_text(definitions),
        "constraints": conversation.constraints_text(params.get("constraints")),
    }

    def context(steps_remaining: int) -> dict[str, Any]:
        return {
            **static_context,
            "stepsRemaining": steps_remaining,
            "workingMemory": conversation.working_memory_text(
                run.working_memory, settings.RUN_WORKING_MEMORY_MAX_CHARS
            ),
        }

    for step_no in range(1, run.step_budget + 1):
        if not _still_running(run):
            logger.warning("run %s stopped being running; leaving the loop", run.pk)
            return
        messages = conversation.trim_conversation(opening, turns, settings.RUN_CONTEXT_MAX_CHARS)
        reply = agent_chat(
            agent=agent,
            messages=messages,
            context=context(run.step_budget - step_no + 1),
            tools=definitions or None,
        )
        services.add_usage(run, reply.usage, reply.cost_usd)
        if not reply.tool_calls:
            step = _record_step(run, step_no, reply, [], 0)
            _notify(on_step, step)
            summary = (reply.content or "").strip()
            if not summary:
                summary = _final_summary(run, agent, opening, turns, context(0))
            services.run_complete(run=run, summary=summary, stop_reason=STOP_FINISHED)
            return
        started = time.monotonic()
        outcomes = _run_calls(run, reply.tool_calls, set(allowed))
        duration_ms = int((time.monotonic() - started) * 1000)
        for index, outcome in enumerate(outcomes):
            if outcome.status == "ok":
                key = f"step_{step_no}_{outcome.call.name}_{index}"
                run.working_memory[key] = _memory_value(outcome.result)
        turns.append(
            [
                reply.assistant_message,
                *(conversation.tool_message(o.call.id, o.model_text()) for o in outcomes),
            ]
        )
        step = _record_step(run, step_no, reply, outcomes, duration_ms)
        _notify(on_step, step)
    if not _still_running(run):
        return
    summary = _final_summary(run, agent, opening, turns, context(0))
    services.run_complete(run=run, summary=summary, stop_reason=STOP_BUDGET)


def _notify(on_step: StepListener | None, step: Step) -> None:
    if on_step is None:
        return
    try:
        on_step(step)
    except Exception:  # a listener (the terminal) must not fail the run
        logger.warning("step listener failed", exc_info=True)


def _final_summary(
    run: Run,
    agent: Agent,
    opening: dict[str, Any],
    turns: list[list[dict[str, Any]]],
    context: dict[str, Any],
) -> str:
    """One call without tools asking for the summary; a plain account if that call fails."""
    messages = conversation.trim_conversation(opening, turns, settings.RUN_CONTEXT_MAX_CHARS)
    messages.append({"role": "user", "content": conversation.FINAL_SUMMARY_REQUEST})
    try:
        reply = agent_chat(agent=agent, messages=messages, context=context)
    except LLMError as error:
        logger.warning("run %s: the summary call failed: %s", run.pk, error)
        return (
            f"The run used {run.steps_executed} of {run.step_budget} steps; the final summary "
            f"could not be written ({error})."
        )
    services.add_usage(run, reply.usage, reply.cost_usd)
    text = (reply.content or "").strip()
    return text or f"The run used {run.steps_executed} of {run.step_budget} steps."


def _memory_value(result: Any) -> Any:
    """A tool result as kept in the run's working memory: as-is unless it is very large."""
    text = conversation.as_text(result)
    limit = settings.RUN_TOOL_RESULT_MAX_CHARS
    return result if len(text) <= limit else conversation.clip(text, limit)


# --- tool calls ---------------------------------------------------------------------------------
def _run_calls(run: Run, calls: list[ToolCallRequest], allowed: set[str]) -> list[CallOutcome]:
    if len(calls) == 1:
        return [_run_call(run.pk, calls[0], allowed)]
    workers = min(len(calls), MAX_PARALLEL_TOOL_CALLS)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run-tools") as pool:
        return list(pool.map(lambda call: _run_call(run.pk, call, allowed), calls))


def _run_call(run_id: str, call: ToolCallRequest, allowed: set[str]) -> CallOutcome:
    started = time.monotonic()
    outcome = CallOutcome(call=call, status="error")
    if call.name not in allowed:
        listed = ", ".join(sorted(allowed)) or "none"
        where = "is not allowed for this goal" if call.name in TOOL_NAMES else "does not exist"
        outcome.status = "refused"
        outcome.error = f"The tool '{call.name}' {where}; it was not run. Allowed tools: {listed}."
        logger.info("run %s: refused a call to %s", run_id, call.name)
    elif call.parse_error:
        outcome.error = f"The call was not run: its {call.parse_error}."
    else:
        try:
            owner_id = Run.objects.filter(pk=run_id).values_list("owner_id", flat=True).first()
            context = ToolContext(
                run_id=run_id, may_access_artifact=artifact_access_check(owner_id=owner_id)
            )
            outcome.result = tool_run(name=call.name, params=call.arguments, context=context)
            outcome.status = "ok"
            if get_tool(call.name).writes_artifact:
                _record_file(run_id, outcome.result)
        except ToolError as error:
            outcome.error = error.message
        except Exception as error:  # a tool bug becomes an observation, not a crashed run
            logger.exception("run %s: tool %s failed unexpectedly", run_id, call.name)
            outcome.error = f"The tool failed unexpectedly ({type(error).__name__})."
        finally:
            close_old_connections()
    outcome.duration_ms = int((time.monotonic() - started) * 1000)
    return outcome


def _record_file(run_id: str, result: Any) -> None:
    """Record the written file as the run owner's artifact (who may read it through the API)."""
    owner_id = Run.objects.filter(pk=run_id).values_list("owner_id", flat=True).first()
    artifact_record_tool_write(result=result, owner_id=owner_id, run_id=run_id)


def _outputs(outcomes: list[CallOutcome]) -> list[tuple[str, str]]:
    """Outputs rows for what the step's tool calls produced (`Tool.run_output`): files,
    webhooks, e-mails."""
    rows: list[tuple[str, str]] = []
    for outcome in outcomes:
        if outcome.status != "ok" or not isinstance(outcome.result, dict):
            continue
        output = get_tool(outcome.call.name).run_output
        row = output(outcome.result, outcome.call.arguments) if output else None
        if row is not None:
            rows.append(row)
    return rows


def _record_step(
    run: Run, step_no: int, reply: ChatResult, outcomes: list[CallOutcome], duration_ms: int
) -> Step:
    parts = [f"[{o.call.name}] {o.model_text()}" for o in outcomes]
    failures = [o for o in outcomes if o.status != "ok"]
    error = None
    if outcomes and len(failures) == len(outcomes):
        error = "; ".join(f"{o.call.name}: {o.error}" for o in failures)
    usage: Usage | None = reply.usage
    cost: Decimal | None = reply.cost_usd
    return services.step_record(
        run=run,
        step_no=step_no,
        thought=reply.content or "",
        calls=[o.record() for o in outcomes],
        observation="\n\n".join(parts) if parts else None,
        duration_ms=duration_ms,
        error=error,
        usage=usage,
        cost=cost,
        outputs=_outputs(outcomes),
    )
