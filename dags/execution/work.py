"""The work of one node: a tool call, an inference by a named agent, or the final synthesis.

Runs outside any database transaction (it waits on LLMs and the network); the lifecycle in
`services` records what it returns.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings

from agents.cache import agent_active
from agents.llm.client import ChatResult, chat
from agents.llm.errors import LLMError
from agents.llm.turns import request_turn
from agents.runtime import agent_chat
from artifacts.selectors import artifact_access_check
from artifacts.services import artifact_record_tool_write
from dags.events import tool_progress_callback
from dags.execution import prompts, statements
from dags.models import SYNTHESIS_TASK_ID, DagExecution, SubStep
from dags.plan import (
    parse_result,
    real_dependencies,
    reference_key,
    references_in,
    resolve_tool_params,
)
from tools.base import ToolContext, ToolError
from tools.registry import get_tool
from tools.services import tool_run

logger = logging.getLogger(__name__)


class NodeFailure(Exception):
    """The node cannot succeed; the message is recorded on the sub-step and shown to users."""


@dataclass
class NodeOutcome:
    result: str  # stored as text, as clients read it (JSON text for structured results)
    usage: dict[str, int] | None = None
    cost_usd: Decimal | None = None
    generation_stats: dict[str, Any] | None = None


def stored_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def completed_results(execution_id: str, task_ids: list[str] | None = None) -> dict[str, Any]:
    """Structured results of completed tasks keyed by `reference_key` (so `1` finds `001`)."""
    return {
        reference_key(task_id): parse_result(result)
        for task_id, result in statements.completed_results(execution_id, task_ids)
    }


def run_node_work(sub_step: SubStep, known_results: Mapping[str, str] | None = None) -> NodeOutcome:
    """The node's outcome. `known_results` are stored results (by task id) of completed tasks
    that this worker has at hand (the node it just ran): they are not read again."""
    # Nodes that start together (a fan-out) prepare and send their LLM requests in turn
    # (agents/llm/turns.py). Not tools: one may take long before it sends anything.
    if sub_step.task_id == SYNTHESIS_TASK_ID:
        with request_turn():
            return _synthesis(sub_step)
    name = sub_step.tool_or_prompt_name
    known = known_results or {}
    if sub_step.action_type == SubStep.ActionType.TOOL and name != "inference":
        return _tool(sub_step, known)
    with request_turn():
        return _inference(sub_step, known)


def _inputs_of(sub_step: SubStep, known: Mapping[str, str]) -> tuple[list[str], dict[str, Any]]:
    dependencies = real_dependencies(sub_step.dependencies or [])
    referenced = references_in(sub_step.tool_or_prompt_params or {})
    if not dependencies and not referenced:
        return dependencies, {}  # a root task with no references reads no results
    if not referenced and all(dep in known for dep in dependencies):
        return dependencies, {reference_key(dep): parse_result(known[dep]) for dep in dependencies}
    # References normally point at dependencies; any completed task is allowed.
    results = completed_results(sub_step.execution_id, None if referenced else dependencies)
    return dependencies, results


def _tool(sub_step: SubStep, known: Mapping[str, str]) -> NodeOutcome:
    dependencies, results = _inputs_of(sub_step, known)
    name = sub_step.tool_or_prompt_name
    params = resolve_tool_params(
        tool_name=name,
        params=sub_step.tool_or_prompt_params,
        dependency_ids=dependencies,
        results=results,
    )
    owner_id = (
        DagExecution.objects.filter(pk=sub_step.execution_id)
        .values_list("owner_id", flat=True)
        .first()
    )
    context = ToolContext(
        progress=tool_progress_callback(sub_step.execution_id, sub_step.task_id, name),
        execution_id=sub_step.execution_id,
        sub_step_id=sub_step.task_id,
        may_access_artifact=artifact_access_check(owner_id=owner_id),
    )
    try:
        output = tool_run(name=name, params=params, context=context)
    except ToolError as error:
        raise NodeFailure(error.message) from error
    if get_tool(name).writes_artifact:
        artifact_record_tool_write(
            result=output, owner_id=owner_id, execution_id=sub_step.execution_id
        )
    return NodeOutcome(result=stored_text(output))


def _outcome(reply: ChatResult) -> NodeOutcome:
    return NodeOutcome(
        result=reply.content or "",
        usage=reply.usage.as_dict() if reply.usage else None,
        cost_usd=reply.cost_usd,
        generation_stats=reply.generation_stats,
    )


def _inference(sub_step: SubStep, known: Mapping[str, str]) -> NodeOutcome:
    name = sub_step.tool_or_prompt_name
    agent = agent_active(name=name)
    if agent is None:
        raise NodeFailure(f"No active agent named '{name}' for inference task {sub_step.task_id}.")
    dependencies, results = _inputs_of(sub_step, known)
    params = sub_step.tool_or_prompt_params or {}
    instruction = params.get("prompt") if isinstance(params.get("prompt"), str) else None
    plan = statements.execution_plan(sub_step.execution_id)
    message = prompts.inference_prompt(
        context=plan.context,
        task_id=sub_step.task_id,
        total_tasks=plan.total_tasks,
        description=sub_step.description,
        thought=sub_step.thought,
        expected_output=plan.context.get("expected_outputs", {}).get(sub_step.task_id, ""),
        instruction=instruction or sub_step.description,
        dependency_results=[
            (dep, results[reference_key(dep)])
            for dep in dependencies
            if reference_key(dep) in results
        ],
    )
    try:
        reply = agent_chat(agent=agent, messages=[{"role": "user", "content": message}])
    except LLMError as error:
        raise NodeFailure(str(error)) from error
    return _outcome(reply)


def _synthesis(sub_step: SubStep) -> NodeOutcome:
    plan = statements.execution_plan(sub_step.execution_id)
    rows = statements.completed_results(sub_step.execution_id, None)
    message = prompts.synthesis_prompt(
        synthesis_plan=plan.context.get("synthesis_plan", ""),
        results=[(task_id, parse_result(result)) for task_id, result in rows],
    )
    user = {"role": "user", "content": message}
    synthesizer = agent_active(name=settings.SYNTHESIS_AGENT_NAME)
    try:
        if synthesizer is not None:
            reply = agent_chat(agent=synthesizer, messages=[user])
        else:
            system = {"role": "system", "content": prompts.SYNTHESIS_SYSTEM_PROMPT}
            reply = chat(messages=[system, user], temperature=0.5)
    except LLMError as error:
        raise NodeFailure(str(error)) from error  # the suspension reason says "Synthesis failed"
    return _outcome(reply)
