"""The placeholder list the prompt helper shows is the callers' truth: the planner and a goal
run, driven against the scripted LLM, replace every placeholder listed for them."""

from __future__ import annotations

import pytest

from agents.templating import PROMPT_PLACEHOLDERS
from dags.planning.services import PlanRequest, dag_plan
from dags.tests.planning_helpers import good_plan, reply
from runs.loop import run_execute
from runs.services import run_trigger
from tests.factories import AgentFactory, GoalFactory, UserFactory
from tests.fakes.openai_server import ChatReply

pytestmark = pytest.mark.django_db


def template_for(*contexts: str) -> tuple[str, list[str]]:
    names = [item.name for item in PROMPT_PLACEHOLDERS if item.filled_for in contexts]
    return "\n".join(f"{name}=[{{{{{name}}}}}]" for name in names), names


def assert_all_replaced(system: str, names: list[str]) -> None:
    for name in names:
        assert f"{name}=[" in system
        assert "{{" + name + "}}" not in system, name
        assert f"{name}=[]" not in system, f"{name} was given no value"


def test_the_planner_fills_every_placeholder_listed_for_planning(fake_llm):
    template, names = template_for("every call", "planning")
    assert {"currentDate", "tools"} <= set(names)
    AgentFactory(name="DecomposerV8", prompt_template=template, active=True)
    AgentFactory(name="InferenceAgent", prompt_template="You are careful.", active=True)
    fake_llm.enqueue(reply(good_plan()))
    dag_plan(
        request=PlanRequest(goal_text="Find news", agent_name="DecomposerV8"),
        owner=UserFactory(),
    )
    assert_all_replaced(fake_llm.requests[0]["messages"][0]["content"], names)


def test_a_goal_run_fills_every_placeholder_listed_for_goal_runs(fake_llm, settings):
    settings.LLM_MAX_RETRIES = 0
    template, names = template_for("every call", "goal runs")
    assert {"objective", "toolsList", "workingMemory"} <= set(names)
    agent = AgentFactory(name="defaultAgent", prompt_template=template, active=True)
    goal = GoalFactory(agent=agent, objective="Say hello", params={"constraints": ["Be brief"]})
    fake_llm.default = ChatReply(content="Hello. Done.")
    run = run_trigger(goal_id=goal.id, enqueue=False)
    run_execute(run_id=run.id)
    assert_all_replaced(fake_llm.requests[0]["messages"][0]["content"], names)
