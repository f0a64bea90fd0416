"""The Django admin in Chromium against a real web process: a staff operator logs in through the
admin's own form, reads the dashboard, finds a DAG by search and follows it to its executions,
narrows them with a filter, cancels one with the change page's button, then finds a goal by
search and pauses it with a bulk action; a logged-in user who is not staff is refused.

axe-core checks every page the operator sees (no serious or critical violations), and a
screenshot of each is saved.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from dags.models import DagExecution
from goals.models import Goal
from tests.browser.conftest import PASSWORD
from tests.browser.helpers import admin_log_in, assert_accessible, log_in, screenshot
from tests.factories import DagExecutionFactory, DagFactory, GoalFactory

pytestmark = pytest.mark.django_db(transaction=True)


def checked(page, name: str) -> None:
    assert_accessible(page, name)
    screenshot(page, name)


def shown_field(page, name: str):
    """A read-only field of a change page (these share their row with another field)."""
    return page.locator(f".fieldBox.field-{name} .readonly")


def result_rows(page):
    return page.locator("#result_list tbody tr")


def test_operator_finds_a_dag_and_a_goal_and_acts_on_them(page, browser_events, operator):
    dag = DagFactory(dag_title="Quarterly lighthouse survey")
    DagFactory(dag_title="Weekly harbour report")
    suspended = DagExecutionFactory(dag=dag, status=DagExecution.Status.SUSPENDED)
    DagExecutionFactory(dag=dag, status=DagExecution.Status.COMPLETED)
    goal = GoalFactory(objective="Track the price of lighthouse lenses every morning")
    other_goal = GoalFactory(objective="Summarise the harbour news")

    admin_log_in(page, operator.username, PASSWORD)
    # The project's dashboard on top of the admin index, counting the rows made above.
    dashboard = page.locator("#admin-dashboard")
    expect(dashboard).to_be_visible()
    expect(dashboard.locator("#goal-counts")).to_contain_text("active 2")
    expect(page.locator("#goals-goal").get_by_role("link", name="Goals")).to_be_visible()
    checked(page, "admin-index")

    # --- a DAG found by search, followed to its executions ------------------------------------
    page.goto("/admin/dags/dag/")
    page.locator("#searchbar").fill("lighthouse")
    page.get_by_role("button", name="Search").click()
    expect(result_rows(page)).to_have_count(1)
    expect(result_rows(page)).to_contain_text("Quarterly lighthouse survey")
    checked(page, "admin-dag-search")
    result_rows(page).get_by_role("link", name=dag.id).click()
    expect(shown_field(page, "id")).to_have_text(dag.id)
    expect(page.get_by_role("button", name="Execute now")).to_be_visible()
    checked(page, "admin-dag-change")

    page.get_by_role("link", name="2 execution(s)").click()
    expect(result_rows(page)).to_have_count(2)
    # The status filter narrows them to the one that can still be cancelled.
    page.locator("#changelist-filter").get_by_role("link", name="suspended").click()
    expect(page).to_have_url(re.compile(r"status__exact=suspended"))
    expect(result_rows(page)).to_have_count(1)
    checked(page, "admin-execution-filtered")
    result_rows(page).get_by_role("link", name=suspended.id).click()

    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    checked(page, "admin-execution-change")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".messagelist .success")).to_have_text(
        f"Execution {suspended.id} cancelled."
    )
    suspended.refresh_from_db()
    assert suspended.status == DagExecution.Status.CANCELLED
    # The page shows the new state: a cancelled execution can be resumed, not cancelled again.
    expect(shown_field(page, "status_badge")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    checked(page, "admin-execution-cancelled")

    # --- a goal found by search, paused with a bulk action ------------------------------------
    page.goto("/admin/goals/goal/")
    expect(result_rows(page)).to_have_count(2)
    page.locator("#searchbar").fill("lenses")
    page.get_by_role("button", name="Search").click()
    expect(result_rows(page)).to_have_count(1)
    row = result_rows(page).first
    expect(row).to_contain_text(goal.id)
    row.locator("input.action-select").check()
    page.locator("select[name=action]").select_option(
        label="Pause the selected goals (and their schedules)"
    )
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".messagelist .success")).to_have_text("Paused 1 goal(s).")
    expect(result_rows(page).first.locator(".field-status_badge")).to_have_text("paused")
    checked(page, "admin-goal-paused")
    goal.refresh_from_db()
    other_goal.refresh_from_db()
    assert (goal.status, other_goal.status) == (Goal.Status.PAUSED, Goal.Status.ACTIVE)

    # The goal's own page offers the way back.
    result_rows(page).get_by_role("link", name=goal.id).click()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    # The agent's autocomplete field is named after its label, then the choice (none here).
    expect(page.get_by_role("combobox", name=re.compile(r"^Agent"))).to_be_visible()
    checked(page, "admin-goal-change")

    browser_events.assert_quiet()


def test_a_user_who_is_not_staff_is_refused(page, ui_user):
    goal = GoalFactory(owner=ui_user)
    log_in(page, ui_user.username, PASSWORD)

    for address in ("/admin/", f"/admin/goals/goal/{goal.id}/change/"):
        page.goto(address)
        expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
        expect(page.locator(".errornote")).to_contain_text(
            f"You are authenticated as {ui_user.username}, but are not authorized"
        )
        expect(page.locator("#admin-dashboard")).to_have_count(0)
        expect(page.locator("body")).not_to_contain_text(goal.objective)
