"""The tools page: the registry's catalogue and who may call each tool."""

from __future__ import annotations

import re

import pytest

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
