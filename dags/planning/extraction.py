"""Finding the plan's JSON in a model reply: a ```json block, any fenced block, or bare JSON.

Failures carry a message written for both the log and the model's retry prompt: what was
wrong, where (line and column, with the lines around it), and how big the reply was.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_REPLY_CHARS = 100_000
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)```", re.DOTALL)
_CONTEXT_LINES = 2
_LINE_PREVIEW = 160


class ReplyParseError(ValueError):
    """The reply holds no usable JSON; `str()` explains why and where."""


def _candidates(text: str) -> list[tuple[str, str]]:
    """(label, text) pairs in the order they are tried."""
    fenced = [(match.group(1).lower(), match.group(2)) for match in _FENCE.finditer(text)]
    found = [("```json block", body) for language, body in fenced if language == "json"]
    found += [("fenced block", body) for language, body in fenced if language != "json"]
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        found.append(("reply", stripped))
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end and not found:
        found.append(("JSON object in the reply", text[start : end + 1]))
    return found


def _excerpt(text: str, line: int, column: int) -> str:
    lines = text.splitlines() or [""]
    first = max(1, line - _CONTEXT_LINES)
    last = min(len(lines), line + _CONTEXT_LINES)
    shown = []
    for number in range(first, last + 1):
        content = lines[number - 1]
        if len(content) > _LINE_PREVIEW:
            # Keep the part around the error visible on long lines.
            offset = max(0, min(column - _LINE_PREVIEW // 2, len(content) - _LINE_PREVIEW))
            content = ("…" if offset else "") + content[offset : offset + _LINE_PREVIEW] + "…"
        marker = ">" if number == line else " "
        shown.append(f"{marker} {number:>4} | {content}")
    return "\n".join(shown)


def _decode_error(label: str, body: str, error: json.JSONDecodeError, size: int) -> str:
    return (
        f"Invalid JSON in the {label}: {error.msg} at line {error.lineno}, column {error.colno} "
        f"(character {error.pos}).\n{_excerpt(body, error.lineno, error.colno)}\n"
        f"The reply was {size} characters long."
    )


def extract_json(text: str | None) -> Any:
    """The JSON value the reply carries; ReplyParseError when there is none or it is invalid.

    A ```json block wins, then any other fenced block, then the reply itself when it is bare
    JSON, then the span from its first `{` to its last `}`. The first candidate that decodes
    to an object is used; otherwise the error of the first candidate is reported.
    """
    content = text or ""
    size = len(content)
    if not content.strip():
        raise ReplyParseError("The reply was empty; it must contain the plan as JSON.")
    if size > MAX_REPLY_CHARS:
        raise ReplyParseError(
            f"The reply is too large: {size} characters (the limit is {MAX_REPLY_CHARS}). "
            "Keep the plan concise."
        )
    candidates = _candidates(content)
    if not candidates:
        raise ReplyParseError(
            "No JSON found in the reply: it must contain the plan as one JSON object in a "
            f"```json fenced block. The reply was {size} characters long."
        )
    first_error: str | None = None
    fallback: Any = None
    decoded_any = False
    for label, body in candidates:
        try:
            value = json.loads(body)
        except json.JSONDecodeError as error:
            first_error = first_error or _decode_error(label, body, error, size)
            continue
        if isinstance(value, dict):
            return value
        if not decoded_any:
            fallback, decoded_any = value, True
    if decoded_any:
        return fallback  # not an object: the schema check says what is wrong with it
    raise ReplyParseError(first_error or "No JSON found in the reply.")
