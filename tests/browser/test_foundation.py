"""The layout and its shared components in a real browser: login, navigation, theme, toasts,
the confirmation dialog, error pages, accessibility."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from dags.models import DagExecution
from tests.browser.helpers import assert_accessible, log_in, screenshot
from tests.factories import DagExecutionFactory, DagFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_pages_ask_for_a_login_and_the_login_page_leads_back(page, ui_user, browser_events):
    page.goto("/dags")
    expect(page).to_have_url(re.compile(r"/login\?next=/dags$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert_accessible(page, "login")
    screenshot(page, "login")

    page.get_by_label("Username").fill(ui_user.username)
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("enter a correct username and password")
    expect(page.get_by_label("Username")).to_have_value(ui_user.username)

    log_in(page, ui_user.username, "correct-horse-battery")
    page.goto("/dags")
    expect(page.get_by_role("heading", name="DAGs", exact=True)).to_be_visible()
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="DAGs")
    ).to_have_attribute("aria-current", "page")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    browser_events.assert_quiet()


def test_dashboard_shows_counts_recent_executions_and_readiness(logged_in_page, browser_events):
    page = logged_in_page
    dag = DagFactory(dag_title="Quarterly report")
    DagExecutionFactory(dag=dag, status="completed", completed_tasks=2, total_tasks=2)
    running = DagExecutionFactory(dag=dag, status="running", completed_tasks=1, total_tasks=2)
    page.goto("/")
    expect(page.get_by_test_id("dag-count")).to_have_text("1")
    expect(page.get_by_test_id("execution-count")).to_have_text("2")
    recent = page.locator("#recent-executions")
    expect(recent.locator("tbody tr")).to_have_count(2)
    expect(recent).to_contain_text("Quarterly report")
    # The readiness partial loads after the page.
    expect(page.get_by_test_id("llm-provider")).to_have_text("openai")
    expect(page.get_by_test_id("llm-model")).to_have_text("gpt-4o-mini")
    assert_accessible(page, "dashboard")
    screenshot(page, "dashboard")

    # The recent executions refresh themselves: a status change shows without a reload.
    row = recent.locator(f"tr[data-execution-id='{running.id}']")
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "running")
    DagExecution.objects.filter(pk=running.id).update(status="failed", completed_tasks=2)
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "failed", timeout=15_000)
    expect(row).to_contain_text("2/2")
    browser_events.assert_quiet()


def test_the_theme_toggle_switches_and_is_remembered_before_paint(logged_in_page):
    page = logged_in_page
    page.goto("/")
    html = page.locator("html")
    toggle = page.get_by_role("button", name="Dark theme")
    toggle.click()
    expect(html).to_have_attribute("data-theme", "dark")
    assert_accessible(page, "dashboard (dark)")
    screenshot(page, "dashboard-dark")
    page.goto("/dags")
    # Applied by the blocking head script, before the stylesheet paints anything.
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.get_by_role("button", name="Light theme").click()
    expect(html).to_have_attribute("data-theme", "light")
    page.reload()
    expect(html).to_have_attribute("data-theme", "light")


def test_the_confirmation_dialog_guards_destructive_forms(logged_in_page, browser_events):
    page = logged_in_page
    dag = DagFactory(dag_title="Disposable")
    page.goto("/dags")
    delete = page.get_by_role("button", name="Delete Disposable")
    delete.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete the DAG “Disposable”?")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(delete).to_be_focused()
    expect(page.locator(f"tr[data-dag-id='{dag.id}']")).to_be_visible()

    delete.click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator(".toast")).to_contain_text("DAG deleted.")
    expect(page.locator(".toast")).to_have_attribute("class", re.compile("success"))
    expect(page.locator(f"tr[data-dag-id='{dag.id}']")).to_have_count(0)
    page.locator(".toast-close").click()
    expect(page.locator(".toast")).to_have_count(0)
    browser_events.assert_quiet()


def test_missing_pages_use_the_site_layout_and_api_paths_stay_json(logged_in_page):
    page = logged_in_page
    response = page.goto("/dags/no-such-dag")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    assert_accessible(page, "404")
    screenshot(page, "not-found")
    response = page.goto("/api/v1/nope")
    assert response.status == 404
    assert response.headers["content-type"].startswith("application/json")


def test_keyboard_users_skip_to_content_and_reach_actions(logged_in_page):
    page = logged_in_page
    DagFactory(dag_title="Keyboard DAG")
    page.goto("/dags")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    # Tabbing from the content reaches the row's actions; Enter on Delete opens the dialog.
    delete = page.get_by_role("button", name="Delete Keyboard DAG")
    for _ in range(30):
        page.keyboard.press("Tab")
        if delete.evaluate("element => element === document.activeElement"):
            break
    expect(delete).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(delete).to_be_focused()


def test_dark_theme_pages_pass_axe_and_results_print_without_chrome(logged_in_page):
    from dags.tests.planning_helpers import good_plan

    page = logged_in_page
    dag = DagFactory(dag_title="Dark and printed", result=good_plan())
    DagExecutionFactory(dag=dag, status="suspended")
    page.goto("/")
    page.get_by_role("button", name="Dark theme").click()
    for url, name in (("/dags", "dag-list-dark"), (f"/dags/{dag.id}", "dag-detail-dark")):
        page.goto(url)
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        assert_accessible(page, f"{url} (dark)")
        screenshot(page, name)
    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.get_by_role("heading", name="Dark and printed")).to_be_visible()
    screenshot(page, "dag-detail-print")
