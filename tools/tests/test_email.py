"""sendEmail through Django's SMTP backend to a real SMTP server on loopback."""

from __future__ import annotations

import base64
import email
from email import policy
from email.message import EmailMessage

import pytest

from config.embedded_redis import free_port
from tools.base import ToolError
from tools.services import tool_run


def parsed(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


def test_email_reaches_every_recipient(tool_settings, smtp_server):
    result = tool_run(
        name="sendEmail",
        params={
            "to": "alice@example.com",
            "subject": "Weekly\nreport",
            "body": "All good.",
            "cc": ["bob@example.com", "carol@example.com"],
            "bcc": "dave@example.com",
        },
        timeout=30,
    )

    assert result["success"] is True
    assert result["to"] == "alice@example.com"
    assert result["subject"] == "Weekly report"
    assert result["attachmentCount"] == 0
    (mail,) = smtp_server.messages
    assert sorted(mail.rcpt_tos) == [
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
        "dave@example.com",
    ]
    assert mail.mail_from == "agent@example.com"
    message = parsed(mail.data)
    assert message["To"] == "alice@example.com"
    assert message["Cc"] == "bob@example.com, carol@example.com"
    assert message["Bcc"] is None  # blind copies stay blind
    assert message["Subject"] == "Weekly report"
    assert message["Message-ID"] == result["messageId"]
    assert message.get_content().strip() == "All good."


def test_html_email_has_a_plain_text_part(tool_settings, smtp_server):
    tool_run(
        name="sendEmail",
        params={
            "to": "alice@example.com",
            "subject": "Hi",
            "body": "<h1>Title</h1><p>Hello &amp; welcome</p>",
            "html": True,
        },
        timeout=30,
    )

    message = parsed(smtp_server.messages[0].data)
    assert message.get_body(("html",)).get_content().strip() == (
        "<h1>Title</h1><p>Hello &amp; welcome</p>"
    )
    plain = message.get_body(("plain",)).get_content()
    assert plain.splitlines() == ["Title", "Hello & welcome"]


def test_attachments_from_artifacts_and_inline(tool_settings, smtp_server):
    (tool_settings.ARTIFACTS_DIR / "reports").mkdir()
    (tool_settings.ARTIFACTS_DIR / "reports" / "q3.csv").write_text("a,b\n1,2\n")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(40))

    result = tool_run(
        name="sendEmail",
        params={
            "to": "alice@example.com",
            "subject": "Files",
            "body": "See attached.",
            "attachments": [
                {"filename": "q3.csv", "path": "reports/q3.csv"},
                {
                    "filename": "dot.png",
                    "content": base64.b64encode(png).decode(),
                    "encoding": "base64",
                    "contentType": "image/png",
                },
                {"filename": "../../notes.txt", "content": "plain note"},
            ],
        },
        timeout=30,
    )

    assert result["attachmentCount"] == 3
    message = parsed(smtp_server.messages[0].data)
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(attachments) == {"q3.csv", "dot.png", "notes.txt"}
    assert attachments["q3.csv"].get_content().splitlines() == ["a,b", "1,2"]
    assert attachments["dot.png"].get_content_type() == "image/png"
    assert attachments["dot.png"].get_content() == png
    assert attachments["notes.txt"].get_content() == "plain note"


@pytest.fixture
def secret_outside(tmp_path, tool_settings):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    (tool_settings.ARTIFACTS_DIR / "link.txt").symlink_to(secret)
    return secret


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../secret.txt", "'..' is not allowed"),
        ("{secret}", "Absolute paths are not allowed"),
        ("/etc/passwd", "Absolute paths are not allowed"),
        ("link.txt", "outside the artifacts folder"),
        ("file:///etc/passwd", "not found"),
        ("https://example.com/x.pdf", "not found"),
        ("missing.txt", "not found"),
        ("a\x00b", "NUL byte"),
    ],
)
def test_attachments_outside_the_artifacts_folder_are_refused(
    smtp_server, secret_outside, path, message
):
    with pytest.raises(ToolError, match=message) as caught:
        tool_run(
            name="sendEmail",
            params={
                "to": "alice@example.com",
                "subject": "x",
                "body": "x",
                "attachments": [{"filename": "f.txt", "path": path.format(secret=secret_outside)}],
            },
            timeout=30,
        )

    assert "TOP SECRET" not in caught.value.message
    assert smtp_server.messages == []


def test_bad_base64_is_refused(tool_settings, smtp_server):
    with pytest.raises(ToolError, match="not valid base64"):
        tool_run(
            name="sendEmail",
            params={
                "to": "alice@example.com",
                "subject": "x",
                "body": "x",
                "attachments": [{"filename": "a.bin", "content": "%%%", "encoding": "base64"}],
            },
            timeout=30,
        )
    assert smtp_server.messages == []


def test_missing_mail_configuration_is_a_clear_error(tool_settings):
    tool_settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    tool_settings.EMAIL_HOST = ""
    tool_settings.DEFAULT_FROM_EMAIL = "agent@example.com"

    with pytest.raises(ToolError, match="set EMAIL_HOST"):
        tool_run(
            name="sendEmail",
            params={"to": "a@example.com", "subject": "s", "body": "b"},
            timeout=10,
        )


def test_unreachable_mail_server_fails_after_retries(tool_settings, smtp_server):
    tool_settings.EMAIL_PORT = free_port()

    with pytest.raises(ToolError, match="Could not connect to the mail server after 3 attempts"):
        tool_run(
            name="sendEmail",
            params={"to": "a@example.com", "subject": "s", "body": "b"},
            timeout=30,
        )


def test_any_django_backend_works(tool_settings, mailoutbox_backend):
    result = tool_run(
        name="sendEmail",
        params={"to": "a@example.com", "subject": "s", "body": "b", "bcc": ["z@example.com"]},
        timeout=10,
    )

    (message,) = mailoutbox_backend
    assert message.bcc == ["z@example.com"]
    assert message.extra_headers["Message-ID"] == result["messageId"]


@pytest.fixture
def mailoutbox_backend(settings):
    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.EMAIL_HOST = ""
    settings.DEFAULT_FROM_EMAIL = "agent@example.com"
    mail.outbox = []
    return mail.outbox


@pytest.mark.django_db(transaction=True)
def test_a_dag_task_sends_its_email_once_however_often_it_runs(tool_settings, smtp_server):
    from tools.base import ToolContext
    from tools.models import ToolEffect

    params = {"to": "alice@example.com", "subject": "Report", "body": "Done."}
    task = ToolContext(execution_id="dag-exec_aaaaaaaaaaaaaaaa", sub_step_id="002")

    first = tool_run(name="sendEmail", params=params, context=task, timeout=30)
    again = tool_run(name="sendEmail", params=params, context=task, timeout=30)

    assert len(smtp_server.messages) == 1
    assert again == first
    other = ToolContext(execution_id="dag-exec_aaaaaaaaaaaaaaaa", sub_step_id="003")
    tool_run(name="sendEmail", params=params, context=other, timeout=30)
    assert len(smtp_server.messages) == 2
    assert ToolEffect.objects.filter(status="done").count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_email_interrupted_mid_send_is_not_sent_again_by_a_retry(tool_settings, smtp_server):
    from tools.base import ToolContext
    from tools.models import ToolEffect

    params = {"to": "alice@example.com", "subject": "Report", "body": "Done."}
    task = ToolContext(execution_id="dag-exec_bbbbbbbbbbbbbbbb", sub_step_id="001")
    # What a worker killed while talking to the mail server leaves behind.
    ToolEffect.objects.create(key="dag-exec_bbbbbbbbbbbbbbbb:001", tool="sendEmail")

    with pytest.raises(ToolError, match="may have happened"):
        tool_run(name="sendEmail", params=params, context=task, timeout=30)
    assert smtp_server.messages == []

    # A resume (the user's decision) sends it.
    tool_run(name="sendEmail", params=params, context=task, timeout=30)
    assert len(smtp_server.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_a_failed_send_leaves_the_task_free_to_try_again(tool_settings, smtp_server, settings):
    from tools.base import ToolContext
    from tools.models import ToolEffect

    settings.EMAIL_PORT = free_port()  # nothing listens: the send fails, nothing was sent
    params = {"to": "alice@example.com", "subject": "Report", "body": "Done."}
    task = ToolContext(execution_id="dag-exec_cccccccccccccccc", sub_step_id="001")
    with pytest.raises(ToolError):
        tool_run(name="sendEmail", params=params, context=task, timeout=30)
    assert not ToolEffect.objects.exists()
