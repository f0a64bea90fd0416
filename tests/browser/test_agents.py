"""Journeys through the agent, tools and task pages in Chromium against a real web process and
the scripted LLM: create → edit → preview → activate → test; a task with a text file and an
image, continued and downloaded; a read-only user; axe-core in both themes; screenshots."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from agents.models import Agent
from tests.browser.helpers import assert_accessible, screenshot
from tests.factories import AgentFactory, GoalFactory
from tests.fakes.openai_server import ChatReply

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = (
    "<script>alert('t')</script><img src=x onerror=\"alert('i')\">[click](javascript:alert('j'))"
)
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def manager_page(logged_in_page, ui_user):
    # The permissions the "Agent managers" group holds (its row does not survive the table
    # flush between these tests; the permissions are re-created by it).
    ui_user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="agents",
            codename__in=["add_agent", "change_agent", "delete_agent"],
        )
    )
    return logged_in_page


def check_page(page, name: str) -> None:
    """axe-core in the light and the dark theme, a screenshot of each."""
    html = page.locator("html")
    if html.get_attribute("data-theme") == "dark":
        page.get_by_role("button", name="Light theme").click()
    assert_accessible(page, f"{name} (light)")
    screenshot(page, name)
    page.get_by_role("button", name="Dark theme").click()
    expect(html).to_have_attribute("data-theme", "dark")
    assert_accessible(page, f"{name} (dark)")
    screenshot(page, f"{name}-dark")
    page.get_by_role("button", name="Light theme").click()
    expect(html).to_have_attribute("data-theme", "light")


def test_create_edit_preview_activate_and_test_an_agent(manager_page, fake_llm, browser_events):
    page = manager_page
    AgentFactory(name="Reviewer", version="1.0.0", active=True)
    page.goto("/agents")
    check_page(page, "agents-list")

    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Name", exact=True).fill("Reviewer")
    page.get_by_label("Version", exact=True).fill("2.0.0")
    page.get_by_label("Provider").select_option("openai")
    page.get_by_label("Metadata (JSON)").fill('{"team": ')
    page.get_by_role("button", name="Create").click()
    # Bad JSON: the message beside the field, everything typed still there.
    expect(page.locator("#id_metadata_error")).to_contain_text("Not valid JSON")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Reviewer")
    check_page(page, "agent-new-errors")
    page.get_by_label("Metadata (JSON)").fill('{"team": "docs"}')
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".toast")).to_contain_text("Agent Reviewer version 2.0.0 created.")
    agent = Agent.objects.get(name="Reviewer", version="2.0.0")
    expect(page).to_have_url(re.compile(f"/agents/{agent.id}$"))
    check_page(page, "agent-detail")

    page.get_by_role("link", name="Edit", exact=True).click()
    prompt = page.get_by_label("Prompt template")
    prompt.fill("Review for {{objective}} on {{currentDate}}. {{colour}}")
    # The helper follows the typing (htmx), then the Preview button renders it server-side.
    helper = page.get_by_test_id("prompt-helper")
    expect(helper.get_by_test_id("placeholders-unknown")).to_contain_text("colour")
    page.get_by_role("button", name="Preview").click()
    expect(helper.get_by_test_id("placeholders-used")).to_contain_text("objective")
    expect(helper.get_by_test_id("placeholders-used")).to_contain_text("currentDate")
    preview = helper.get_by_test_id("prompt-preview")
    expect(preview).to_contain_text("Review for Find three recent articles")
    expect(preview).to_contain_text("{{colour}}")
    check_page(page, "agent-edit-preview")
    agent.refresh_from_db()
    assert "{{colour}}" not in agent.prompt_template  # previewing saves nothing
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".toast")).to_contain_text("saved")

    page.get_by_role("button", name="Activate").click()
    expect(page.locator(".toast")).to_contain_text("Version 2.0.0 is now the active version")
    assert list(Agent.objects.filter(active=True).values_list("version", flat=True)) == ["2.0.0"]

    fake_llm.enqueue(
        ChatReply(
            content="**Ready** to review. " + HOSTILE,
            prompt_tokens=21,
            completion_tokens=9,
            cost=0.00042,
        )
    )
    page.get_by_label("Sample prompt").fill("Who are you?")
    page.get_by_role("button", name="Send test prompt").click()
    result = page.get_by_test_id("test-result")
    expect(result.locator("strong")).to_have_text("Ready")
    expect(result.get_by_test_id("test-usage")).to_contain_text("21 prompt + 9 completion = 30")
    expect(result.get_by_test_id("test-usage")).to_contain_text("$0.00042")
    expect(result).to_contain_text("<script>alert('t')</script>")  # shown as text
    assert result.locator("script, img, a[href^='javascript']").count() == 0
    system = fake_llm.requests[-1]["messages"][0]["content"]
    assert system.startswith("Review for {{objective}} on ")  # no goal: left as typed
    check_page(page, "agent-test-result")
    browser_events.assert_quiet(allow_http_errors=True)


def test_a_used_version_explains_why_it_cannot_be_deleted(manager_page):
    page = manager_page
    AgentFactory(name="Planner", version="2", active=True)
    used = AgentFactory(name="Planner", version="1")
    GoalFactory(agent=used)
    spare = AgentFactory(name="Planner", version="0")
    page.goto("/agents")
    page.get_by_role("button", name="Delete Planner version 0").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    expect(page.locator(".toast")).to_contain_text("Agent Planner version 0 deleted.")
    assert not Agent.objects.filter(pk=spare.pk).exists()
    page.get_by_role("link", name="Why Planner version 1 cannot be deleted").click()
    expect(page.get_by_test_id("delete-refusal")).to_contain_text("cannot be deleted")
    expect(page.locator("main")).to_contain_text("1 goal runs with it")
    check_page(page, "agent-delete-refused")


def test_a_reader_sees_no_change_buttons(logged_in_page):
    page = logged_in_page
    agent = AgentFactory(name="Reviewer", version="1.0.0")
    page.goto("/agents")
    expect(page.get_by_role("link", name="Open Reviewer version 1.0.0")).to_be_visible()
    for name in ("New agent", "Edit", "Activate", "Delete"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
        expect(page.get_by_role("link", name=name)).to_have_count(0)
    page.goto(f"/agents/{agent.id}")
    expect(page.locator(".notice")).to_contain_text("Read-only")
    page.goto(f"/agents/{agent.id}/edit")
    expect(page.locator("main")).to_contain_text("Changing agents needs permission")


def test_tools_catalogue(logged_in_page):
    page = logged_in_page
    AgentFactory(name="DecomposerV8", active=True, prompt_template="{{tools}}")
    page.goto("/tools")
    expect(page.locator("section[data-tool]")).to_have_count(7)
    card = page.locator('section[data-tool="sendEmail"]')
    expect(card).to_contain_text("Side effects")
    expect(card.get_by_test_id("tool-users")).to_contain_text("DecomposerV8")
    check_page(page, "tools")


def test_task_with_a_text_file_and_an_image_continued_and_downloaded(
    logged_in_page, fake_llm, browser_events
):
    page = logged_in_page
    AgentFactory(name="InferenceAgent", version="1", active=True, prompt_template="You help.")
    AgentFactory(name="SketchMentor", version="4", active=True, prompt_template="You teach.")
    fake_llm.enqueue(
        ChatReply(
            content="## Feedback\n\n- The **notes** say *alpha*.\n\n" + HOSTILE,
            prompt_tokens=40,
            completion_tokens=12,
            cost=0.0031,
        ),
        ChatReply(content="Follow-up answer.", prompt_tokens=60, completion_tokens=4),
    )
    page.goto("/task")
    check_page(page, "task-empty")
    page.get_by_label("Agent", exact=True).select_option("SketchMentor")
    page.get_by_label("Prompt", exact=True).fill("What do you think?")
    page.get_by_label("Files").set_input_files(
        [
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"alpha beta"},
            {"name": "sketch.png", "mimeType": "image/png", "buffer": PNG},
        ]
    )
    page.get_by_role("button", name="Send", exact=True).click()

    answer = page.get_by_test_id("answer")
    expect(answer).to_have_count(1)
    expect(answer.locator("h2")).to_have_text("Feedback")
    expect(answer.get_by_test_id("answer-usage")).to_contain_text("40 + 12 = 52 tokens")
    expect(answer.get_by_test_id("answer-usage")).to_contain_text("$0.0031")
    expect(answer).to_contain_text("<script>alert('t')</script>")
    assert answer.locator("script, img, a[href^='javascript']").count() == 0
    expect(page.get_by_test_id("turn")).to_contain_text("sketch.png")
    sent = fake_llm.requests[0]["messages"][1]["content"]
    assert sent[0]["text"].endswith("--- File: notes.txt ---\nalpha beta")
    assert sent[1]["image_url"]["url"].startswith("data:image/png;base64,")
    expect(page.get_by_label("Agent", exact=True)).to_have_value("SketchMentor")
    check_page(page, "task-answer")

    page.get_by_label("Prompt", exact=True).fill("And the colours?")
    page.get_by_role("button", name="Send follow-up").click()
    expect(page.get_by_test_id("answer")).to_have_count(2)
    follow_up = fake_llm.requests[1]["messages"]
    assert [m["role"] for m in follow_up] == ["system", "user", "assistant", "user"]
    assert follow_up[2]["content"].startswith("## Feedback")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download answer (.md)").first.click()
    download = info.value
    assert download.suggested_filename == "answer-SketchMentor-1.md"
    with open(download.path(), encoding="utf-8") as handle:
        assert handle.read().startswith("## Feedback\n\n- The **notes** say *alpha*.")
    check_page(page, "task-conversation")
    browser_events.assert_quiet()


def test_task_upload_over_the_limit_is_refused_in_the_page(logged_in_page, fake_llm):
    page = logged_in_page
    AgentFactory(name="InferenceAgent", version="1", active=True)
    page.goto("/task")
    page.get_by_label("Prompt", exact=True).fill("Read this")
    # The form carries the server's limits; a file over them is refused before sending.
    page.locator("form.task-form").evaluate("form => form.dataset.maxFile = '8'")
    page.get_by_label("Files").set_input_files(
        [{"name": "big.txt", "mimeType": "text/plain", "buffer": b"x" * 64}]
    )
    expect(page.locator("[data-upload-error]")).to_contain_text("over the limit")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("Read this")
    assert fake_llm.call_count == 0
    screenshot(page, "task-upload-refused")
