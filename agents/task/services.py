"""`POST /api/v1/task`: one synchronous call of an agent with a prompt and attached files.

Text files reach the model as their text (UTF-8), PDFs as their extracted text, and images as
`image_url` parts where the provider accepts them. Nothing is stored.
"""

from __future__ import annotations

import base64
import io
import logging
import mimetypes
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from django.conf import settings

from agents.llm.client import ChatResult
from agents.llm.providers import accepts_images
from agents.models import Agent
from agents.runtime import agent_chat, agent_target
from config.errors import InvalidInput

logger = logging.getLogger(__name__)

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream"}
_TEXT_APPLICATION_TYPES = {
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-yaml",
    "application/yaml",
    "application/x-sh",
    "application/sql",
    "application/csv",
    "application/x-ndjson",
    "application/ld+json",
}
REASONING_EFFORTS = ("low", "medium", "high")


@dataclass(frozen=True)
class Attachment:
    filename: str
    mime_type: str
    kind: str  # "text", "pdf" or "image"
    text: str | None = None
    data: bytes | None = None  # images only

    @property
    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data or b'').decode()}"


@dataclass(frozen=True)
class TaskParams:
    max_tokens: int
    temperature: float
    reasoning_effort: str


@dataclass(frozen=True)
class TaskOutcome:
    agent: Agent
    attachments: list[Attachment]
    params: TaskParams
    provider_setting: str  # as configured (the agent's, else LLM_PROVIDER), echoed back
    result: ChatResult


# --- params -----------------------------------------------------------------------------------
def task_params_issues(raw: Any) -> list[dict[str, Any]]:
    """Problems with a decoded `params` object, as `{path, message}` issues (empty when fine)."""
    if not isinstance(raw, dict):
        return [{"path": [], "message": "params must be a JSON object"}]
    issues = []
    max_tokens = raw.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        issues.append({"path": ["max_tokens"], "message": "max_tokens must be a positive integer"})
    temperature = raw.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        issues.append(
            {"path": ["temperature"], "message": "temperature must be a number from 0 to 2"}
        )
    effort = raw.get("reasoning_effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        issues.append(
            {
                "path": ["reasoning_effort"],
                "message": "reasoning_effort must be one of: low, medium, high",
            }
        )
    return issues


def task_params(raw: dict[str, Any]) -> TaskParams:
    """Validated params with the settings' defaults filled in."""
    return TaskParams(
        max_tokens=raw.get("max_tokens") or settings.DEFAULT_MAX_TOKENS,
        temperature=float(
            settings.DEFAULT_TEMPERATURE if raw.get("temperature") is None else raw["temperature"]
        ),
        reasoning_effort=raw.get("reasoning_effort") or settings.DEFAULT_REASONING_EFFORT,
    )


# --- attachments ------------------------------------------------------------------------------
def _sniffed_type(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _declared_type(filename: str, content_type: str | None) -> str:
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared in _GENERIC_TYPES:
        declared = (mimetypes.guess_type(filename)[0] or "").lower()
    return declared


def _pdf_text(filename: str, data: bytes) -> str:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")  # many "protected" PDFs open with an empty password
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except Exception as error:  # pypdf raises many kinds of errors on damaged files
        raise InvalidInput(f"Could not read the PDF '{filename}': {error}") from error
    text = "\n\n".join(page for page in pages if page)
    if not text:
        return f"(The PDF '{filename}' has no extractable text; it may be scanned images.)"
    return text


def _decoded_text(data: bytes, declared: str) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if declared.startswith("text/") or declared in _TEXT_APPLICATION_TYPES:
        return data.decode("utf-8", errors="replace")
    return None


def attachment_from_upload(*, filename: str, content_type: str | None, data: bytes) -> Attachment:
    """Classify and decode one uploaded file; unsupported binaries are a clear 400."""
    filename = PurePath(filename or "upload").name or "upload"
    declared = _declared_type(filename, content_type)
    sniffed = _sniffed_type(data[:16])
    extension = PurePath(filename).suffix.lower()
    if sniffed == "application/pdf" or declared == "application/pdf" or extension == ".pdf":
        return Attachment(filename, "application/pdf", "pdf", text=_pdf_text(filename, data))
    if sniffed and sniffed.startswith("image/"):
        return Attachment(filename, sniffed, "image", data=data)
    if declared in IMAGE_TYPES.values() or extension in IMAGE_TYPES:
        raise InvalidInput(f"The file '{filename}' is not a valid PNG, JPEG, WebP or GIF image")
    text = _decoded_text(data, declared) if b"\x00" not in data[:8192] else None
    if text is None:
        raise InvalidInput(
            f"Unsupported attachment '{filename}' ({declared or 'unknown type'}): send text "
            "(UTF-8), PDF or image (PNG, JPEG, WebP, GIF) files"
        )
    return Attachment(filename, declared or "text/plain", "text", text=text)


def task_user_content(
    *, prompt: str, attachments: list[Attachment], provider: str
) -> str | list[dict[str, Any]]:
    """The user message: the prompt, each text/PDF file as a section, images as parts."""
    text = prompt
    images = [item for item in attachments if item.kind == "image"]
    for item in attachments:
        if item.kind != "image":
            text += f"\n\n--- File: {item.filename} ---\n{item.text}"
    if images and not accepts_images(provider):
        logger.warning("images dropped: provider %s does not accept image input", provider)
        names = ", ".join(item.filename for item in images)
        text += f"\n\n(Attached images not shown, the {provider} provider takes no images: {names})"
        images = []
    if not images:
        return text
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts.extend({"type": "image_url", "image_url": {"url": item.data_url}} for item in images)
    return parts


# --- the task ---------------------------------------------------------------------------------
def task_run(
    *,
    agent: Agent,
    prompt: str,
    attachments: list[Attachment],
    params: TaskParams,
    history: list[dict[str, Any]] | None = None,
) -> TaskOutcome:
    """Call the agent once; raises `LLMError` (or `LLMConfigurationError`) on failure.

    `history` is the earlier turns of a conversation (user and assistant messages), sent
    before this prompt.
    """
    provider, _ = agent_target(agent)
    content = task_user_content(prompt=prompt, attachments=attachments, provider=provider)
    logger.info(
        "task run agent=%s version=%s files=%d provider=%s",
        agent.name,
        agent.version,
        len(attachments),
        provider,
    )
    result = agent_chat(
        agent=agent,
        messages=[*(history or []), {"role": "user", "content": content}],
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        reasoning_effort=params.reasoning_effort,
    )
    return TaskOutcome(
        agent=agent,
        attachments=attachments,
        params=params,
        provider_setting=agent.provider or settings.LLM_PROVIDER,
        result=result,
    )
