"""Goal.allowed_tool_names, the tools page's per-goal list of tool names, follows params
through every write and was filled in for goals made before it existed."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from goals.models import Goal, allowed_tool_names_text
from tests.bulk_writes import bulk_writes
from tests.factories import GoalFactory
from tools.registry import TOOL_NAMES

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("params", "stored"),
    [
        ({}, None),
        ({"allowedTools": []}, None),
        ({"allowedTools": "webSearch"}, None),
        (["webSearch"], None),
        ({"allowedTools": ["webSearch", "webSearch", "noSuchTool"]}, ",webSearch,noSuchTool,"),
        ({"allowedTools": [1, None, "a,b"]}, ","),  # a list naming no possible tool
    ],
)
def test_the_stored_names(params, stored):
    assert allowed_tool_names_text(params) == stored


def test_no_tool_name_holds_the_separator():
    assert all("," not in name for name in TOOL_NAMES)


def test_saving_only_params_updates_the_names():
    goal = GoalFactory(params={"allowedTools": ["webSearch"]})
    goal.params = {"allowedTools": ["readFile"]}
    goal.save(update_fields=["params"])
    assert Goal.objects.get(pk=goal.pk).allowed_tool_names == ",readFile,"


def test_the_migration_fills_in_goals_made_before_the_column():
    listing = GoalFactory(params={"allowedTools": ["readFile", "writeFile"]})
    unrestricted = GoalFactory(params={"allowedTools": []})
    Goal.objects.update(allowed_tool_names=None)

    migration = importlib.import_module("goals.migrations.0005_goal_allowed_tool_names")
    migration.derive_allowed_tool_names(apps, None)

    stored = dict(Goal.objects.values_list("pk", "allowed_tool_names"))
    assert stored == {listing.pk: ",readFile,writeFile,", unrestricted.pk: None}


def test_no_code_writes_goals_without_saving_them():
    """A bulk write (`update`, `bulk_create`, `bulk_update`) skips Goal.save, which keeps the
    names in step with params: there is none to goals outside tests and benchmarks."""
    to_goals = [
        key
        for key, site in bulk_writes().items()
        if "Goal" in site.models or site.relations & {"goals", "owned_goals"}
    ]
    assert to_goals == []
