"""Journeys through the DAG pages in Chromium against a real web process and the scripted LLM:
plan with a clarification, enhance, failures, the list's actions, the schedule editor, XSS."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from dags.models import Dag, DagExecution
from dags.tests.planning_helpers import good_plan, plan, planner_agents, reply, task
from tests.browser.helpers import assert_accessible, screenshot
from tests.factories import AgentFactory, DagExecutionFactory, DagFactory
from tests.fakes.openai_server import ChatReply

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = (
    "<script>alert('t')</script><img src=x onerror=\"alert('i')\">"
    "<a href=\"javascript:alert('j')\">click</a><iframe src=\"javascript:alert('f')\"></iframe>"
)


def inference_plan() -> dict:
    return plan(
        task("t1", tool="InferenceAgent", action="inference", params={"prompt": "Collect"}),
        task(
            "t2",
            tool="InferenceAgent",
            action="inference",
            params={"prompt": "Summarise <Result from Task t1>"},
            deps=["t1"],
        ),
    )


def test_plan_a_dag_answer_its_question_and_execute_it(logged_in_page, fake_llm, browser_events):
    page = logged_in_page
    planner_agents()
    fake_llm.enqueue(
        reply(plan(sub_tasks=[], clarification_needed=True, clarification_query="Which region?")),
        reply(inference_plan()),
    )
    page.goto("/dags/new")
    expect(page.get_by_label("Planner agent")).to_have_value("DecomposerV8")
    page.get_by_label("What should be done?").fill("Brief me on battery news")
    page.get_by_text("Advanced: provider, model, temperature").click()
    page.get_by_label("Temperature").fill("0.3")
    assert_accessible(page, "new DAG")
    screenshot(page, "dag-new")
    page.get_by_role("button", name="Plan", exact=True).click()

    clarification = page.get_by_test_id("clarification")
    expect(clarification).to_contain_text("Which region?")
    expect(page.get_by_label("What should be done?")).to_have_value("Brief me on battery news")
    assert_accessible(page, "clarification")
    screenshot(page, "dag-new-clarification")
    page.get_by_label("Your answer").fill("Europe")
    page.get_by_role("button", name="Answer and re-plan").click()

    planned = page.get_by_test_id("planned")
    expect(planned).to_be_visible()
    expect(planned.get_by_test_id("plan-table").locator("tbody tr")).to_have_count(2)
    expect(planned.get_by_test_id("plan-diagram").locator("g.node")).to_have_count(2)
    expect(page.locator(".toast")).to_contain_text("Planned 2 steps")
    assert "A: Europe" in fake_llm.requests[1]["messages"][-1]["content"]
    assert fake_llm.requests[1]["temperature"] == 0.3
    assert_accessible(page, "planned")
    screenshot(page, "dag-new-planned")

    dag = Dag.objects.get()
    planned.get_by_role("button", name="Execute").click()
    expect(page.locator(".toast")).to_contain_text("Execution started (2 tasks)")
    execution = DagExecution.objects.get(dag=dag)
    expect(page).to_have_url(re.compile(f"/executions/{execution.id}$"))
    browser_events.assert_quiet()


def test_plan_and_execute_in_one_go_lands_on_the_execution(logged_in_page, fake_llm):
    page = logged_in_page
    planner_agents()
    fake_llm.enqueue(reply(inference_plan()))
    page.goto("/dags/new")
    page.get_by_label("What should be done?").fill("Brief me")
    page.get_by_role("button", name="Plan and execute").click()
    expect(page.locator(".toast")).to_contain_text("Execution started")
    execution = DagExecution.objects.get()
    assert execution.original_request == "Brief me"
    expect(page).to_have_url(re.compile(f"/executions/{execution.id}$"))


def test_enhance_is_reviewed_before_use(logged_in_page, fake_llm, browser_events):
    page = logged_in_page
    planner_agents()
    AgentFactory(name="ParaphrasePro", prompt_template="Rewrite.", active=True)
    fake_llm.enqueue(ChatReply(content="Gather this week's battery news from trusted sources."))
    page.goto("/dags/new")
    request = page.get_by_label("What should be done?")
    request.fill("battery news pls")
    page.get_by_role("button", name="Enhance").click()
    suggestion = page.get_by_test_id("suggestion")
    expect(suggestion).to_contain_text("Gather this week's battery news")
    expect(request).to_have_value("battery news pls")
    screenshot(page, "dag-new-enhanced")
    suggestion.get_by_role("button", name="Discard").click()
    expect(page.get_by_test_id("suggestion")).to_have_count(0)
    expect(request).to_have_value("battery news pls")

    fake_llm.enqueue(ChatReply(content="Gather this week's battery news from trusted sources."))
    page.get_by_role("button", name="Enhance").click()
    page.get_by_test_id("suggestion").get_by_role("button", name="Use this text").click()
    expect(request).to_have_value("Gather this week's battery news from trusted sources.")
    assert not Dag.objects.exists()
    browser_events.assert_quiet()


def test_planning_failures_are_explained_and_nothing_typed_is_lost(logged_in_page, fake_llm):
    page = logged_in_page
    planner_agents()
    page.goto("/dags/new")
    request = page.get_by_label("What should be done?")

    # Empty: the server says so (the form does not rely on the browser's checks).
    page.get_by_role("button", name="Plan", exact=True).click()
    expect(page.get_by_role("alert").first).to_contain_text("Describe the task to plan.")

    # The LLM is down.
    request.fill("Find battery news\nwith two lines")
    fake_llm.enqueue(ChatReply(status=503, error_message="upstream overloaded"))
    page.get_by_role("button", name="Plan", exact=True).click()
    expect(page.get_by_test_id("planning-error")).to_contain_text("Planning failed")
    expect(request).to_have_value("Find battery news\nwith two lines")

    # The LLM answers garbage three times.
    fake_llm.enqueue(*[ChatReply(content='```json\n{"sub_tasks": []}\n```')] * 3)
    page.get_by_role("button", name="Plan", exact=True).click()
    error = page.get_by_test_id("planning-error")
    expect(error).to_contain_text("Invalid DAG structure after multiple attempts")
    expect(error.locator("li").first).to_be_visible()
    expect(request).to_have_value("Find battery news\nwith two lines")
    assert_accessible(page, "planning error")
    screenshot(page, "dag-new-planning-error")
    assert not Dag.objects.exists()

    # Oversized text is cut by the field's limit in the browser and refused by the server.
    page.evaluate(
        "document.getElementById('id_request').removeAttribute('maxlength');"
        "document.getElementById('id_request').value = 'x'.repeat(50001);"
    )
    page.get_by_role("button", name="Plan", exact=True).click()
    expect(page.get_by_role("alert").first).to_contain_text("The request is too long")
    assert len(request.input_value()) == 50001


def test_the_list_searches_filters_and_acts_on_dags(logged_in_page, browser_events):
    page = logged_in_page
    planner_agents()
    for number in range(23):
        DagFactory(dag_title=f"Digest {number:02d}", params={"goalText": f"digest {number}"})
    morning = DagFactory(
        dag_title="Morning brief",
        params={"goalText": "Brief me on lithium", "agentName": "DecomposerV8"},
        cron_schedule="0 9 * * *",
        schedule_active=True,
        timezone="Europe/Paris",
    )
    used = DagFactory(dag_title="Used one")
    DagExecutionFactory(dag=used, status="completed")
    DagExecutionFactory(dag=used, status="failed")

    page.goto("/dags")
    expect(page.locator("tbody tr")).to_have_count(20)
    assert_accessible(page, "DAG list")
    screenshot(page, "dag-list")
    page.get_by_role("link", name=re.compile("^Next")).click()
    expect(page.locator("tbody tr")).to_have_count(5)

    page.get_by_label("Search").fill("lithium")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    row = page.locator(f"tr[data-dag-id='{morning.id}']")
    expect(row).to_contain_text("At 09:00 AM")
    expect(row).to_contain_text("Active · Europe/Paris")

    row.get_by_role("button", name="Pause the schedule of Morning brief").click()
    expect(page.locator(".toast")).to_contain_text("Schedule paused.")
    expect(page).to_have_url(re.compile(r"q=lithium"))
    expect(row).to_contain_text("Paused")
    row.get_by_role("button", name="Resume the schedule of Morning brief").click()
    expect(page.locator(".toast").last).to_contain_text("Schedule resumed.")

    row.get_by_role("link", name="Reuse Morning brief for a new DAG").click()
    expect(page.get_by_label("What should be done?")).to_have_value("Brief me on lithium")

    page.goto("/dags?status=failed")
    expect(page.locator("tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Delete Used one").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "cannot be deleted on its own: it has 2 executions"
    )
    assert_accessible(page, "delete explanation")
    screenshot(page, "dag-delete-explained")
    page.get_by_role("button", name="Delete the DAG and its 2 executions").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete this DAG and its 2 executions?")
    dialog.get_by_role("button", name="Delete all").click()
    expect(page.locator(".toast")).to_contain_text("DAG deleted with its 2 executions.")
    assert not Dag.objects.filter(pk=used.id).exists()
    assert not DagExecution.objects.exists()
    browser_events.assert_quiet()


@pytest.fixture
def tokyo_page(browser, web_server, browser_events, fake_llm, ui_user):
    from tests.browser.conftest import PASSWORD
    from tests.browser.helpers import log_in

    context = browser.new_context(
        base_url=web_server.url, timezone_id="Asia/Tokyo", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    new_page = context.new_page()
    browser_events.attach(new_page)
    log_in(new_page, ui_user.username, PASSWORD)
    yield new_page
    context.close()


def test_the_schedule_editor_validates_previews_and_saves(tokyo_page, browser_events):
    page = tokyo_page
    dag = DagFactory(dag_title="Nightly", result=good_plan())
    DagExecutionFactory(dag=dag, status="completed", total_cost_usd="0.00123")
    page.goto(f"/dags/{dag.id}")
    expect(page.get_by_test_id("plan-table").locator("tbody tr")).to_have_count(2)
    expect(page.get_by_test_id("dag-total-cost")).to_have_text("$0.00123")
    zone = page.get_by_label("Time zone")
    expect(zone).to_have_value("Asia/Tokyo")  # the browser's zone for a DAG without schedule

    cron = page.get_by_label("Cron expression")
    cron.fill("30 7 * * 1-5")
    preview = page.locator("#schedule-preview")
    expect(preview.get_by_test_id("cron-description")).to_have_text(
        "At 07:30 AM, Monday through Friday"
    )
    expect(preview.get_by_test_id("next-runs").locator("li")).to_have_count(5)
    expect(preview.get_by_test_id("next-runs")).to_contain_text("07:30 JST")
    page.locator("details summary", has_text="Decomposition").click()
    assert_accessible(page, "DAG detail")
    screenshot(page, "dag-detail")

    cron.fill("99 * * *")
    expect(preview).to_contain_text("5 fields")
    page.get_by_role("button", name="Save schedule").click()
    expect(page.get_by_role("alert").first).to_contain_text("The schedule was not saved")
    expect(page.get_by_label("Cron expression")).to_have_value("99 * * *")

    page.get_by_label("Cron expression").fill("30 7 * * 1-5")
    page.get_by_role("button", name="Save schedule").click()
    expect(page.locator(".toast")).to_contain_text("Schedule saved: At 07:30 AM")
    dag.refresh_from_db()
    assert (dag.cron_schedule, dag.timezone, dag.schedule_active) == (
        "30 7 * * 1-5",
        "Asia/Tokyo",
        True,
    )
    page.get_by_role("button", name="Pause").click()
    expect(page.locator(".toast")).to_contain_text("Schedule paused.")
    dag.refresh_from_db()
    assert dag.schedule_active is False
    browser_events.assert_quiet(allow_http_errors=True)


def test_hostile_titles_requests_and_plans_stay_text(logged_in_page, browser_events):
    page = logged_in_page
    planner_agents()
    hostile_plan = good_plan()
    for sub_task in hostile_plan["sub_tasks"]:
        sub_task["description"] = HOSTILE
        sub_task["thought"] = HOSTILE
    hostile_plan["synthesis_plan"] = HOSTILE
    dag = DagFactory(
        dag_title=HOSTILE,
        params={"goalText": HOSTILE, "agentName": "DecomposerV8"},
        result=hostile_plan,
        cron_schedule="0 9 * * *",
        schedule_active=True,
    )
    DagExecutionFactory(dag=dag, original_request=HOSTILE, status="running")

    for url in ("/", "/dags", f"/dags/{dag.id}", f"/dags/new?planned={dag.id}"):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert page.locator("iframe").count() == 0, url
        assert page.locator("img[src='x']").count() == 0, url
        assert page.locator("a[href^='javascript:']").count() == 0, url
    expect(page.get_by_label("What should be done?")).to_have_value(HOSTILE)
    expect(page.get_by_test_id("planned")).to_contain_text("<script>alert('t')</script>")
    page.goto(f"/dags/{dag.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE)
    screenshot(page, "dag-detail-hostile")
    browser_events.assert_quiet()
