"""sendEmail: mail through Django's e-mail framework (any backend; SMTP settings from env).

Attachments come from the artifacts folder (sandboxed like the file tools) or inline content;
never from any other file or URL.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import functools
import html as html_lib
import json
import logging
import mimetypes
import os
import re
import smtplib
import socket
import stat
from collections.abc import Mapping
from email.utils import make_msgid
from pathlib import PurePosixPath
from typing import Any, cast

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.html import strip_tags

from tools.base import CancelScope, ToolContext, ToolError
from tools.effects import once, task_effect_key
from tools.files import sandboxed_path
from tools.sandbox import relative_name
from tools.schemas import EmailAttachment, SendEmailParams

logger = logging.getLogger(__name__)

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
CONNECT_ATTEMPTS = 3
_MIME_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")
# Failures to reach the server at all: worth another try, nothing was sent yet.
_TRANSIENT = (
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    smtplib.SMTPConnectError,
    smtplib.SMTPServerDisconnected,
)


def email_configuration_problem() -> str | None:
    """Why e-mail cannot be sent with the current settings, or None when it can."""
    if not settings.DEFAULT_FROM_EMAIL:
        return "E-mail is not configured: set DEFAULT_FROM_EMAIL (or SMTP_FROM)."
    if settings.EMAIL_BACKEND == SMTP_BACKEND and not settings.EMAIL_HOST:
        return "E-mail is not configured: set EMAIL_HOST (or SMTP_HOST) to an SMTP server."
    return None


def send_email(params: SendEmailParams, context: ToolContext) -> dict[str, Any]:
    """The sendEmail tool: in a DAG task, sent at most once however often the task runs."""
    return once(
        key=task_effect_key(context),
        tool="sendEmail",
        what="was sending this e-mail",
        effect=lambda: _send_email(params, context),
    )


def _send_email(params: SendEmailParams, context: ToolContext) -> dict[str, Any]:
    problem = email_configuration_problem()
    if problem:
        raise ToolError(problem)
    subject = " ".join(params.subject.split())
    cc = list(params.cc or [])
    bcc = list(params.bcc or [])
    from_email = settings.DEFAULT_FROM_EMAIL
    domain = from_email.rsplit("@", 1)[-1].strip(" >") or "localhost"
    message_id = make_msgid(domain=domain)
    text_body = _html_to_text(params.body) if params.html else params.body
    message = EmailMultiAlternatives(
        subject=subject,
        body=text_body,
        from_email=from_email,
        to=[params.to],
        cc=cc,
        bcc=bcc,
        headers={"Message-ID": message_id},
    )
    if params.html:
        message.attach_alternative(params.body, "text/html")
    attachments = params.attachments or []
    budget = settings.EMAIL_MAX_ATTACHMENT_BYTES
    for attachment in attachments:
        filename, data, mimetype = _attachment(attachment, context)
        budget -= len(data)
        if budget < 0:
            raise ToolError(
                f"The attachments exceed {settings.EMAIL_MAX_ATTACHMENT_BYTES} bytes in total."
            )
        message.attach(filename, data, mimetype)

    context.cancel.check()
    context.report(f"Sending e-mail '{subject}'")
    _deliver(message, context.cancel)
    recipients = 1 + len(cc) + len(bcc)
    logger.info(
        "e-mail sent to %s recipient(s) with %s attachment(s)", recipients, len(attachments)
    )
    context.report(f"E-mail sent to {recipients} recipient(s)", completed=True)
    return {
        "success": True,
        "messageId": message_id,
        "to": params.to,
        "cc": cc,
        "bcc": bcc,
        "subject": subject,
        "attachmentCount": len(attachments),
    }


def _deliver(message: EmailMultiAlternatives, cancel: CancelScope) -> None:
    backoff = float(settings.TOOLS_RETRY_BACKOFF_SECONDS) * 2
    connection: BaseEmailBackend | None = None
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        cancel.check()
        connection = get_connection(
            fail_silently=False, timeout=cancel.remaining(settings.EMAIL_TIMEOUT)
        )
        try:
            with cancel.on_cancel(functools.partial(_abort, connection)):
                connection.open()
            break
        except _TRANSIENT as error:
            cancel.check()
            _close(connection)
            if attempt == CONNECT_ATTEMPTS:
                raise ToolError(
                    f"Could not connect to the mail server after {attempt} attempts: "
                    f"{_describe(error)}"
                ) from None
            logger.info("mail server connection attempt %s failed: %s", attempt, error)
            cancel.sleep(backoff * attempt)
        except (smtplib.SMTPException, OSError) as error:
            cancel.check()
            _close(connection)
            raise ToolError(f"The mail server refused the connection: {_describe(error)}") from None
    assert connection is not None
    try:
        with cancel.on_cancel(functools.partial(_abort, connection)):
            sent = connection.send_messages([message])
    except (smtplib.SMTPException, OSError, ValueError) as error:
        cancel.check()
        raise ToolError(f"Sending the e-mail failed: {_describe(error)}") from None
    finally:
        _close(connection)
    if not sent:
        raise ToolError("The mail backend did not send the e-mail.")


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "recipients refused: " + ", ".join(sorted(error.recipients))
    if isinstance(error, smtplib.SMTPResponseException):
        detail = error.smtp_error
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", errors="replace")
        return f"{error.smtp_code} {detail}"
    return str(error) or type(error).__name__


def _abort(backend: BaseEmailBackend) -> None:
    smtp = getattr(backend, "connection", None)
    sock = getattr(smtp, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _close(backend: BaseEmailBackend) -> None:
    try:
        backend.close()
    except Exception:
        logger.debug("closing the mail connection failed", exc_info=True)


def _html_to_text(markup: str) -> str:
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</h[1-6]>|</tr>", "\n", markup)
    text = html_lib.unescape(strip_tags(text))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _attachment(attachment: EmailAttachment, context: ToolContext) -> tuple[str, bytes, str]:
    filename = PurePosixPath(attachment.filename.replace("\\", "/")).name
    filename = re.sub(r"[\r\n\t\x00]", " ", filename).strip() or "attachment"
    if attachment.path is not None:
        data = _read_artifact(attachment.path, context)
    elif attachment.encoding == "base64":
        try:
            # The schema gives an attachment exactly one of path and content.
            content = cast(str, attachment.content)
            data = base64.b64decode("".join(content.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ToolError(f"Attachment '{filename}': content is not valid base64.") from None
    else:
        data = cast(str, attachment.content).encode("utf-8")
    mimetype = (attachment.contentType or "").strip().lower()
    if not mimetype:
        mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if not _MIME_TYPE.match(mimetype):
        raise ToolError(f"Attachment '{filename}': '{mimetype}' is not a MIME type.")
    return filename, data, mimetype


def _read_artifact(path: str, context: ToolContext) -> bytes:
    target = sandboxed_path(path)
    if target.exists() and not context.artifact_allowed(relative_name(target)):
        raise ToolError(f"Attachment not found in the artifacts folder: {path}")
    limit = settings.EMAIL_MAX_ATTACHMENT_BYTES
    try:
        descriptor = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise ToolError(f"Attachment not found in the artifacts folder: {path}") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ToolError("Refused attachment path: it is a symbolic link.") from None
        raise ToolError(f"Could not read attachment '{path}': {error.strerror}") from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or status.st_size > limit:
        os.close(descriptor)
        if status.st_size > limit:
            raise ToolError(f"Attachment '{path}' is larger than {limit} bytes.")
        raise ToolError(f"Attachment '{path}' is not a file.")
    with os.fdopen(descriptor, "rb") as handle:
        return handle.read(limit + 1)


def sent_email_output(result: dict[str, Any], arguments: Mapping[str, Any]) -> tuple[str, str]:
    """A run's record of an e-mail it sent (addresses, subject, id; not the body)."""
    keys = ("to", "cc", "bcc", "subject", "messageId", "attachmentCount")
    return "email", json.dumps({key: result.get(key) for key in keys}, default=str)
