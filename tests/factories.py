"""factory_boy factories for every model, shared by all test modules."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from agents.models import Agent
from dags.models import Dag, DagExecution, SubStep
from goals.models import Goal, Memory, Schedule
from runs.models import Output, Run, Step


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password("pass-for-tests")


# The `user` fixture's name: rows made by factories belong to the default API client's user
# unless a test says otherwise (owner=...).
DEFAULT_OWNER = "alice"


def _default_owner():
    return UserFactory(username=DEFAULT_OWNER)


class TokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Token

    user = factory.SubFactory(UserFactory)


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    name = factory.Sequence(lambda n: f"agent{n}")
    version = "1.0.0"
    prompt_template = "You are {{name}}. Help with the task."
    provider = None
    model = None
    active = False
    metadata = factory.LazyFunction(dict)


class GoalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Goal

    objective = factory.Sequence(lambda n: f"Research topic number {n} and write a summary")
    params = factory.LazyFunction(dict)
    agent = None
    owner = factory.LazyFunction(_default_owner)


class ScheduleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Schedule

    goal = factory.SubFactory(GoalFactory)
    cron_expr = "0 9 * * *"
    timezone = "UTC"


class MemoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Memory

    goal = factory.SubFactory(GoalFactory)
    type = Memory.Type.NOTE
    content = "remember this"


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Run

    goal = factory.SubFactory(GoalFactory)
    step_budget = 20
    owner = factory.LazyAttribute(lambda run: run.goal.owner)


class StepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Step

    run = factory.SubFactory(RunFactory)
    step_no = factory.Sequence(lambda n: n + 1)
    thought = "thinking"


class OutputFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Output

    run = factory.SubFactory(RunFactory)
    kind = Output.Kind.SUMMARY
    path_or_payload = "done"


def decomposer_job(task_count: int = 2, **overrides) -> dict:
    """A valid DecomposerJob whose tasks form a chain 001 -> 002 -> ..."""
    tasks = []
    for index in range(1, task_count + 1):
        task_id = f"{index:03d}"
        tasks.append(
            {
                "id": task_id,
                "description": f"Task {index}",
                "thought": f"Why task {index}",
                "action_type": "inference",
                "tool_or_prompt": {"name": "InferenceAgent", "params": {"prompt": f"Do {index}"}},
                "expected_output": "text",
                "dependencies": [f"{index - 1:03d}"] if index > 1 else ["none"],
            }
        )
    job = {
        "original_request": "Write a short report",
        "intent": {"primary": "report", "sub_intents": []},
        "entities": [],
        "sub_tasks": tasks,
        "synthesis_plan": "Combine the results.",
        "validation": {"coverage": "high", "gaps": [], "iteration_triggers": []},
        "clarification_needed": False,
    }
    job.update(overrides)
    return job


class DagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dag

    status = "success"
    result = factory.LazyFunction(decomposer_job)
    attempts = 1
    params = factory.LazyFunction(
        lambda: {"goalText": "Write a short report", "agentName": "DecomposerV8"}
    )
    agent_name = "DecomposerV8"
    dag_title = factory.Sequence(lambda n: f"Report {n}")
    owner = factory.LazyFunction(_default_owner)


class DagExecutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DagExecution

    dag = factory.SubFactory(DagFactory)
    owner = factory.LazyAttribute(
        lambda execution: execution.dag.owner if execution.dag else _default_owner()
    )
    original_request = "Write a short report"
    primary_intent = "report"
    total_tasks = 2


class SubStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SubStep

    execution = factory.SubFactory(DagExecutionFactory)
    task_id = factory.Sequence(lambda n: f"{n + 1:03d}")
    description = "a task"
    thought = "because"
    action_type = SubStep.ActionType.INFERENCE
    tool_or_prompt_name = "InferenceAgent"
    tool_or_prompt_params = factory.LazyFunction(dict)
    dependencies = factory.LazyFunction(list)
