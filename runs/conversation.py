"""What the step loop sends to the model: the template values, the opening message, the
conversation trimmed to a bounded size, and tool results as `tool` messages.

Everything here is pure (no database), so each bound can be tested on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

TRUNCATION_MARK = "\n[... cut: {omitted} more characters]"


def clip(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters, saying how much was left out."""
    if limit <= 0 or len(text) <= limit:
        return text
    omitted = len(text) - limit
    return text[:limit] + TRUNCATION_MARK.format(omitted=omitted)


def as_text(value: Any) -> str:
    """A tool result as text for the model: strings as-is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def constraints_text(constraints: Any) -> str:
    """Constraints given as a string, a list of strings or an object, as prompt lines."""
    if constraints is None or constraints == "" or constraints == [] or constraints == {}:
        return "None."
    if isinstance(constraints, str):
        return constraints.strip() or "None."
    if isinstance(constraints, list | tuple):
        return "\n".join(f"- {as_text(item).strip()}" for item in constraints) or "None."
    if isinstance(constraints, dict):
        return "\n".join(f"- {key}: {as_text(value)}" for key, value in constraints.items())
    return as_text(constraints)


def tools_list_text(definitions: Sequence[dict[str, Any]]) -> str:
    if not definitions:
        return "No tools are available: answer from what you know."
    lines = []
    for definition in definitions:
        function = definition.get("function", {})
        lines.append(f"- {function.get('name')}: {function.get('description', '')}")
    return "\n".join(lines)


def working_memory_text(memory: dict[str, Any], limit: int) -> str:
    """The working memory as JSON within `limit` characters: the newest entries win, and each
    value is cut so one large tool result cannot crowd out the others."""
    entries = [(key, value) for key, value in memory.items() if key != "summary"]
    if not entries:
        return "{}"
    per_entry = max(200, limit // max(1, min(len(entries), 8)))
    kept: list[tuple[str, Any]] = []
    used = 2
    for key, value in reversed(entries):
        text = as_text(value)
        shown: Any = value if len(text) <= per_entry else clip(text, per_entry)
        cost = len(key) + min(len(text), per_entry + 60) + 8
        if kept and used + cost > limit:
            break
        kept.append((key, shown))
        used += cost
    kept.reverse()
    omitted = len(entries) - len(kept)
    rendered = json.dumps(dict(kept), ensure_ascii=False, indent=1, default=str)
    if omitted:
        rendered += f"\n({omitted} older entries are not shown.)"
    return rendered


def opening_message(objective: str, notes: Iterable[str], note_limit: int = 1500) -> str:
    """The first user message: the objective and what earlier runs of the goal concluded."""
    parts = [f"Objective:\n{objective.strip()}"]
    earlier = [clip(note.strip(), note_limit) for note in notes if note and note.strip()]
    if earlier:
        listed = "\n\n".join(f"[{index}] {note}" for index, note in enumerate(earlier, 1))
        parts.append(
            "Notes kept from earlier runs of this goal (newest first). Use them instead of "
            f"redoing finished work:\n{listed}"
        )
    parts.append("Start working on the objective now.")
    return "\n\n".join(parts)


def tool_message(call_id: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def message_size(message: dict[str, Any]) -> int:
    size = len(message.get("content") or "")
    for call in message.get("tool_calls") or []:
        size += len(call.get("function", {}).get("arguments") or "") + 40
    return size + 20


def trim_conversation(
    opening: dict[str, Any], turns: Sequence[list[dict[str, Any]]], limit: int
) -> list[dict[str, Any]]:
    """The opening message plus the newest whole turns that fit in `limit` characters.

    A turn is an assistant message with the `tool` messages answering its calls; turns are
    dropped whole, oldest first, so no `tool` message is ever sent without its call. The newest
    turn is always kept.
    """
    budget = limit - message_size(opening)
    kept: list[list[dict[str, Any]]] = []
    for turn in reversed(turns):
        size = sum(message_size(message) for message in turn)
        if kept and size > budget:
            break
        kept.append(turn)
        budget -= size
    kept.reverse()
    messages = [opening]
    dropped = len(turns) - len(kept)
    if dropped:
        messages.append(
            {
                "role": "user",
                "content": (
                    f"({dropped} earlier step(s) are left out to save space; their results "
                    "are in the working memory.)"
                ),
            }
        )
    for turn in kept:
        messages.extend(turn)
    return messages


FINAL_SUMMARY_REQUEST = (
    "The step budget is used up, so no more tools can be called. Write the final summary now: "
    "what was achieved, the results and their sources or files, and what is still missing."
)
