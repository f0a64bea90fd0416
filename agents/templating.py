"""`{{placeholder}}` rendering of agent prompt templates.

One pass: values are inserted as given and never rendered again, so text that reaches a
prompt from users or tools cannot expand placeholders. Unknown placeholders stay in place (a
template may legitimately show braces) and are logged by name only, never with the prompt.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

logger = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")


@dataclass(frozen=True)
class PromptPlaceholder:
    """A placeholder that some caller fills in; `filled_for` says which calls give it a value."""

    name: str
    filled_for: str
    description: str


# Every placeholder a caller of `render_template` fills in. The prompt helper of the agent
# pages reads this list; tests run the planner and a goal run against the scripted LLM and
# check that each placeholder listed here for them really is replaced.
PROMPT_PLACEHOLDERS: tuple[PromptPlaceholder, ...] = (
    PromptPlaceholder(
        "currentDate", "every call", "Today's date and time, ISO-8601 with the time zone."
    ),
    PromptPlaceholder(
        "tools", "planning", "The tool catalogue as JSON function definitions (planner agents)."
    ),
    PromptPlaceholder("objective", "goal runs", "The goal's objective, as its owner wrote it."),
    PromptPlaceholder(
        "toolsList", "goal runs", "The tools the goal allows, one line each: name and purpose."
    ),
    PromptPlaceholder("constraints", "goal runs", "The goal's constraints, one per line."),
    PromptPlaceholder("stepsRemaining", "goal runs", "How many steps the run has left."),
    PromptPlaceholder(
        "workingMemory", "goal runs", "What the run has learned so far, as a JSON object."
    ),
)
KNOWN_PLACEHOLDERS: frozenset[str] = frozenset(item.name for item in PROMPT_PLACEHOLDERS)


def placeholders(template: str) -> list[str]:
    """The distinct placeholder names of a template, in order of first use."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def render_template(template: str, context: dict[str, Any]) -> str:
    """Replace each `{{name}}` with `context[name]` (dicts and lists as JSON)."""
    unknown: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in context:
            return _text(context[name])
        unknown.append(name)
        return match.group(0)

    rendered = PLACEHOLDER.sub(replace, template)
    if unknown:
        logger.warning(
            "prompt template has placeholders with no value (left in place): %s",
            ", ".join(sorted(set(unknown))),
        )
    return rendered


def current_date_text(moment: datetime | None = None) -> str:
    """The `{{currentDate}}` value: ISO-8601 with the time zone, to the second."""
    moment = moment or timezone.localtime()
    return moment.replace(microsecond=0).isoformat()
