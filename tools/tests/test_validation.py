"""One definition per tool validates the parameters: clear issues, nothing runs."""

from __future__ import annotations

import pytest

from tools.base import ToolInputError, ToolNotFound
from tools.services import tool_input_issues, tool_run


def paths(issues: list[dict]) -> list[list]:
    return [issue["path"] for issue in issues]


@pytest.mark.parametrize(
    ("name", "params", "expected_paths"),
    [
        ("webSearch", {}, [["query"]]),
        ("webSearch", {"query": "x", "limit": 0}, [["limit"]]),
        ("webSearch", {"query": "x", "limit": 21}, [["limit"]]),
        ("webSearch", {"query": "   "}, [["query"]]),
        ("fetchPage", {"url": "not a url"}, [["url"]]),
        ("fetchPage", {"url": "file:///etc/passwd"}, [["url"]]),
        ("fetchPage", {"url": "https://example.com", "maxLength": 99}, [["maxLength"]]),
        ("fetchPage", {"url": "https://example.com", "maxLength": 50001}, [["maxLength"]]),
        ("fetchPage", {"url": "https://example.com", "extra": 1}, [["extra"]]),
        ("fetchURLs", {"urls": "https://example.com"}, [["urls"]]),
        ("fetchURLs", {"urls": [1]}, [["urls", 0]]),
        ("writeFile", {"path": "a.txt"}, [["content"]]),
        ("writeFile", {"path": "a.txt", "content": "x", "mode": "prepend"}, [["mode"]]),
        ("readFile", {"path": "a.txt", "maxLength": 100001}, [["maxLength"]]),
        ("sendWebhook", {"url": "https://example.com"}, [["payload"]]),
        ("sendWebhook", {"url": "https://example.com", "payload": [1]}, [["payload"]]),
        (
            "sendWebhook",
            {"url": "https://example.com", "payload": {}, "headers": {"X-Count": 1}},
            [["headers", "X-Count"]],
        ),
        ("sendEmail", {"to": "nobody", "subject": "s", "body": "b"}, [["to"]]),
        ("sendEmail", {"to": "a@example.com", "subject": "s", "body": "b", "cc": ["x"]}, [["cc"]]),
        (
            "sendEmail",
            {
                "to": "a@example.com",
                "subject": "s",
                "body": "b",
                "attachments": [{"filename": "a.txt", "path": "a.txt", "content": "x"}],
            },
            [["attachments", 0]],
        ),
        (
            "sendEmail",
            {
                "to": "a@example.com",
                "subject": "s",
                "body": "b",
                "attachments": [{"filename": "a"}],
            },
            [["attachments", 0]],
        ),
        (
            "sendEmail",
            {
                "to": "a@example.com",
                "subject": "s",
                "body": "b",
                "attachments": [{"filename": "a", "content": "x", "encoding": "hex"}],
            },
            [["attachments", 0, "encoding"]],
        ),
    ],
)
def test_invalid_parameters_are_listed(name, params, expected_paths):
    issues = tool_input_issues(name=name, params=params)

    assert paths(issues) == expected_paths
    assert all(issue["message"] for issue in issues)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("webSearch", {"query": "django celery"}),
        ("fetchPage", {"url": "https://example.com/a?b=c"}),
        ("fetchURLs", {"urls": ["https://example.com", {"link": "https://example.org"}]}),
        ("writeFile", {"path": "out/report.md", "content": "", "mode": "append"}),
        ("readFile", {"path": "report.md"}),
        ("sendWebhook", {"url": "https://example.com/hook", "payload": {"a": [1, 2]}}),
        (
            "sendEmail",
            {
                "to": "a@example.com",
                "subject": "Hi",
                "body": "<b>x</b>",
                "cc": "b@example.com",
                "bcc": ["c@example.com", "d@example.com"],
                "html": True,
                "attachments": [{"filename": "r.md", "path": "r.md"}],
            },
        ),
        # Models often send null for parameters they leave out.
        ("sendEmail", {"to": "a@example.com", "subject": "s", "body": "b", "cc": None}),
    ],
)
def test_valid_parameters_have_no_issues(name, params):
    assert tool_input_issues(name=name, params=params) == []


def test_tool_run_refuses_bad_input_with_every_issue_in_the_message(tool_settings):
    with pytest.raises(ToolInputError) as caught:
        tool_run(name="writeFile", params={"path": "a.txt", "mode": "sideways", "x": 1})

    error = caught.value
    assert paths(error.issues) == [["content"], ["mode"], ["x"]]
    assert "writeFile" in error.message
    assert "content: Required" in error.message
    assert "mode:" in error.message
    assert "x: Unknown parameter" in error.message
    assert list(tool_settings.ARTIFACTS_DIR.iterdir()) == []


def test_parameters_must_be_an_object():
    assert tool_input_issues(name="readFile", params=["a.txt"]) == [
        {"path": [], "message": "Parameters must be a JSON object"}
    ]


def test_unknown_tool():
    with pytest.raises(ToolNotFound, match="Tool not found: explainCode"):
        tool_input_issues(name="explainCode", params={})
    with pytest.raises(ToolNotFound):
        tool_run(name="explainCode", params={})
