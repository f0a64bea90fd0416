"""The messages sent for inference nodes and for the final synthesis (written for this project)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings

from dags.plan import result_text

SYNTHESIS_SYSTEM_PROMPT = (
    "You turn the results of a multi-step research or automation workflow into one clear, "
    "well-structured Markdown report. Follow the synthesis plan you are given, use only the "
    "information in the task results, say plainly when something could not be found, and do "
    "not describe the workflow itself unless the plan asks for it."
)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def plan_context(job: Mapping[str, Any]) -> dict[str, Any]:
    """The global context every node sees, kept on the execution as a snapshot."""
    intent = job.get("intent") or {}
    return {
        "original_request": job.get("original_request", ""),
        "primary_intent": intent.get("primary", ""),
        "sub_intents": list(intent.get("sub_intents") or []),
        "entities": list(job.get("entities") or []),
        "synthesis_plan": job.get("synthesis_plan", ""),
        "expected_outputs": {
            str(task.get("id")): task.get("expected_output", "")
            for task in job.get("sub_tasks") or []
            if isinstance(task, Mapping)
        },
    }


def inference_prompt(
    *,
    context: Mapping[str, Any],
    task_id: str,
    total_tasks: int,
    description: str,
    thought: str,
    expected_output: str,
    instruction: str,
    dependency_results: Sequence[tuple[str, Any]],
) -> str:
    """The user message of an inference node: context, the task, its inputs, the instruction."""
    limit = settings.NODE_DEPENDENCY_RESULT_CHARS
    entities = [
        f"- {item.get('entity', '')} ({item.get('type', '')}): {item.get('grounded_value', '')}"
        for item in context.get("entities") or []
        if isinstance(item, Mapping)
    ]
    inputs = [
        f"[Task {dep_id}]:\n{clip(result_text(result), limit)}"
        for dep_id, result in dependency_results
    ]
    sections = [
        "You are completing one step of a larger workflow. Do this step well; other steps "
        "handle the rest.",
        "## Overall request\n" + str(context.get("original_request") or "(not given)"),
        "## Primary intent\n" + str(context.get("primary_intent") or "(not given)"),
        "## Related intents\n" + ("; ".join(context.get("sub_intents") or []) or "None"),
        "## Known entities\n" + ("\n".join(entities) or "None"),
        "## What the final report will do\n" + str(context.get("synthesis_plan") or "(not given)"),
        f"## Current Task [{task_id}/{total_tasks}]\n"
        f"Description: {description}\nWhy this step: {thought}\nExpected output: {expected_output}",
        "## Results of the steps this one depends on\n" + ("\n\n".join(inputs) or "None"),
        "## Instruction\n" + instruction,
        "Answer with the expected output only, build on the results above where they help, and "
        "stay consistent with the overall request.",
    ]
    return "\n\n".join(sections)


def synthesis_prompt(*, synthesis_plan: str, results: Sequence[tuple[str, Any]]) -> str:
    """The synthesis user message: the plan, then every task result in task order, bounded."""
    per_task = settings.SYNTHESIS_RESULT_CHARS
    budget = settings.SYNTHESIS_TOTAL_CHARS
    entries: list[str] = []
    used = 0
    for task_id, result in results:
        text = (
            result if isinstance(result, str) else json.dumps(result, indent=2, ensure_ascii=False)
        )
        text = clip(text, max(200, min(per_task, budget - used)))
        used += len(text)
        entries.append(f"### Task {task_id} result\n{text}")
        if used >= budget:
            entries.append("(Further results were left out to stay within the size limit.)")
            break
    return (
        f"## Synthesis plan\n{synthesis_plan or 'Summarise the results clearly.'}\n\n"
        "## Task results\n\n" + ("\n\n".join(entries) or "(no tasks)") + "\n\n"
        "Write the final report in Markdown, as the synthesis plan asks."
    )
