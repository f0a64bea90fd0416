"""The tools page: the registry's catalogue and who may call each tool."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from goals.models import Goal
from goals.services import goal_update
from ops.tool_pages import GOALS_SHOWN, tool_users
from tests.factories import AgentFactory, GoalFactory, UserFactory
from tools.registry import TOOL_NAMES

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(db):
    return UserFactory(username="viewer")


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


def section(page: str, name: str) -> str:
    return re.search(rf'data-tool="{name}">(.*?)</section>', page, re.S).group(1)


def test_the_catalogue_shows_every_tool_with_its_parameters(viewer_client):
    page = viewer_client.get("/tools").content.decode()
    assert re.findall(r'data-tool="(\w+)"', page) == list(TOOL_NAMES)
    search = section(page, "webSearch")
    row = re.search(r"<tr>\s*<td class=\"mono\">limit</td>(.*?)</tr>", search, re.S).group(1)
    assert "integer" in row and ">10<" in row and "min 1; max 20" in row
    assert "Read-only" in search
    write = section(page, "writeFile")
    assert "Side effects" in write
    assert 'one of: <span class="mono">overwrite</span>, <span class="mono">append</span>' in write
    email = section(page, "sendEmail")
    assert "string or array of string" in email  # cc: one address or a list
    assert "↳ filename" in email  # the attachments' own fields
    assert "format: email" in email


def test_who_may_use_each_tool(viewer_client, viewer):
    AgentFactory(name="DecomposerV8", active=True, prompt_template="Tools: {{tools}}")
    AgentFactory(name="Old", active=False, prompt_template="Tools: {{tools}}")
    GoalFactory(owner=viewer, objective="Search only", params={"allowedTools": ["webSearch"]})
    GoalFactory(owner=viewer, objective="Anything goes", params={})
    GoalFactory(owner=UserFactory(username="other"), objective="Not mine", params={})
    page = viewer_client.get("/tools").content.decode()
    search = re.search(r'data-testid="tool-users">(.*?)</p>', section(page, "webSearch"), re.S)
    write = re.search(r'data-testid="tool-users">(.*?)</p>', section(page, "writeFile"), re.S)
    assert "planner agents (DecomposerV8)" in search.group(1)
    assert "2 of your goals" in search.group(1) and "Search only" in search.group(1)
    assert "1 of your goals:" in write.group(1) and "Anything goes" in write.group(1)
    assert "Search only" not in write.group(1)
    assert "Not mine" not in page and "Old" not in page


# Every shape of params a goal can hold (the API checks allowedTools; the admin and older rows
# need not), with the tools its runs may call.
PARAMS_SHAPES: list[tuple[Any, set[str]]] = [
    ({}, set(TOOL_NAMES)),
    ({"allowedTools": []}, set(TOOL_NAMES)),
    ({"allowedTools": None}, set(TOOL_NAMES)),
    ({"allowedTools": "webSearch"}, set(TOOL_NAMES)),  # not a list: no restriction
    (["webSearch"], set(TOOL_NAMES)),  # params not even an object
    ({"allowedTools": ["webSearch", "webSearch", "noSuchTool"]}, {"webSearch"}),
    ({"allowedTools": ["noSuchTool"]}, set()),  # only unknown names: no tool at all
    ({"allowedTools": [1, "readFile", {"name": "writeFile"}]}, {"readFile"}),
    ({"allowedTools": ["READFILE", "fetchPage"]}, {"fetchPage"}),  # names are exact
    ({"allowedTools": ["readFile,writeFile", "fetch%"]}, set()),
    ({"allowedTools": ["writeFile", "readFile"]}, {"writeFile", "readFile"}),
]


def make_goals(owner: Any, count: int, start: datetime) -> list[tuple[Goal, set[str]]]:
    """(goal, the tools it may call), newest first: 25 goals that may only search the web,
    then `count` older ones cycling through PARAMS_SHAPES; each saved as the services save it."""
    shapes = [({"allowedTools": ["webSearch"]}, {"webSearch"})] * 25
    shapes += [PARAMS_SHAPES[index % len(PARAMS_SHAPES)] for index in range(count)]
    made = []
    for index, (params, may_call) in enumerate(shapes):
        goal = Goal.objects.create(
            objective=f"{owner.username} goal {index}",
            params=params,
            owner=owner,
            created_at=start - timedelta(minutes=index),
        )
        made.append((goal, may_call))
    return made


def expected_users(goals: list[tuple[Goal, set[str]]]) -> dict[str, dict[str, Any]]:
    """What the page must show, worked out goal by goal (`goals` newest first)."""
    expected = {}
    for name in TOOL_NAMES:
        callers = [goal for goal, may_call in goals if name in may_call]
        expected[name] = {
            "count": len(callers),
            "ids": [goal.id for goal in callers[:GOALS_SHOWN]],
        }
    return expected


def shown_users(viewer: Any) -> dict[str, dict[str, Any]]:
    _, users = tool_users(viewer)
    return {
        name: {"count": entry["count"], "ids": [goal["id"] for goal in entry["goals"]]}
        for name, entry in users.items()
    }


def test_each_tool_counts_the_goals_that_may_call_it_and_shows_the_newest(viewer):
    start = datetime(2026, 12, 1, tzinfo=UTC)
    mine = make_goals(viewer, 60, start)
    others = make_goals(UserFactory(username="other"), 30, start - timedelta(seconds=30))
    staff = UserFactory(username="staff", is_staff=True)

    assert shown_users(viewer) == expected_users(mine)
    everyone = sorted(mine + others, key=lambda pair: pair[0].created_at, reverse=True)
    assert shown_users(staff) == expected_users(everyone)


def test_a_goal_whose_allowed_tools_change_moves_between_tools(viewer):
    goal = GoalFactory(owner=viewer, params={"allowedTools": ["webSearch"]})
    assert shown_users(viewer)["writeFile"]["count"] == 0

    goal_update(goal=goal, changes={"params": {"allowedTools": ["writeFile"]}})
    assert shown_users(viewer)["writeFile"] == {"count": 1, "ids": [goal.id]}
    assert shown_users(viewer)["webSearch"]["count"] == 0

    goal_update(goal=goal, changes={"params": {}})
    assert all(users["count"] == 1 for users in shown_users(viewer).values())


def test_the_work_per_view_does_not_grow_with_the_number_of_goals(viewer):
    """Same statements for 20 goals as for 200 (planners, counts, the newest goals, and one
    per tool few of those may call), and every one reading goals returns a count or a few rows
    (LIMIT), never all the goals."""
    statements = []
    for count in (20, 200):
        Goal.objects.all().delete()
        make_goals(viewer, count, datetime(2026, 12, 1, tzinfo=UTC))
        with CaptureQueriesContext(connection) as queries:
            tool_users(viewer)
        statements.append([query["sql"] for query in queries.captured_queries])
    assert len(statements[0]) == len(statements[1]) <= 3 + len(TOOL_NAMES)
    reading_goals = [sql for sql in statements[1] if 'FROM "goals"' in sql]
    assert reading_goals
    for sql in reading_goals:
        assert "COUNT(" in sql or re.search(r"LIMIT \d+$", sql), sql
