"""The DAG pages through Django's test client: login, forms, actions, query counts."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dags.models import Dag, DagExecution, ExecutionEvent, SubStep
from dags.tests.planning_helpers import good_plan, plan, planner_agents, reply
from tests.factories import (
    DEFAULT_OWNER,
    AgentFactory,
    DagExecutionFactory,
    DagFactory,
    SubStepFactory,
    UserFactory,
)
from tests.fakes.openai_server import ChatReply

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser_client(client):
    client.force_login(UserFactory(username=DEFAULT_OWNER))
    return client


def query_count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(queries)


@pytest.mark.parametrize("url", ["/", "/dags", "/dags/new", "/dashboard/recent"])
def test_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/login?next={url}"


def test_mutations_are_post_only(browser_client):
    dag = DagFactory()
    for url in (f"/dags/{dag.id}/execute", f"/dags/{dag.id}/schedule/toggle"):
        assert browser_client.get(url).status_code == 405
    assert Dag.objects.filter(pk=dag.id).exists()


def test_unknown_dag_is_a_404_page_in_the_layout(browser_client):
    response = browser_client.get("/dags/nope")
    assert response.status_code == 404
    assert b"Page not found" in response.content
    assert b'<nav class="nav" aria-label="Main">' in response.content


# --- list
def test_list_searches_title_and_request_filters_and_sorts(browser_client):
    DagFactory(dag_title="Battery news", params={"goalText": "find battery news"})
    DagFactory(dag_title="Weekly digest", params={"goalText": "summarise lithium prices"})
    scheduled = DagFactory(
        dag_title="Morning brief", cron_schedule="0 9 * * *", schedule_active=True
    )
    failed = DagFactory(dag_title="Flaky")
    DagExecutionFactory(dag=failed, status="failed")

    def titles(query: str) -> list[str]:
        html = browser_client.get("/dags" + query).content.decode()
        return re.findall(r'<td class="title-cell">\s*<a href="/dags/[^"]+">([^<]+)</a>', html)

    assert titles("?q=battery") == ["Battery news"]
    assert titles("?q=LITHIUM") == ["Weekly digest"]
    assert titles("?schedule=scheduled") == ["Morning brief"]
    assert "Morning brief" not in titles("?schedule=unscheduled")
    assert titles("?status=failed") == ["Flaky"]
    assert "Flaky" not in titles("?status=never")
    assert titles("?sort=title") == sorted(titles("?sort=title"))
    assert titles("?sort=-title") == sorted(titles("?sort=title"), reverse=True)
    assert scheduled.dag_title in titles("?sort=bogus&schedule=bogus&status=bogus")


def test_list_paginates_on_the_server(browser_client):
    for number in range(45):
        DagFactory(dag_title=f"Dag {number:02d}")
    first = browser_client.get("/dags").content.decode()
    assert first.count('data-dag-id="') == 20
    assert "1\u201320 of 45 DAGs" in first
    last = browser_client.get("/dags?page=3").content.decode()
    assert last.count('data-dag-id="') == 5
    assert browser_client.get("/dags?page=999").status_code == 200


def test_list_and_dashboard_queries_do_not_grow_with_rows(browser_client):
    def fill(count: int) -> None:
        for _ in range(count):
            dag = DagFactory(cron_schedule="0 * * * *", schedule_active=True)
            DagExecutionFactory(dag=dag, status="completed", total_cost_usd="0.01")

    fill(5)
    small = {url: query_count(browser_client, url) for url in ("/", "/dags", "/dashboard/recent")}
    fill(45)
    large = {url: query_count(browser_client, url) for url in ("/", "/dags", "/dashboard/recent")}
    assert small == large


def test_detail_queries_do_not_grow_with_executions(browser_client):
    dag = DagFactory(result=good_plan())
    for _ in range(5):
        DagExecutionFactory(dag=dag)
    small = query_count(browser_client, f"/dags/{dag.id}")
    for _ in range(45):
        DagExecutionFactory(dag=dag)
    assert query_count(browser_client, f"/dags/{dag.id}") == small


# --- actions
def test_delete_without_executions_deletes(browser_client):
    dag = DagFactory()
    response = browser_client.post(f"/dags/{dag.id}/delete", follow=True)
    assert response.redirect_chain[-1][0] == "/dags"
    assert not Dag.objects.filter(pk=dag.id).exists()
    assert "DAG deleted." in [str(m) for m in response.context["messages"]]


def test_delete_with_executions_explains_then_deletes_them_together(browser_client):
    dag = DagFactory()
    execution = DagExecutionFactory(dag=dag)
    SubStepFactory(execution=execution)
    ExecutionEvent.objects.create(execution=execution, seq=1, type="x", payload={})

    response = browser_client.post(f"/dags/{dag.id}/delete")
    assert response.status_code == 200
    assert b"cannot be deleted on its own: it has 1 execution" in response.content
    assert Dag.objects.filter(pk=dag.id).exists()

    response = browser_client.post(f"/dags/{dag.id}/delete", {"with_executions": "1"})
    assert response.status_code == 302
    assert not Dag.objects.filter(pk=dag.id).exists()
    assert not DagExecution.objects.exists()
    assert not SubStep.objects.exists()
    assert not ExecutionEvent.objects.exists()


def test_pause_and_resume_keep_the_filters_of_the_list(browser_client):
    dag = DagFactory(cron_schedule="0 9 * * *", schedule_active=True)
    response = browser_client.post(
        f"/dags/{dag.id}/schedule/toggle", {"active": "0", "next": "/dags?q=x&page=2"}
    )
    assert response["Location"] == "/dags?q=x&page=2"
    dag.refresh_from_db()
    assert dag.schedule_active is False
    # An outside URL is never followed.
    response = browser_client.post(
        f"/dags/{dag.id}/schedule/toggle", {"active": "1", "next": "https://evil.example/"}
    )
    assert response["Location"] == f"/dags/{dag.id}"
    dag.refresh_from_db()
    assert dag.schedule_active is True


def test_resume_without_a_schedule_says_so(browser_client):
    dag = DagFactory()
    response = browser_client.post(f"/dags/{dag.id}/schedule/toggle", {"active": "1"}, follow=True)
    assert "no schedule to resume" in next(str(m) for m in response.context["messages"])
    dag.refresh_from_db()
    assert dag.schedule_active is False


def test_schedule_is_saved_described_and_removed(browser_client):
    dag = DagFactory()
    response = browser_client.post(
        f"/dags/{dag.id}/schedule",
        {"cron": " 30  8 * * 1-5 ", "timezone": "Europe/Paris", "active": "on"},
        follow=True,
    )
    dag.refresh_from_db()
    assert (dag.cron_schedule, dag.timezone, dag.schedule_active) == (
        "30 8 * * 1-5",
        "Europe/Paris",
        True,
    )
    html = response.content.decode()
    assert "At 08:30 AM, Monday through Friday" in html
    assert html.count("CET</time>") + html.count("CEST</time>") == 5

    browser_client.post(f"/dags/{dag.id}/schedule", {"cron": "", "timezone": "UTC"})
    dag.refresh_from_db()
    assert (dag.cron_schedule, dag.schedule_active) == (None, False)


def test_invalid_schedule_is_explained_and_the_input_kept(browser_client):
    dag = DagFactory(cron_schedule="0 9 * * *", schedule_active=True)
    response = browser_client.post(
        f"/dags/{dag.id}/schedule", {"cron": "61 * * * *", "timezone": "Mars/Olympus"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Invalid cron expression" in html
    assert 'value="61 * * * *"' in html
    assert "Select a valid choice" in html
    dag.refresh_from_db()
    assert dag.cron_schedule == "0 9 * * *"


def test_schedule_preview_partial(browser_client):
    html = browser_client.get(
        "/dags/schedule-preview", {"cron": "@daily", "timezone": "Asia/Tokyo"}
    ).content.decode()
    assert "At 12:00 AM" in html and html.count("JST</time>") == 5
    html = browser_client.get("/dags/schedule-preview", {"cron": "* *"}).content.decode()
    assert "5 fields" in html


def test_execute_reports_an_unrunnable_plan(browser_client):
    dag = DagFactory(result={"sub_tasks": "nonsense"})
    response = browser_client.post(f"/dags/{dag.id}/execute", follow=True)
    assert "cannot run" in next(str(m) for m in response.context["messages"])
    assert not DagExecution.objects.exists()


# --- new DAG
def new_dag(client, **fields):
    data = {"request": "Find battery news", "agent": "DecomposerV8", "action": "plan", **fields}
    return client.post("/dags/new", data)


def test_plan_stores_the_dag_and_shows_it_for_review(browser_client, fake_llm):
    planner_agents()
    fake_llm.enqueue(reply(good_plan()))
    response = new_dag(browser_client, temperature="0.2")
    dag = Dag.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/dags/new?planned={dag.id}#plan"
    assert fake_llm.requests[0]["temperature"] == 0.2
    page = browser_client.get(f"/dags/new?planned={dag.id}").content.decode()
    assert 'data-testid="planned"' in page
    assert "fetchURLs" in page and "Find battery news</textarea>" in page


def test_plan_and_execute_starts_an_execution(browser_client, fake_llm, settings):
    planner_agents()
    fake_llm.enqueue(reply(good_plan()))
    response = new_dag(browser_client, action="plan_execute")
    execution = DagExecution.objects.get()
    assert execution.original_request == "Find battery news"
    assert response.status_code == 302
    assert response["Location"] == f"/executions/{execution.id}"


def test_clarification_is_asked_and_the_answer_replans(browser_client, fake_llm):
    planner_agents()
    question = plan(sub_tasks=[], clarification_needed=True, clarification_query="Which region?")
    fake_llm.enqueue(reply(question), reply(good_plan()))
    response = new_dag(browser_client)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Which region?" in html and 'name="answer"' in html
    assert not Dag.objects.exists()

    response = new_dag(
        browser_client, action="answer", question="Which region?", answer="Europe", mode="plan"
    )
    assert response.status_code == 302
    dag = Dag.objects.get()
    assert dag.params["goalText"] == (
        "Find battery news\n\nClarification\nQ: Which region?\nA: Europe"
    )
    assert "A: Europe" in fake_llm.requests[1]["messages"][-1]["content"]


def test_an_empty_answer_is_refused_without_calling_the_llm(browser_client, fake_llm):
    planner_agents()
    response = new_dag(browser_client, action="answer", question="Which region?", answer=" ")
    assert response.status_code == 400
    assert b"Write an answer to re-plan." in response.content
    assert fake_llm.call_count == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [("   ", "Describe the task to plan."), ("x" * 50_001, "The request is too long")],
)
def test_bad_request_text_is_explained_and_kept(browser_client, fake_llm, text, message):
    planner_agents()
    response = new_dag(browser_client, request=text)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert fake_llm.call_count == 0


def test_planner_validation_errors_are_shown_in_words(browser_client, fake_llm):
    planner_agents()
    fake_llm.enqueue(*[ChatReply(content='```json\n{"sub_tasks": []}\n```')] * 3)
    response = new_dag(browser_client, request="Plan <b>this</b>")
    html = response.content.decode()
    assert "Planning failed: Invalid DAG structure after multiple attempts" in html
    assert "intent: Field required" in html or "intent" in html
    assert "Plan &lt;b&gt;this&lt;/b&gt;</textarea>" in html


def test_an_llm_that_is_down_is_explained(browser_client, fake_llm, settings):
    settings.LLM_MAX_RETRIES = 0
    planner_agents()
    fake_llm.enqueue(ChatReply(status=503, error_message="upstream overloaded"))
    response = new_dag(browser_client)
    html = response.content.decode()
    assert "Planning failed:" in html
    assert "Find battery news</textarea>" in html
    assert not Dag.objects.exists()


def test_a_missing_planner_is_a_field_error(browser_client, fake_llm):
    response = new_dag(browser_client, agent="Nobody")
    assert response.status_code == 400
    assert fake_llm.call_count == 0


def test_enhance_shows_a_suggestion_that_can_be_used_or_discarded(browser_client, fake_llm):
    planner_agents()
    AgentFactory(name="ParaphrasePro", prompt_template="Rewrite clearly.", active=True)
    fake_llm.enqueue(ChatReply(content="Collect this week's solid-state battery news."))
    response = new_dag(browser_client, action="enhance")
    html = response.content.decode()
    assert "Collect this week&#x27;s solid-state battery news." in html
    assert "Find battery news</textarea>" in html  # not replaced until accepted
    assert fake_llm.requests[0]["messages"][-1]["content"] == "Find battery news"

    response = new_dag(
        browser_client,
        action="use_suggestion",
        suggestion="Collect this week's solid-state battery news.",
    )
    assert (
        "Collect this week&#x27;s solid-state battery news.</textarea>" in response.content.decode()
    )
    assert not Dag.objects.exists()


def test_enhance_without_its_agent_says_so(browser_client, fake_llm):
    planner_agents()
    response = new_dag(browser_client, action="enhance")
    assert b"Enhance needs the active agent ParaphrasePro" in response.content
    assert fake_llm.call_count == 0


def test_from_prefills_the_form_from_a_dag(browser_client):
    planner_agents()
    dag = DagFactory(
        params={
            "goalText": "Old request",
            "agentName": "DecomposerV8",
            "model": "m-1",
            "temperature": 0.4,
        }
    )
    html = browser_client.get(f"/dags/new?from={dag.id}").content.decode()
    assert "Old request</textarea>" in html
    assert 'value="m-1"' in html and 'value="0.4"' in html
    html = browser_client.get("/dags/new?from=gone").content.decode()
    assert "no longer exists" in html


# --- dashboard ---------------------------------------------------------------------------
def test_dashboard_counts_and_spend_today_and_this_week(browser_client):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import GoalFactory, RunFactory

    moment = timezone.now()
    dag = DagFactory(planning_total_cost_usd="0.002")
    DagExecutionFactory(dag=dag, status="completed", completed_at=moment, total_cost_usd="0.010000")
    DagExecutionFactory(
        dag=dag,
        status="failed",
        completed_at=moment - timedelta(days=3),
        total_cost_usd="0.100000",
    )
    DagExecutionFactory(
        dag=dag, status="failed", completed_at=moment - timedelta(days=30), total_cost_usd="5"
    )
    RunFactory(goal=GoalFactory())
    response = browser_client.get("/")
    context = response.context
    assert context["dag_count"] == 1
    assert context["execution_total"] == 3
    assert context["execution_counts"]["failed"] == 2
    assert context["execution_counts"]["running"] == 0
    assert (context["goal_count"], context["run_count"]) == (1, 1)
    html = response.content.decode()
    assert 'data-testid="spend-today">$0.0120<' in html
    assert 'data-testid="spend-week">$0.1120<' in html


def test_readiness_partial_shows_provider_and_model(browser_client, settings):
    settings.LLM_PROVIDER, settings.LLM_MODEL = "openai", "gpt-test-model"
    html = browser_client.get("/dashboard/readiness").content.decode()
    assert 'data-testid="llm-provider">openai<' in html
    assert 'data-testid="llm-model" class="mono">gpt-test-model<' in html


@pytest.mark.parametrize("action", ["execute", "schedule", "schedule/toggle", "delete"])
def test_acting_on_a_dag_deleted_in_another_tab_lands_on_the_list(browser_client, action):
    response = browser_client.post(f"/dags/gone-dag/{action}", {"cron": "@daily"}, follow=True)
    assert response.redirect_chain == [("/dags", 302)]
    assert "no longer exists" in next(str(m) for m in response.context["messages"])


def test_pages_show_only_what_the_user_owns(browser_client):
    mine = DagFactory(dag_title="Mine")
    theirs = DagFactory(dag_title="Theirs", owner=UserFactory(username="bob"))
    DagExecutionFactory(dag=theirs, status="failed")
    html = browser_client.get("/dags").content.decode()
    assert f'data-dag-id="{mine.id}"' in html and f'data-dag-id="{theirs.id}"' not in html
    assert browser_client.get(f"/dags/{theirs.id}").status_code == 404
    assert (
        browser_client.get(f"/dags/new?from={theirs.id}").context["form"].initial.get("request", "")
        != theirs.params["goalText"]
    )
    response = browser_client.post(f"/dags/{theirs.id}/delete", follow=True)
    assert "no longer exists" in next(str(m) for m in response.context["messages"])
    assert Dag.objects.filter(pk=theirs.id).exists()
    context = browser_client.get("/").context
    assert (context["dag_count"], context["execution_total"]) == (1, 0)
