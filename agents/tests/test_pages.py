"""The agent pages through Django's test client: forms, permissions (a read-only user), the
JSON metadata check, the prompt helper, the delete rule, the test call, query counts."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Agent
from agents.templating import PLACEHOLDER, PROMPT_PLACEHOLDERS
from ops.agent_pages import prompt_helper
from tests.factories import AgentFactory, GoalFactory, UserFactory
from tests.fakes.openai_server import ChatReply

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert('x')</script><img src=x onerror=\"alert('i')\">"


@pytest.fixture
def manager_client(client):
    user = UserFactory(username="manager")
    user.groups.add(Group.objects.get(name="Agent managers"))
    client.force_login(user)
    return client


@pytest.fixture
def reader_client(client):
    client.force_login(UserFactory(username="reader"))
    return client


def agent_form(**changes) -> dict[str, str]:
    data = {
        "name": "Writer",
        "version": "2.0.0",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "prompt_template": "You write. Today is {{currentDate}}.",
        "metadata": '{"team": "docs"}',
        "action": "save",
    }
    data.update(changes)
    return data


def query_count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(queries)


# --- access --------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/agents", "/agents/new", "/task", "/tools"])
def test_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/login?next={url}"


def test_a_reader_sees_read_only_pages_without_change_buttons(reader_client):
    agent = AgentFactory(name="Writer", version="1.0.0", active=False)
    listing = reader_client.get("/agents").content.decode()
    detail = reader_client.get(f"/agents/{agent.id}").content.decode()
    for page in (listing, detail):
        assert "Writer" in page
        for action in ("/edit", "/activate", "/delete", "/agents/new"):
            assert action not in page, action
    assert "Read-only" in detail
    # Previewing and testing change nothing: a reader may use them.
    assert f"/agents/{agent.id}/test" in detail


def test_changes_without_permission_are_a_403_page_and_change_nothing(reader_client):
    agent = AgentFactory(name="Writer", version="1.0.0", active=False, prompt_template="Old")
    posts = [
        ("/agents/new", agent_form()),
        (f"/agents/{agent.id}/edit", agent_form(name="Writer", version="1.0.0")),
        (f"/agents/{agent.id}/activate", {}),
        (f"/agents/{agent.id}/delete", {}),
    ]
    for url, data in posts:
        response = reader_client.post(url, data)
        assert response.status_code == 403, url
        assert b'<nav class="nav" aria-label="Main">' in response.content
        assert "needs permission" in response.content.decode()
    assert reader_client.get("/agents/new").status_code == 403
    assert reader_client.get(f"/agents/{agent.id}/edit").status_code == 403
    agent.refresh_from_db()
    assert (agent.prompt_template, agent.active) == ("Old", False)
    assert Agent.objects.count() == 1


def test_unknown_agent_is_a_404_page(manager_client):
    response = manager_client.get("/agents/agent_nope")
    assert response.status_code == 404
    assert b"Page not found" in response.content


# --- list ----------------------------------------------------------------------------------------
def test_list_groups_versions_by_name_and_filters_by_active(manager_client):
    AgentFactory(name="Writer", version="1.0.0")
    AgentFactory(name="Writer", version="2.0.0", active=True)
    AgentFactory(name="Reader", version="0.1.0")

    def shown(query: str = "") -> dict[str, list[str]]:
        page = manager_client.get("/agents" + query).content.decode()
        groups = re.findall(r'data-agent-name="([^"]+)"(.*?)</section>', page, re.S)
        return {
            name: re.findall(r'href="/agents/agent_[^"/]+">([^<]+)</a>', body)
            for name, body in groups
        }

    assert shown() == {"Reader": ["0.1.0"], "Writer": ["2.0.0", "1.0.0"]}
    assert shown("?active=active") == {"Writer": ["2.0.0"]}
    assert shown("?active=inactive") == {"Reader": ["0.1.0"], "Writer": ["1.0.0"]}
    assert shown("?q=read") == {"Reader": ["0.1.0"]}
    assert shown("?sort=-name") == {"Writer": ["2.0.0", "1.0.0"], "Reader": ["0.1.0"]}


def test_list_queries_do_not_grow_with_rows(manager_client):
    def fill(names: int) -> None:
        for index in range(names):
            name = f"Agent{Agent.objects.count()}-{index}"
            agent = AgentFactory(name=name, version="1", active=True)
            AgentFactory(name=name, version="2")
            GoalFactory(agent=agent)

    fill(3)
    small = query_count(manager_client, "/agents")
    fill(25)  # more than a page of names
    assert query_count(manager_client, "/agents") == small
    assert query_count(manager_client, "/agents?page=2&active=active") == small


# --- create, edit, metadata ----------------------------------------------------------------------
def test_create_saves_the_agent_and_can_make_it_active(manager_client):
    old = AgentFactory(name="Writer", version="1.0.0", active=True)
    response = manager_client.post("/agents/new", agent_form(activate="1"))
    agent = Agent.objects.get(name="Writer", version="2.0.0")
    assert response.status_code == 302
    assert response["Location"] == f"/agents/{agent.id}"
    assert (agent.provider, agent.model, agent.metadata) == (
        "openai",
        "gpt-4o-mini",
        {"team": "docs"},
    )
    assert agent.active
    old.refresh_from_db()
    assert not old.active


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ('{"team": ', "Not valid JSON: Expecting value (line 1, column 10)."),
        ("[1, 2]", "Expected a JSON object."),
        ('"text"', "Expected a JSON object."),
    ],
)
def test_bad_metadata_is_refused_beside_the_field_and_the_input_kept(
    manager_client, metadata, message
):
    response = manager_client.post("/agents/new", agent_form(metadata=metadata))
    page = response.content.decode()
    assert response.status_code == 400
    assert not Agent.objects.exists()
    errors = re.search(r'id="id_metadata_error"[^>]*>(.*?)</ul>', page, re.S).group(1)
    assert html.escape(message, quote=True) in errors
    assert html.escape(metadata) in page  # the typed text is still in the textarea
    assert "You write. Today is {{currentDate}}." in page


def test_missing_fields_and_a_duplicate_version_are_explained(manager_client):
    response = manager_client.post("/agents/new", agent_form(name="", prompt_template="  "))
    page = response.content.decode()
    assert response.status_code == 400
    assert "This field is required." in page
    assert "Write the prompt template." in page

    AgentFactory(name="Writer", version="2.0.0")
    response = manager_client.post("/agents/new", agent_form())
    assert response.status_code == 409
    assert "Agent with this name and version already exists" in response.content.decode()
    assert Agent.objects.count() == 1


def test_new_version_from_an_existing_one_is_prefilled(manager_client):
    source = AgentFactory(name="Writer", version="1.0.0", prompt_template="Be brief {{objective}}")
    page = manager_client.get(f"/agents/new?from={source.id}").content.decode()
    assert 'value="Writer"' in page
    assert "Be brief {{objective}}</textarea>" in page


def test_edit_saves_and_preview_does_not(manager_client):
    agent = AgentFactory(name="Writer", version="1.0.0", prompt_template="Old")
    url = f"/agents/{agent.id}/edit"
    changed = agent_form(name="Writer", version="1.0.0", prompt_template="New {{nope}}")
    preview = manager_client.post(url, {**changed, "action": "preview"})
    assert preview.status_code == 200
    agent.refresh_from_db()
    assert agent.prompt_template == "Old"
    assert 'data-testid="placeholders-unknown"' in preview.content.decode()

    response = manager_client.post(url, changed)
    assert response.status_code == 302
    agent.refresh_from_db()
    assert (agent.prompt_template, agent.metadata) == ("New {{nope}}", {"team": "docs"})


def test_renaming_onto_an_existing_version_is_a_conflict_on_the_form(manager_client):
    AgentFactory(name="Writer", version="2.0.0")
    agent = AgentFactory(name="Writer", version="1.0.0")
    response = manager_client.post(f"/agents/{agent.id}/edit", agent_form())
    assert response.status_code == 409
    assert "already exists" in response.content.decode()


# --- activate, delete ----------------------------------------------------------------------------
def test_activate_makes_one_version_active(manager_client):
    first = AgentFactory(name="Writer", version="1", active=True)
    second = AgentFactory(name="Writer", version="2")
    response = manager_client.post(f"/agents/{second.id}/activate", {"next": "/agents?q=Wri"})
    assert response.status_code == 302
    assert response["Location"] == "/agents?q=Wri"
    assert list(Agent.objects.filter(active=True)) == [second]
    first.refresh_from_db()
    assert not first.active


def test_activate_refuses_to_redirect_off_site(manager_client):
    agent = AgentFactory(name="Writer", version="1")
    response = manager_client.post(f"/agents/{agent.id}/activate", {"next": "https://evil.test/"})
    assert response["Location"] == f"/agents/{agent.id}"


def test_an_unused_version_is_deleted(manager_client):
    agent = AgentFactory(name="Writer", version="1")
    response = manager_client.post(f"/agents/{agent.id}/delete")
    assert response.status_code == 302
    assert not Agent.objects.exists()


def test_used_versions_are_not_deleted_and_the_page_says_why(manager_client):
    active = AgentFactory(name="Writer", version="2", active=True)
    used = AgentFactory(name="Writer", version="1")
    GoalFactory(agent=used)
    GoalFactory(agent=used)

    response = manager_client.post(f"/agents/{active.id}/delete")
    assert response.status_code == 409
    assert "is the active version of Writer" in response.content.decode()

    response = manager_client.post(f"/agents/{used.id}/delete")
    page = response.content.decode()
    assert response.status_code == 409
    assert "2 goals run with version 1" in page
    assert Agent.objects.count() == 2

    listing = manager_client.get("/agents").content.decode()
    assert listing.count("Why no delete?") == 2
    assert f'action="/agents/{used.id}/delete"' not in listing


# --- prompt helper -------------------------------------------------------------------------------
def test_prompt_helper_splits_known_unknown_and_unused_placeholders():
    helper = prompt_helper("Hi {{objective}} {{ tools }} {{objectiv}} {{objective}} {{x.y}}")
    assert [item.name for item in helper["used"]] == ["objective", "tools"]
    assert helper["unknown"] == ["objectiv", "x.y"]
    unused = {item.name for item in helper["unused"]}
    assert unused == {item.name for item in PROMPT_PLACEHOLDERS} - {"objective", "tools"}
    preview = helper["preview"]
    assert "{{objective}}" not in preview and "{{ tools }}" not in preview
    assert '"name":"webSearch"' in preview  # the real tool catalogue as JSON
    assert "{{objectiv}}" in preview and "{{x.y}}" in preview  # unknown ones stay as typed


def test_preview_partial_renders_the_typed_template(reader_client):
    response = reader_client.post(
        "/agents/prompt-preview", {"prompt_template": "Steps: {{stepsRemaining}} {{bogus}}"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page
    preview = re.search(r'data-testid="prompt-preview"[^>]*>(.*?)</pre>', page, re.S).group(1)
    assert preview == "Steps: 12 {{bogus}}"
    assert "⚠ bogus" in page


def test_every_placeholder_is_known_to_the_helper_as_a_valid_name():
    for item in PROMPT_PLACEHOLDERS:
        assert PLACEHOLDER.fullmatch("{{" + item.name + "}}")


# --- test call -----------------------------------------------------------------------------------
def test_the_test_button_shows_reply_tokens_and_cost(reader_client, fake_llm):
    agent = AgentFactory(name="Writer", prompt_template="You are {{objective}} bot.")
    fake_llm.enqueue(
        ChatReply(
            content="**Hello** " + HOSTILE, prompt_tokens=12, completion_tokens=8, cost=0.0005
        )
    )
    response = reader_client.post(f"/agents/{agent.id}/test", {"prompt": "Say hi"})
    page = response.content.decode()
    assert response.status_code == 200
    result = re.search(r'data-testid="test-result"(.*?)</section>', page, re.S).group(1)
    assert "<strong>Hello</strong>" in result
    # The hostile markup stays text: escaped, never an element.
    assert "<script" not in result and "<img" not in result
    assert "&lt;script&gt;alert(" in result
    assert "12 prompt + 8 completion = 20 tokens" in result
    assert "$0.0005" in result
    sent = fake_llm.requests[0]["messages"]
    assert sent[0] == {"role": "system", "content": "You are {{objective}} bot."}
    assert sent[-1]["content"] == "Say hi"


def test_the_test_button_explains_an_llm_that_is_down(reader_client, fake_llm, settings):
    settings.LLM_MAX_RETRIES = 0
    agent = AgentFactory(name="Writer")
    fake_llm.enqueue(ChatReply(status=503, error_message="upstream overloaded"))
    response = reader_client.post(f"/agents/{agent.id}/test", {"prompt": "Say hi"})
    assert response.status_code == 200
    error = re.search(r'data-testid="test-error">(.*?)</div>', response.content.decode(), re.S)
    assert error and error.group(1).startswith("The LLM call failed")
    assert "Say hi</textarea>" in response.content.decode()


def test_the_test_button_explains_a_missing_api_key(reader_client, fake_llm, settings):
    settings.OPENAI_API_KEY = ""
    agent = AgentFactory(name="Writer", provider="openai")
    response = reader_client.post(f"/agents/{agent.id}/test", {"prompt": "Say hi"})
    assert response.status_code == 200
    assert "The LLM is not set up" in response.content.decode()
    assert fake_llm.call_count == 0


def test_list_shows_the_active_and_newest_versions_and_links_to_the_rest(manager_client):
    for number in range(1, 8):
        AgentFactory(name="Writer", version=f"{number}", active=number == 2)
    page = manager_client.get("/agents").content.decode()
    shown = re.findall(r'href="/agents/agent_[^"/]+">([^<]+)</a></td>', page)
    assert shown == ["2", "7", "6", "5", "4"]
    assert "2 more versions of Writer" in page
    assert "prompt_template" not in page
