"""Plans and scripted planner replies shared by the planning tests."""

from __future__ import annotations

import json
from typing import Any

from tests.factories import AgentFactory
from tests.fakes.openai_server import ChatReply

PLANNER_TEMPLATE = "PLANNER. Tools: {{tools}} Now: {{currentDate}}"
TITLE_TEMPLATE = "TITLER. Give a short title."
GOAL = "Find news about solid-state batteries ({{currentDate}}) and save them"


def task(
    task_id: str,
    *,
    tool: str = "webSearch",
    params: dict[str, Any] | None = None,
    deps: list[str] | None = None,
    action: str = "tool",
) -> dict[str, Any]:
    return {
        "id": task_id,
        "description": f"step {task_id}",
        "thought": f"why {task_id}",
        "action_type": action,
        "tool_or_prompt": {
            "name": tool,
            "params": {"query": f"search {task_id}"} if params is None else params,
        },
        "expected_output": "something",
        "dependencies": deps if deps is not None else ["none"],
    }


def plan(
    *tasks: dict[str, Any], coverage: str = "high", gaps: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    job = {
        "original_request": "the model's copy of the request",
        "intent": {"primary": "brief on batteries", "sub_intents": []},
        "entities": [],
        "sub_tasks": list(tasks) or [task("t1")],
        "synthesis_plan": "Summarise the findings.",
        "validation": {"coverage": coverage, "gaps": gaps or [], "iteration_triggers": []},
        "clarification_needed": False,
    }
    job.update(extra)
    return job


def fenced(job: Any) -> str:
    return "Here is the plan:\n```json\n" + json.dumps(job, indent=2) + "\n```\n"


def reply(job: Any, **kwargs: Any) -> ChatReply:
    return ChatReply(content=fenced(job), **kwargs)


def good_plan() -> dict[str, Any]:
    """Ids t1, t2; t2 reads the pages found by t1 through a reference."""
    return plan(
        task("t1", params={"query": "solid-state battery news"}),
        task(
            "t2",
            tool="fetchURLs",
            params={"urls": ["<Result from Task t1>"]},
            deps=["t1"],
        ),
    )


def planner_agents(*, title: bool = False) -> None:
    AgentFactory(name="DecomposerV8", prompt_template=PLANNER_TEMPLATE, active=True)
    AgentFactory(name="InferenceAgent", prompt_template="You are careful.", active=True)
    if title:
        AgentFactory(name="TitleMaster", prompt_template=TITLE_TEMPLATE, active=True)


def system_text(request: dict[str, Any]) -> str:
    return request["messages"][0]["content"]


def last_user_text(request: dict[str, Any]) -> str:
    return [m for m in request["messages"] if m["role"] == "user"][-1]["content"]


def body(goal: str = GOAL, **extra: Any) -> dict[str, Any]:
    return {"goal-text": goal, "agentName": "DecomposerV8", **extra}
