"""Showing and sending a file of the artifacts folder to a browser, for every page that does.

Artifacts are written by tools on behalf of LLM output, so their content is hostile: an HTML or
SVG file must never run script with the site's rights. Files are therefore sent with
`X-Content-Type-Options: nosniff`, a sandboxing Content-Security-Policy, and only a short list
of types (images, PDF) inline under their own type; everything else is plain text or a download.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.http import HttpResponse
from django.utils.http import content_disposition_header
from django.utils.safestring import SafeString

from config.markdown import render_markdown, render_value

# Inline types: shown by the browser itself, never as a document that can run script.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".svg": "image/svg+xml",
}
PDF_TYPE = "application/pdf"
MARKDOWN_SUFFIXES = (".md", ".markdown", ".txt")
# Larger text files are offered for download instead of being rendered into the page.
PREVIEW_LIMIT = 1_000_000
# A file opened on its own is an opaque-origin document that may load nothing, run nothing.
SANDBOX_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"
# Chromium refuses to show a PDF in a sandboxed document; a PDF gets the rest of the policy
# (its viewer runs apart from the site's pages).
PDF_CSP = "default-src 'none'; object-src 'self'"


def _suffix(name: str) -> str:
    base = name.rsplit("/", 1)[-1].lower()
    return "." + base.rsplit(".", 1)[-1] if "." in base else ""


@dataclass(frozen=True)
class Preview:
    """How a page shows a file: `kind` is markdown, json, code, image, pdf, large or binary."""

    kind: str
    html: SafeString | None = None

    @property
    def embedded(self) -> bool:
        """Shown through a second request for the file itself (`?raw=1`)."""
        return self.kind in ("image", "pdf")


def artifact_preview(*, name: str, content: bytes) -> Preview:
    """What a page shows of file `name`: Markdown and text rendered and sanitized, JSON
    highlighted, images and PDFs embedded, anything else offered for download."""
    suffix = _suffix(name)
    if suffix in IMAGE_TYPES:
        return Preview("image")
    if suffix == ".pdf":
        return Preview("pdf")
    if len(content) > PREVIEW_LIMIT:
        return Preview("large")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return Preview("binary")
    if suffix in MARKDOWN_SUFFIXES:
        return Preview("markdown", render_markdown(text))
    if suffix == ".json":
        try:
            return Preview("json", render_value(json.loads(text)))
        except ValueError:
            pass
    language = suffix[1:] if suffix[1:].isalnum() else ""
    # A fence longer than any run of backticks in the text, so the text cannot close it.
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    return Preview("code", render_markdown(f"{fence}{language}\n{text}\n{fence}"))


def _longest_backtick_run(text: str) -> int:
    longest = current = 0
    for char in text:
        current = current + 1 if char == "`" else 0
        longest = max(longest, current)
    return longest


def artifact_file_response(*, name: str, content: bytes, download: bool) -> HttpResponse:
    """The file itself: an attachment (`download`), or inline for the page's embedded images
    and PDFs; other files inline are plain text (or an attachment when not text)."""
    filename = name.rsplit("/", 1)[-1]
    suffix = _suffix(name)
    inline_type = IMAGE_TYPES.get(suffix) or (PDF_TYPE if suffix == ".pdf" else None)
    if not download and inline_type is None:
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            download = True
        else:
            inline_type = "text/plain; charset=utf-8"
    response = HttpResponse(
        content, content_type="application/octet-stream" if download else inline_type
    )
    # Always set: the filename is the only non-ASCII-safe part and the helper encodes it.
    response["Content-Disposition"] = content_disposition_header(download, filename) or ""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = PDF_CSP if inline_type == PDF_TYPE else SANDBOX_CSP
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = "private, no-cache"
    return response
