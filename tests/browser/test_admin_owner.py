"""The owner field of the admin's change pages in Chromium: a staff operator hands a goal to
another user found by the field's search, and the changelist's owner filter names only the users
who own rows.

A module of its own: saving in the admin writes a history entry that names the model's content
type, which the web process keeps from the first time it looks it up, and the tables (content
types included) are emptied and filled again between tests with new ids.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD
from tests.browser.helpers import admin_log_in, assert_accessible, screenshot
from tests.factories import GoalFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_operator_hands_a_goal_to_another_user_found_by_search(page, browser_events, operator):
    others = UserFactory.create_batch(25)
    carol = UserFactory(username="carol")
    goal = GoalFactory(objective="Watch the tide tables", owner=operator)

    admin_log_in(page, operator.username, PASSWORD)
    page.goto(f"/admin/goals/goal/{goal.id}/change/")
    owner = page.get_by_role("combobox", name=re.compile(r"^Owner"))
    expect(owner).to_contain_text("operator")
    owner.click()
    page.locator(".select2-search__field").fill("car")
    # Once the search has answered, only the matching user is offered.
    choice = page.locator(".select2-results__option")
    expect(choice).to_have_count(1)
    expect(choice).to_have_text("carol")
    screenshot(page, "admin-goal-owner-search", full_page=False)
    choice.click()
    expect(owner).to_contain_text("carol")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist .success")).to_contain_text("was changed successfully")
    # The owner filter names the users who own goals, not every account.
    filters = page.locator("#changelist-filter")
    expect(filters.get_by_role("link", name="carol", exact=True)).to_be_visible()
    for other in (*others, operator):
        expect(filters.get_by_role("link", name=other.username, exact=True)).to_have_count(0)
    assert_accessible(page, "admin-goal-owner-changed")
    screenshot(page, "admin-goal-owner-changed")
    goal.refresh_from_db()
    assert goal.owner == carol
    browser_events.assert_quiet()
