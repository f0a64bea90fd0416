"""create-dag against the scripted chat-completions server: attempts, checks, storage."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask

from agents.seeding import agents_seed
from config.api.ids import id_pattern
from dags.models import Dag
from dags.tests.planning_helpers import (
    GOAL,
    body,
    good_plan,
    last_user_text,
    plan,
    planner_agents,
    reply,
    system_text,
    task,
)
from tests.factories import AgentFactory
from tests.fakes.openai_server import ChatReply
from tools.registry import tool_definitions

pytestmark = pytest.mark.django_db

ISO_WITH_ZONE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")


def post(api, payload, path="/api/v1/create-dag"):
    return api.post(path, payload, format="json")


# --- the happy path ------------------------------------------------------------------------------
def test_accepted_plan_is_renumbered_titled_and_stored_with_costs(api, fake_llm):
    planner_agents(title=True)
    fake_llm.enqueue(
        reply(good_plan(), cost=0.001, prompt_tokens=100, completion_tokens=40),
        ChatReply(content='  "Solid-State Battery News"  \n', cost=0.0005),
    )

    response = post(api, body(temperature=0.3, max_tokens=2000, seed=7))

    assert response.status_code == 200
    data = response.json()
    assert data == {"status": "success", "dagId": data["dagId"]}
    assert id_pattern().match(data["dagId"])  # a bare 16-character id
    dag = Dag.objects.get(pk=data["dagId"])
    tasks = dag.result["sub_tasks"]
    # ids renumbered, the dependency and the reference follow the new ids
    assert [t["id"] for t in tasks] == ["001", "002"]
    assert tasks[1]["dependencies"] == ["001"]
    assert tasks[1]["tool_or_prompt"]["params"] == {"urls": ["<Result from Task 001>"]}
    assert dag.result["original_request"] == GOAL  # the raw request, placeholder kept
    assert dag.dag_title == "Solid-State Battery News"
    assert dag.status == "success"
    assert dag.attempts == 1
    assert dag.agent_name == "DecomposerV8"
    assert dag.params == {
        "goalText": GOAL,
        "agentName": "DecomposerV8",
        "temperature": 0.3,
        "max_tokens": 2000,
        "seed": 7,
    }
    assert dag.usage == {"promptTokens": 100, "completionTokens": 40, "totalTokens": 140}
    assert dag.generation_stats["model"] == "gpt-4o-mini"
    # totals: the planning call plus the title call
    assert dag.planning_total_usage == {
        "promptTokens": 110,
        "completionTokens": 45,
        "totalTokens": 155,
    }
    assert dag.planning_total_cost_usd == Decimal("0.0015")
    planning, title = dag.planning_attempts
    assert planning["attempt"] == 1 and planning["reason"] == "initial"
    assert planning["usage"] == dag.usage and planning["costUsd"] == pytest.approx(0.001)
    assert planning["outcome"] == "accepted" and planning["coverage"] == "high"
    assert title["attempt"] == 1 and title["reason"] == "title_master"
    assert title["costUsd"] == pytest.approx(0.0005)
    assert dag.cron_schedule is None and dag.schedule_active is False
    assert dag.timezone == "UTC"

    # what reached the model: the template with the real tool list and a zoned date
    first, title_request = fake_llm.requests
    system = system_text(first)
    tools_json = json.dumps(tool_definitions(), ensure_ascii=False, separators=(",", ":"))
    assert system.startswith("PLANNER. Tools: " + tools_json + " Now: ")
    assert ISO_WITH_ZONE.search(system)
    user = last_user_text(first)
    assert "{{currentDate}}" not in user and ISO_WITH_ZONE.search(user)
    assert first["temperature"] == 0.3 and first["max_tokens"] == 2000 and first["seed"] == 7
    assert system_text(title_request) == "TITLER. Give a short title."
    assert last_user_text(title_request) == GOAL

    wire = api.get(f"/api/v1/dags/{dag.id}").json()
    assert wire["planningTotalCostUsd"] == "0.0015"
    assert wire["planningAttempts"][1]["reason"] == "title_master"


def test_ids_given_as_numbers_are_renumbered_with_their_references(api, fake_llm):
    planner_agents()
    job = plan(
        task("1"),
        task("2", action="inference", tool="InferenceAgent", params={"prompt": "x"}, deps=["1"]),
        task(
            "3",
            tool="writeFile",
            params={"path": "out.md", "content": "<Results of Task 2>"},
            deps=["2"],
        ),
        synthesis_plan="Quote <Result from Task 3>.",
    )
    fake_llm.enqueue(reply(job))

    # a model without a known price: the cost is "0", each attempt's costUsd null
    response = post(api, body(provider="openai", model="model-without-price"))
    dag = Dag.objects.get(pk=response.json()["dagId"])

    tasks = dag.result["sub_tasks"]
    assert [t["dependencies"] for t in tasks] == [["none"], ["001"], ["002"]]
    assert tasks[2]["tool_or_prompt"]["params"]["content"] == "<Results of Task 002>"
    assert dag.result["synthesis_plan"] == "Quote <Result from Task 003>."
    assert dag.dag_title is None  # no TitleMaster agent: no title, no title call
    assert len(fake_llm.requests) == 1
    assert [a["reason"] for a in dag.planning_attempts] == ["initial"]
    assert dag.planning_total_cost_usd == Decimal("0")
    assert dag.planning_attempts[0]["costUsd"] is None


def test_schedule_fields_are_stored(api, fake_llm):
    planner_agents()
    fake_llm.enqueue(reply(good_plan()))

    response = post(api, body(cronSchedule="0 9 * * 1-5", timezone="Europe/Paris"))

    dag = Dag.objects.get(pk=response.json()["dagId"])
    assert (dag.cron_schedule, dag.schedule_active, dag.timezone) == (
        "0 9 * * 1-5",
        True,
        "Europe/Paris",
    )
    beat = PeriodicTask.objects.get(name=f"dag-schedule:{dag.id}")
    assert beat.enabled
    assert (beat.crontab.hour, beat.crontab.day_of_week, str(beat.crontab.timezone)) == (
        "9",
        "1-5",
        "Europe/Paris",
    )


def test_schedule_can_be_stored_inactive(api, fake_llm):
    planner_agents()
    fake_llm.enqueue(reply(good_plan()))

    response = post(api, body(cronSchedule="@daily", scheduleActive=False))

    dag = Dag.objects.get(pk=response.json()["dagId"])
    assert dag.cron_schedule == "@daily" and dag.schedule_active is False
    assert not PeriodicTask.objects.get(name=f"dag-schedule:{dag.id}").enabled


# --- retries -------------------------------------------------------------------------------------
def test_bad_json_then_good_json(api, fake_llm):
    planner_agents()
    broken = '```json\n{\n  "original_request": "x",\n  "intent": {,}\n}\n```'
    fake_llm.enqueue(ChatReply(content=broken), reply(good_plan()))

    response = post(api, body())

    assert response.status_code == 200
    dag = Dag.objects.get(pk=response.json()["dagId"])
    assert dag.attempts == 2
    first, second = dag.planning_attempts
    assert first["reason"] == "initial" and first["outcome"] == "invalid_json"
    assert "line 3, column 14" in first["errorMessage"]
    assert second["reason"] == "retry_parse_error" and second["outcome"] == "accepted"
    retry = fake_llm.requests[1]["messages"]
    assert [m["role"] for m in retry] == ["system", "user", "assistant", "user"]
    assert retry[2]["content"] == broken  # the model sees what it sent
    assert "line 3, column 14" in retry[3]["content"]
    assert '>    3 |   "intent": {,}' in retry[3]["content"]
    assert dag.planning_total_usage["totalTokens"] == 30


@pytest.mark.parametrize(
    ("bad_plan", "named"),
    [
        pytest.param(
            plan(task("t1", deps=["t2"]), task("t2", deps=["t1"])),
            "The dependencies form a cycle: t1 -> t2 -> t1.",
            id="cycle",
        ),
        pytest.param(
            plan(task("t1", tool="searchTheWeb")),
            "Task 't1' uses the tool 'searchTheWeb', which does not exist",
            id="unknown-tool",
        ),
        pytest.param(
            plan(task("t1", params={"query": "batteries", "limit": 500})),
            "Task 't1', tool 'webSearch', parameter 'limit': Input should be less than or "
            "equal to 20",
            id="bad-tool-params",
        ),
        pytest.param(
            plan(task("t1"), task("t2", deps=["t9"])),
            "Task 't2' depends on unknown task 't9'.",
            id="unknown-dependency",
        ),
        pytest.param(
            plan(task("t1", action="inference", tool="NoSuchAgent", params={})),
            "is an inference by the agent 'NoSuchAgent', which does not exist or is not active",
            id="unknown-agent",
        ),
        pytest.param(
            plan(
                task("t1"),
                task("t2"),
                task(
                    "t3", tool="fetchURLs", params={"urls": ["<Result from Task t2>"]}, deps=["t1"]
                ),
            ),
            "Task 't3' refers to <Result from Task t2>, but task 't2' is not one of its "
            "dependencies",
            id="reference-not-a-dependency",
        ),
        pytest.param(
            plan(task("t1"), task("t1")),
            "Duplicate task id 't1'.",
            id="duplicate-id",
        ),
        pytest.param(
            plan(task("t1", deps=["none", "t1"])),
            "lists 'none' together with real dependencies",
            id="none-mixed-with-ids",
        ),
    ],
)
def test_plan_check_failure_is_fixed_on_retry(api, fake_llm, bad_plan, named):
    planner_agents()
    fake_llm.enqueue(reply(bad_plan), reply(good_plan()))

    response = post(api, body())

    assert response.status_code == 200, response.json()
    dag = Dag.objects.get(pk=response.json()["dagId"])
    assert dag.attempts == 2
    first, second = dag.planning_attempts
    assert first["outcome"] == "invalid_plan" and named in first["errorMessage"]
    assert second["reason"] == "retry_validation"
    feedback = last_user_text(fake_llm.requests[1])
    assert feedback.startswith("Your previous plan cannot be executed:")
    assert named in feedback


def test_cyclic_plan_is_never_stored(api, fake_llm):
    planner_agents()
    cyclic = plan(task("a", deps=["c"]), task("b", deps=["a"]), task("c", deps=["b"]))
    fake_llm.enqueue(reply(cyclic), reply(cyclic), reply(cyclic))

    response = post(api, body())

    assert response.status_code == 400
    data = response.json()
    assert data["error"] == "Invalid DAG structure after multiple attempts"
    assert data["attempts"] == 3
    assert data["result"] == cyclic
    assert any("cycle: a -> c -> b -> a" in i["message"] for i in data["validation_errors"])
    assert Dag.objects.count() == 0
    assert len(fake_llm.requests) == 3
    assert "cycle" in last_user_text(fake_llm.requests[1])


def test_schema_error_is_fed_back(api, fake_llm):
    planner_agents()
    bad = good_plan()
    bad["sub_tasks"][0]["action_type"] = "magic"
    del bad["synthesis_plan"]
    fake_llm.enqueue(reply(bad), reply(good_plan()))

    response = post(api, body())

    assert response.status_code == 200
    feedback = last_user_text(fake_llm.requests[1])
    assert "does not follow the required DecomposerJob format" in feedback
    assert "sub_tasks[0].action_type: Input should be 'tool' or 'inference'" in feedback
    assert "synthesis_plan: Field required" in feedback
    dag = Dag.objects.get(pk=response.json()["dagId"])
    assert dag.planning_attempts[0]["outcome"] == "invalid_schema"
    assert dag.planning_attempts[1]["reason"] == "retry_validation"


def test_three_unparseable_replies_fail_with_attempts(api, fake_llm):
    planner_agents()
    fake_llm.enqueue(*[ChatReply(content="I cannot plan this, sorry.")] * 3)

    response = post(api, body())

    assert response.status_code == 502
    assert response.json() == {
        "error": "LLM response is not valid JSON after multiple attempts",
        "attempts": 3,
        "responsePreview": "I cannot plan this, sorry.",
    }
    assert len(fake_llm.requests) == 3
    assert Dag.objects.count() == 0
    assert "No JSON found in the reply" in last_user_text(fake_llm.requests[2])


def test_three_schema_failures_fail_with_the_documented_error(api, fake_llm):
    planner_agents()
    fake_llm.enqueue(*[ChatReply(content='```json\n{"sub_tasks": []}\n```')] * 3)

    response = post(api, body())

    assert response.status_code == 400
    data = response.json()
    assert data["error"] == "Invalid DAG structure after multiple attempts"
    assert data["attempts"] == 3
    assert data["result"] == {"sub_tasks": []}
    assert {"path": ["original_request"], "message": "Field required"} in data["validation_errors"]
    assert Dag.objects.count() == 0


def test_oversized_reply_is_a_recorded_failure(api, fake_llm):
    planner_agents()
    fake_llm.enqueue(ChatReply(content="x" * 100_001), reply(good_plan()))

    response = post(api, body())

    assert response.status_code == 200
    dag = Dag.objects.get(pk=response.json()["dagId"])
    assert "too large: 100001 characters" in dag.planning_attempts[0]["errorMessage"]
    retry = fake_llm.requests[1]["messages"]
    assert len(retry[2]["content"]) < 40_000  # the huge reply is not sent back whole


# --- coverage and gaps ---------------------------------------------------------------------------
def test_gaps_are_sent_back_and_the_next_plan_is_accepted(api, fake_llm):
    planner_agents()
    partial = plan(task("t1"), coverage="medium", gaps=["no source for prices", "no chart"])
    fake_llm.enqueue(reply(partial), reply(good_plan()))

    response = post(api, body())

    assert response.status_code == 200
    feedback = last_user_text(fake_llm.requests[1])
    assert "1. no source for prices\n2. no chart" in feedback
    assert "coverage 'medium'" in feedback
    dag = Dag.objects.get(pk=response.json()["dagId"])
    assert [a["reason"] for a in dag.planning_attempts] == ["initial", "retry_gaps"]
    assert dag.planning_attempts[0]["outcome"] == "gaps"


def test_gaps_on_every_attempt_fail(api, fake_llm):
    planner_agents()
    partial = plan(task("t1"), coverage="low", gaps=["needs a login"])
    fake_llm.enqueue(reply(partial), reply(partial), reply(partial))

    response = post(api, body())

    assert response.status_code == 502
    assert response.json() == {
        "error": "Failed to create DAG after maximum attempts",
        "max_attempts": 3,
        "attempts": 3,
        "gaps": ["needs a login"],
    }
    assert Dag.objects.count() == 0


def test_coverage_below_high_without_gaps_is_accepted_and_recorded(api, fake_llm):
    planner_agents()
    fake_llm.enqueue(reply(plan(task("t1"), coverage="medium")))

    response = post(api, body())

    assert response.status_code == 200
    dag = Dag.objects.get(pk=response.json()["dagId"])
    assert dag.planning_attempts[0]["coverage"] == "medium"
    assert dag.planning_attempts[0]["outcome"] == "accepted"
    assert dag.result["sub_tasks"][0]["id"] == "001"


def test_coverage_is_compared_without_case(api, fake_llm):
    planner_agents()
    fake_llm.enqueue(reply(plan(task("t1"), coverage="High", gaps=["minor"])))

    assert post(api, body()).status_code == 200
    assert len(fake_llm.requests) == 1


# --- clarification -------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/v1/create-dag", "/api/v1/create-and-execute-dag"])
def test_clarification_answers_the_question_and_stores_nothing(api, fake_llm, path):
    planner_agents(title=True)
    question = plan(
        sub_tasks=[], clarification_needed=True, clarification_query="Which e-mail address?"
    )
    fake_llm.enqueue(reply(question))

    response = post(api, body(), path)

    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "clarification_required"
    assert data["clarification_query"] == "Which e-mail address?"
    assert data["result"]["clarification_needed"] is True
    assert data["usage"] == {"promptTokens": 10, "completionTokens": 5, "totalTokens": 15}
    assert data["generation_stats"]["model"] == "gpt-4o-mini"
    assert Dag.objects.count() == 0
    assert len(fake_llm.requests) == 1  # no title call either


# --- pre-flight: nothing reaches the model -------------------------------------------------------
def test_invalid_cron_is_rejected_before_any_llm_call(api, fake_llm):
    planner_agents()

    response = post(api, body(cronSchedule="61 * * * *"))

    assert response.status_code == 400
    data = response.json()
    assert data["error"] == "Invalid cron expression"
    assert "61" in data["details"]
    assert fake_llm.requests == []


def test_invalid_cron_on_create_and_execute_has_the_same_body(api, fake_llm):
    planner_agents()

    response = post(api, body(cronSchedule="not a cron"), "/api/v1/create-and-execute-dag")

    assert response.status_code == 400
    assert set(response.json()) == {"error", "details"}
    assert fake_llm.requests == []


def test_invalid_time_zone_is_rejected_before_any_llm_call(api, fake_llm):
    planner_agents()

    response = post(api, body(cronSchedule="@daily", timezone="Mars/Olympus"))

    assert response.status_code == 400
    data = response.json()
    assert data["error"] == "Invalid input parameters"
    assert data["validation_errors"][0]["path"] == ["timezone"]
    assert "Mars/Olympus" in data["validation_errors"][0]["message"]
    assert fake_llm.requests == []


@pytest.mark.parametrize("path", ["/api/v1/create-dag", "/api/v1/create-and-execute-dag"])
def test_unknown_or_inactive_planner_agent_is_404(api, fake_llm, path):
    AgentFactory(name="DecomposerV8", active=False)

    response = post(api, body(), path)

    assert response.status_code == 404
    expected = {"error": "Agent 'DecomposerV8' not found OR not active"}
    if path.endswith("execute-dag"):
        expected["status"] = "failed"
    assert response.json() == expected
    assert fake_llm.requests == []


@pytest.mark.parametrize(
    ("provider", "detail"),
    [("zzz", "Unsupported LLM provider: zzz"), ("openrouter", "OPENROUTER_API_KEY")],
)
def test_invalid_provider_configuration_is_400(api, fake_llm, settings, provider, detail):
    settings.OPENROUTER_API_KEY = ""
    planner_agents()

    response = post(api, body(provider=provider, model="some-model"))

    assert response.status_code == 400
    data = response.json()
    assert data["error"] == "Invalid LLM provider configuration"
    assert detail in data["details"]
    assert fake_llm.requests == []


def test_provider_and_model_of_the_request_are_used(api, fake_llm):
    planner_agents()
    fake_llm.enqueue(reply(good_plan()))

    response = post(api, body(provider="openai", model="gpt-4.1-nano"))

    assert response.status_code == 200
    assert fake_llm.requests[0]["model"] == "gpt-4.1-nano"
    dag = Dag.objects.get(pk=response.json()["dagId"])
    assert dag.params["provider"] == "openai" and dag.params["model"] == "gpt-4.1-nano"


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"agentName": "DecomposerV8"}, ["goal-text"]),
        ({"goal-text": "   ", "agentName": "DecomposerV8"}, ["goal-text"]),
        ({"goal-text": "x", "agentName": ""}, ["agentName"]),
        ({"goal-text": "x", "agentName": "D", "temperature": "hot"}, ["temperature"]),
        ({"goal-text": "x", "agentName": "D", "temperature": 3}, ["temperature"]),
        ({"goal-text": "x", "agentName": "D", "seed": None}, ["seed"]),
        ({"goal-text": "x", "agentName": "D", "max_tokens": 0}, ["max_tokens"]),
    ],
)
def test_invalid_body_is_400_with_validation_errors(api, fake_llm, payload, path):
    response = post(api, payload)
    assert response.status_code == 400
    data = response.json()
    assert data["error"] == "Invalid input parameters"
    assert path in [issue["path"] for issue in data["validation_errors"]]

    failed = post(api, payload, "/api/v1/create-and-execute-dag").json()
    assert failed["status"] == "failed" and failed["error"] == "Invalid input parameters"
    assert fake_llm.requests == []


# --- provider failures ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/v1/create-dag", "/api/v1/create-and-execute-dag"])
def test_provider_error_is_502_with_its_message(api, fake_llm, path):
    planner_agents()
    fake_llm.enqueue(ChatReply(status=400, error_message="model is overloaded today"))

    response = post(api, body(), path)

    assert response.status_code == 502
    data = response.json()
    assert "model is overloaded today" in data["error"]
    assert data.get("status") == ("failed" if "execute" in path else None)
    assert Dag.objects.count() == 0


# --- title ---------------------------------------------------------------------------------------
def test_title_failure_leaves_the_title_empty_and_is_recorded(api, fake_llm):
    planner_agents(title=True)
    fake_llm.enqueue(reply(good_plan()), ChatReply(status=400, error_message="no titles"))

    response = post(api, body())

    assert response.status_code == 200
    dag = Dag.objects.get(pk=response.json()["dagId"])
    assert dag.dag_title is None
    title = dag.planning_attempts[-1]
    assert title["reason"] == "title_master" and "no titles" in title["errorMessage"]


def test_title_is_trimmed_to_one_bounded_line(api, fake_llm):
    planner_agents(title=True)
    fake_llm.enqueue(reply(good_plan()), ChatReply(content="\n**Title: " + "Word " * 80 + "**"))

    dag = Dag.objects.get(pk=post(api, body()).json()["dagId"])

    assert dag.dag_title.startswith("Word Word")
    assert len(dag.dag_title) <= 200


# --- the seeded planner --------------------------------------------------------------------------
def test_seeded_decomposer_prompt_passes_a_plan_through_unchanged(api, fake_llm):
    agents_seed()
    job = plan(
        task("001", params={"query": "solid-state battery news", "limit": 8}),
        task("002", tool="fetchURLs", params={"urls": ["<Result from Task 001>"]}, deps=["001"]),
        task(
            "003",
            action="inference",
            tool="InferenceAgent",
            params={"prompt": "Write a briefing."},
            deps=["002"],
        ),
        task(
            "004",
            tool="writeFile",
            params={"path": "briefing.md", "content": "<Result from Task 003>"},
            deps=["003"],
        ),
        original_request="Brief me on batteries and save it to briefing.md",
    )
    fake_llm.enqueue(reply(job), ChatReply(content="Battery Briefing"))

    response = post(api, body("Brief me on batteries and save it to briefing.md"))

    assert response.status_code == 200, response.json()
    dag = Dag.objects.get(pk=response.json()["dagId"])
    assert dag.result == job
    assert dag.dag_title == "Battery Briefing"
    system = system_text(fake_llm.requests[0])
    assert "{{tools}}" not in system and "{{currentDate}}" not in system
    assert json.dumps(tool_definitions(), ensure_ascii=False, separators=(",", ":")) in system
    assert ISO_WITH_ZONE.search(system)


def test_bare_json_and_other_fences_are_accepted(api, fake_llm):
    planner_agents()
    fake_llm.enqueue(ChatReply(content=json.dumps(good_plan())))
    assert post(api, body()).status_code == 200
    fake_llm.enqueue(ChatReply(content="```\n" + json.dumps(good_plan()) + "\n```"))
    assert post(api, body()).status_code == 200
    assert len(fake_llm.requests) == 2
    assert Dag.objects.count() == 2


def test_create_dag_without_a_schedule_stores_the_dag_with_one_insert(api, fake_llm):
    """Token, the planner and TitleMaster agents (one read), the plan's agent-name check, the
    INSERT: a new DAG without a cron has no beat row to update, so no transaction or schedule
    statements."""
    planner_agents(title=True)
    fake_llm.responder = lambda request: (
        ChatReply(content="Battery news")
        if "TITLER" in system_text(request)
        else reply(good_plan())
    )
    with CaptureQueriesContext(connection) as queries:
        response = post(api, body())
    assert response.status_code == 200, response.content
    statements = [query["sql"] for query in queries.captured_queries]
    assert len(statements) <= 4, statements
    assert not any("periodictask" in sql for sql in statements)
    assert Dag.objects.get(pk=response.json()["dagId"]).dag_title == "Battery news"
