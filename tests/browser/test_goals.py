"""The goal and run pages in Chromium against real web and worker processes: create a goal with
two schedules → run it → watch its steps arrive live → open a step → pause → edit → delete;
axe-core in both themes and a screenshot of every page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from goals.models import Goal
from runs.models import Run
from tests.browser.conftest import PASSWORD
from tests.browser.helpers import assert_accessible, log_in, screenshot
from tests.factories import AgentFactory, GoalFactory, RunFactory, StepFactory
from tests.fakes.openai_server import ChatReply, ToolCall

pytestmark = pytest.mark.django_db(transaction=True)

# Records, from the first paint on, how many steps the run page shows and the run's status each
# time the page changes: the journey asserts a state between "no steps" and "finished".
STEP_RECORDER = """
(() => {
  window.__runLog = [];
  window.__pageId = Math.random();
  const record = () => {
    const state = document.getElementById('run-state');
    if (!state) return;
    const entry = [document.querySelectorAll('details[data-step]').length, state.dataset.status];
    const last = window.__runLog[window.__runLog.length - 1];
    if (!last || last[0] !== entry[0] || last[1] !== entry[1]) window.__runLog.push(entry);
  };
  new MutationObserver(record).observe(document, {subtree: true, childList: true});
  document.addEventListener('DOMContentLoaded', record);
})();
"""


def both_themes(page, name: str) -> None:
    """axe-core (no serious or critical violations) and a screenshot, light then dark."""
    for theme in ("light", "dark"):
        page.evaluate(f"document.documentElement.setAttribute('data-theme', '{theme}')")
        assert_accessible(page, f"{page.url} ({theme})")
        screenshot(page, f"{name}-{theme}" if theme == "dark" else name)
    page.evaluate("document.documentElement.setAttribute('data-theme', 'light')")


@pytest.fixture
def tokyo_page(browser, web_server, browser_events, fake_llm, ui_user):
    """A logged-in page whose browser says it is in Tokyo (the schedules default to it)."""
    context = browser.new_context(
        base_url=web_server.url, viewport={"width": 1280, "height": 900}, timezone_id="Asia/Tokyo"
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    browser_events.attach(page)
    log_in(page, ui_user.username, PASSWORD)
    yield page
    context.close()


def test_goal_journey_create_run_watch_open_pause_edit_delete(
    tokyo_page, browser_events, worker, fake_llm
):
    page = tokyo_page
    AgentFactory(name="defaultAgent", active=True)
    AgentFactory(name="researcher", version="2.0.0", active=True)
    page.add_init_script(STEP_RECORDER)

    # --- a form sent with mistakes comes back with messages beside the fields ---------------
    page.goto("/goals/new")
    objective = page.get_by_label("Objective")
    objective.fill("too short")
    expect(page.locator("[data-counter-for] [data-count]")).to_have_text("9")
    page.get_by_label("Webhook URL").fill("ftp://example.com/hook")
    page.get_by_role("button", name="Create goal").click()
    expect(page.locator(".form-errors")).to_contain_text("The goal was not saved")
    expect(page.locator("#id_objective_errors")).to_contain_text("Too short")
    expect(page.get_by_label("Objective")).to_have_value("too short")
    both_themes(page, "goal-form-errors")

    # --- a goal with two schedules ------------------------------------------------------------
    objective = page.get_by_label("Objective")
    objective.fill("Read the **notes** and summarise what changed this week")
    expect(page.locator("[data-counter-for] [data-count]")).to_have_text("55")
    page.get_by_label("Agent").select_option(label="researcher 2.0.0")
    page.get_by_label("Step budget").fill("5")
    page.get_by_label("readFile").check()
    page.get_by_label("Webhook URL").fill("")

    page.get_by_role("button", name="Add schedule").click()
    first = page.locator("[data-schedule-row]").nth(0)
    expect(first.get_by_label("Time zone")).to_have_value("Asia/Tokyo")  # the browser's zone
    first.get_by_label("Preset").select_option("0 9 * * 1-5")
    expect(first.get_by_label("Cron expression")).to_have_value("0 9 * * 1-5")
    expect(first.get_by_test_id("cron-description")).to_contain_text("Monday through Friday")
    expect(first.get_by_test_id("next-runs").locator("li")).to_have_count(5)
    expect(first.get_by_test_id("next-runs")).to_contain_text("09:00 JST")

    page.get_by_role("button", name="Add schedule").click()
    second = page.locator("[data-schedule-row]").nth(1)
    second.get_by_label("Cron expression").fill("61 * * * *")
    expect(second.locator(".field-error")).to_contain_text("Invalid cron expression")
    second.get_by_label("Cron expression").fill("30 18 * * 5")
    second.get_by_label("Time zone").select_option("America/New_York")
    expect(second.get_by_test_id("cron-description")).to_contain_text("Friday")
    expect(second.get_by_test_id("next-runs")).to_contain_text("18:30 E")  # EST or EDT
    both_themes(page, "goal-form")

    page.get_by_role("button", name="Create goal").click()
    expect(page.locator(".toast")).to_contain_text("Goal created with 2 schedules.")
    expect(page).to_have_url(re.compile(r"/goals/goal_"))
    goal = Goal.objects.get()
    assert goal.params == {"stepBudget": 5, "allowedTools": ["readFile"]}
    assert {(s.cron_expr, s.timezone) for s in goal.schedules.all()} == {
        ("0 9 * * 1-5", "Asia/Tokyo"),
        ("30 18 * * 5", "America/New_York"),
    }
    expect(page.locator("#schedules tbody tr")).to_have_count(2)
    both_themes(page, "goal-detail")

    # --- run it and watch the steps arrive --------------------------------------------------
    fake_llm.enqueue(
        ChatReply(
            content="First I look at the **notes** file.",
            tool_calls=[ToolCall("readFile", {"path": "notes/week.md"}, "c1")],
            delay=2.5,
        ),
        ChatReply(
            content="Then the older notes, for comparison.",
            tool_calls=[ToolCall("readFile", {"path": "notes/last-week.md"}, "c2")],
            delay=2.5,
        ),
        ChatReply(content="## Summary\n\nNothing changed: no notes were found.", delay=2.5),
    )
    page.get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/runs/run_"))
    page_id = page.evaluate("window.__pageId")
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    expect(page.locator("details[data-step]").first).to_be_visible(timeout=30_000)
    screenshot(page, "run-detail-running", full_page=False)
    expect(page.locator("#run-state")).to_have_attribute("data-status", "completed", timeout=60_000)
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "finished")
    assert page.evaluate("window.__pageId") == page_id, "the page reloaded"
    log = page.evaluate("window.__runLog")
    # The page was painted before the last step, showed a step while the run was still
    # running, and its step count changed while it stayed open.
    assert log[0][0] < 3, log
    assert any(count >= 1 and status == "running" for count, status in log), log
    assert len({count for count, _ in log}) >= 2, log
    assert log[-1] == [3, "completed"], log
    expect(page.get_by_test_id("run-summary")).to_contain_text("Nothing changed")
    expect(page.get_by_test_id("steps-executed")).to_have_text("3")

    # --- open a step ------------------------------------------------------------------------
    step = page.locator("details[data-step='1']")
    step.locator("summary").click()
    expect(step.get_by_test_id("step-thought").locator("strong")).to_have_text("notes")
    expect(step).to_contain_text("notes/week.md")
    expect(step.get_by_test_id("step-observation")).to_be_visible()
    both_themes(page, "run-detail")

    page.goto("/runs")
    expect(page.get_by_test_id("runs-completed")).to_have_text("1")
    both_themes(page, "run-list")

    # --- pause, edit, delete ----------------------------------------------------------------
    page.goto("/goals")
    both_themes(page, "goal-list")
    page.get_by_role("button", name=re.compile("^Pause: Read the")).click()
    expect(page.locator(".toast")).to_contain_text("Goal paused")
    row = page.locator(f"tr[data-goal-id='{goal.id}']")
    expect(row.locator(".badge").first).to_have_attribute("data-status", "paused")
    goal.refresh_from_db()
    assert goal.status == Goal.Status.PAUSED

    row.get_by_role("link", name=re.compile("^Edit:")).click()
    expect(page.get_by_role("heading", name="Edit goal")).to_be_visible()
    expect(page.get_by_label("Step budget")).to_have_value("5")
    page.get_by_label("Objective").fill("Read the notes and list only what is new")
    page.locator("[data-schedule-row]").nth(1).get_by_label("Remove this schedule").check()
    page.get_by_role("button", name="Save goal").click()
    expect(page.locator(".toast")).to_contain_text("Goal saved (1 schedule; schedules changed).")
    expect(page.get_by_test_id("goal-objective")).to_have_text(
        "Read the notes and list only what is new"
    )
    expect(page.locator("#schedules tbody tr")).to_have_count(1)

    page.get_by_role("button", name=re.compile("^Delete:")).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete the goal")
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator(".toast")).to_contain_text("Goal deleted")
    expect(page).to_have_url(re.compile(r"/goals$"))
    assert not Goal.objects.exists() and not Run.objects.exists()
    screenshot(page, "goal-list-empty")
    browser_events.assert_quiet(allow_http_errors=True)


def test_hostile_strings_stay_text_in_the_browser(logged_in_page, browser_events):
    page = logged_in_page
    hostile = (
        "<script>alert('xss')</script><img src=x onerror=\"alert('img')\">"
        "<iframe src=\"javascript:alert('frame')\"></iframe>[link](javascript:alert('link'))"
    )
    goal = GoalFactory(objective="Objective " + hostile)
    run = RunFactory(goal=goal, status=Run.Status.COMPLETED)
    StepFactory(run=run, step_no=1, thought="Thought " + hostile, observation="Seen " + hostile)
    for url in (f"/runs/{run.id}", f"/goals/{goal.id}", "/goals", "/runs"):
        page.goto(url)
        assert page.locator("main script, main iframe, main img").count() == 0, url
        assert page.locator("main a[href^='javascript:']").count() == 0, url
    page.goto(f"/runs/{run.id}")
    page.locator("details[data-step='1'] summary").click()
    expect(page.get_by_test_id("step-thought")).to_contain_text("<script>alert('xss')</script>")
    expect(page.get_by_test_id("step-observation")).to_contain_text("onerror=")
    browser_events.assert_quiet()
