"""The task page through Django's test client: a prompt with files, the answer as sanitized
Markdown with usage and cost, the conversation, the download, limits and failures."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import AgentFactory, UserFactory
from tests.fakes.openai_server import ChatReply

pytestmark = pytest.mark.django_db

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def user_client(client):
    client.force_login(UserFactory(username="someone"))
    return client


@pytest.fixture
def helper(db):
    return AgentFactory(name="Helper", version="3", active=True, prompt_template="You help.")


def send(client, prompt: str = "Summarise the notes", files=(), agent: str = "Helper"):
    data = {"agent": agent, "prompt": prompt}
    if files:
        data["files"] = list(files)
    return client.post("/task", data)


def answers(page: str) -> list[str]:
    return re.findall(r'data-testid="answer">(.*?)</article>', page, re.S)


def test_a_prompt_with_a_text_file_and_an_image_is_answered_in_markdown(
    user_client, helper, fake_llm
):
    fake_llm.enqueue(
        ChatReply(
            content="## Notes\n\n- *first*", prompt_tokens=30, completion_tokens=7, cost=0.002
        )
    )
    notes = SimpleUploadedFile("notes.txt", b"alpha beta", content_type="text/plain")
    image = SimpleUploadedFile("sketch.png", PNG, content_type="image/png")
    response = send(user_client, files=[notes, image])
    assert response.status_code == 302
    assert response["Location"] == "/task#turn-1"

    sent = fake_llm.requests[0]["messages"]
    assert sent[0] == {"role": "system", "content": "You help."}
    parts = sent[1]["content"]
    assert parts[0]["text"] == "Summarise the notes\n\n--- File: notes.txt ---\nalpha beta"
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")

    page = user_client.get("/task").content.decode()
    [answer] = answers(page)
    assert "<h2>Notes</h2>" in answer and "<em>first</em>" in answer
    assert "30 + 7 = 37 tokens" in answer and "$0.0020" in answer
    assert "notes.txt" in page and "sketch.png" in page
    assert "Send follow-up" in page


def test_a_follow_up_continues_the_conversation(user_client, helper, fake_llm):
    fake_llm.enqueue(ChatReply(content="First answer"), ChatReply(content="Second answer"))
    notes = SimpleUploadedFile("notes.txt", b"alpha beta", content_type="text/plain")
    image = SimpleUploadedFile("sketch.png", PNG, content_type="image/png")
    send(user_client, "First question", files=[notes, image])
    send(user_client, "And then?")

    follow_up = fake_llm.requests[1]["messages"]
    assert [message["role"] for message in follow_up] == ["system", "user", "assistant", "user"]
    assert follow_up[1]["content"] == (
        "First question\n\n--- File: notes.txt ---\nalpha beta\n\n"
        "(Image sketch.png was attached to this message.)"
    )
    assert follow_up[2]["content"] == "First answer"
    assert follow_up[3]["content"] == "And then?"
    page = user_client.get("/task").content.decode()
    assert [
        re.search(r'<div class="markdown">(.*?)</div>', a, re.S).group(1) for a in answers(page)
    ] == [
        "<p>First answer</p>\n",
        "<p>Second answer</p>\n",
    ]

    user_client.post("/task/new")
    assert answers(user_client.get("/task").content.decode()) == []


def test_an_answer_and_the_conversation_download_as_markdown(user_client, helper, fake_llm):
    fake_llm.enqueue(ChatReply(content="# Title\n\nBody <b>x</b>"))
    send(user_client, "Write it")
    response = user_client.get("/task/download?turn=1")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="answer-Helper-1.md"'
    assert response.content.decode() == "# Title\n\nBody <b>x</b>\n"

    whole = user_client.get("/task/download?turn=all").content.decode()
    assert whole.startswith("## You\n\nWrite it\n")
    assert "## Helper (version 3)" in whole and "# Title" in whole
    assert user_client.get("/task/download?turn=9").status_code == 404


def test_the_conversation_is_kept_per_session(client, helper, fake_llm):
    fake_llm.enqueue(ChatReply(content="Private answer"))
    client.force_login(UserFactory(username="one"))
    send(client, "Mine")
    client.logout()
    client.force_login(UserFactory(username="two"))
    assert answers(client.get("/task").content.decode()) == []
    assert client.get("/task/download?turn=1").status_code == 404


def test_hostile_markup_in_an_answer_stays_text(user_client, helper, fake_llm):
    fake_llm.enqueue(
        ChatReply(content="<script>alert(1)</script>[x](javascript:alert(2)) <img src=x onerror=y>")
    )
    send(user_client, "Go")
    [answer] = answers(user_client.get("/task").content.decode())
    body = re.search(r'<div class="markdown">(.*?)</div>', answer, re.S).group(1)
    assert "<script" not in body and "<img" not in body and "<a " not in body
    assert "&lt;script&gt;" in body


@pytest.mark.parametrize(
    ("limits", "files", "message"),
    [
        ({"TASK_MAX_FILE_BYTES": 100}, [("big.txt", b"x" * 500)], "is larger than the limit"),
        ({"TASK_MAX_FILES": 1}, [("a.txt", b"a"), ("b.txt", b"b")], "Too many files"),
        (
            {"TASK_MAX_REQUEST_BYTES": 300},
            [("a.txt", b"a" * 200), ("b.txt", b"b" * 200)],
            "larger than the limit",
        ),
    ],
)
def test_upload_limits_give_a_clear_message_and_keep_the_prompt(
    user_client, helper, fake_llm, settings, limits, files, message
):
    for name, value in limits.items():
        setattr(settings, name, value)
    uploads = [SimpleUploadedFile(name, data, content_type="text/plain") for name, data in files]
    response = send(user_client, "My <careful> prompt", files=uploads)
    page = response.content.decode()
    assert response.status_code == 413
    error = re.search(r'data-testid="task-error">(.*?)</div>', page, re.S).group(1)
    assert message in error and "Nothing was sent" in error
    assert "My &lt;careful&gt; prompt</textarea>" in page
    assert '<option value="Helper" selected>' in page
    assert fake_llm.call_count == 0


def test_an_unsupported_file_is_explained(user_client, helper, fake_llm):
    blob = SimpleUploadedFile("tool.bin", b"\x00\x01\x02binary", content_type="application/x-foo")
    response = send(user_client, "Look", files=[blob])
    assert response.status_code == 400
    assert "Unsupported attachment &#x27;tool.bin&#x27;" in response.content.decode()
    assert fake_llm.call_count == 0


def test_missing_prompt_and_unknown_agent_are_field_errors(user_client, helper, fake_llm):
    response = send(user_client, "   ")
    assert response.status_code == 400
    assert "Write a prompt for the agent." in response.content.decode()
    response = send(user_client, "Hi", agent="Nobody")
    assert response.status_code == 400
    assert "There is no active agent named Nobody" in response.content.decode()
    assert fake_llm.call_count == 0


def test_an_llm_that_is_down_is_explained_and_the_prompt_kept(
    user_client, helper, fake_llm, settings
):
    settings.LLM_MAX_RETRIES = 0
    fake_llm.enqueue(ChatReply(status=503, error_message="upstream overloaded"))
    response = send(user_client, "Still here?")
    page = response.content.decode()
    assert response.status_code == 502
    assert "The LLM call failed" in page and "Your message is kept" in page
    assert "Still here?</textarea>" in page
    assert answers(page) == []


def test_no_active_agent_says_so(user_client, fake_llm):
    page = user_client.get("/task").content.decode()
    assert "No agent is active." in page
