"""The tools page: the registry's catalogue (parameters with types, limits and defaults; which
tools have side effects) and who may call each tool: planner agents see the whole catalogue,
goal runs see the tools their goal allows (all of them when the goal lists none)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from agents.models import Agent
from agents.templating import placeholders
from goals.selectors import goals_by_tool
from tools.registry import TOOL_NAMES, Tool, all_tools

GOALS_SHOWN = 5  # goal links per tool; the count says how many there are
LIMIT_KEYS = (
    ("minimum", "min {}"),
    ("maximum", "max {}"),
    ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"),
    ("minItems", "at least {} items"),
    ("maxItems", "at most {} items"),
    ("format", "format: {}"),
)


@dataclass
class ParamRow:
    name: str
    type: str
    required: bool
    description: str
    default: str = ""
    limits: list[str] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)
    depth: int = 0  # nested fields of an array's objects (sendEmail's attachments)


def type_text(schema: dict[str, Any]) -> str:
    """A JSON Schema type in words: "string", "integer", "array of string", "string or array"."""
    if "anyOf" in schema:
        return " or ".join(type_text(option) for option in schema["anyOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_text(schema.get('items') or {})}"
    return str(kind)


def param_rows(schema: dict[str, Any], depth: int = 0) -> list[ParamRow]:
    required = set(schema.get("required") or [])
    rows = []
    for name, spec in (schema.get("properties") or {}).items():
        row = ParamRow(
            name=name,
            type=type_text(spec),
            required=name in required,
            description=str(spec.get("description", "")),
            default=json.dumps(spec["default"]) if "default" in spec else "",
            limits=[text.format(spec[key]) for key, text in LIMIT_KEYS if key in spec],
            choices=[str(value) for value in spec.get("enum") or []],
            depth=depth,
        )
        rows.append(row)
        items = spec.get("items") or {}
        if isinstance(items, dict) and items.get("properties"):
            rows.extend(param_rows(items, depth + 1))
    return rows


def goal_link(goal_id: str) -> str | None:
    try:
        return reverse("goals:detail", args=[goal_id])
    except NoReverseMatch:
        return None


def tool_users(viewer: Any) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """(planner agent names, per tool: how many of the viewer's goals may call it and the
    newest few), in a number of queries that does not grow with the number of goals."""
    planners = sorted(
        name
        for name, template in Agent.objects.filter(active=True).values_list(
            "name", "prompt_template"
        )
        if "tools" in placeholders(template)
    )
    # As the run loop reads a goal's allowedTools: no list (or an empty one) allows every tool,
    # and names of no tool are ignored.
    by_tool = goals_by_tool(viewer=viewer, tool_names=list(TOOL_NAMES), shown=GOALS_SHOWN)
    # Most goals allow every tool, so the same few goals are shown under each tool.
    links = {
        goal_id: goal_link(goal_id) for goals in by_tool.values() for goal_id, _ in goals.newest
    }
    users = {
        name: {
            "count": goals.count,
            "goals": [
                {"id": goal_id, "objective": objective, "url": links[goal_id]}
                for goal_id, objective in goals.newest
            ],
        }
        for name, goals in by_tool.items()
    }
    return planners, users


def tool_card(tool: Tool, users: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": tool.name,
        "description": tool.description,
        "side_effects": tool.side_effects,
        "params": param_rows(tool.parameters),
        "goals": users[tool.name],
    }


@require_GET
@login_required
def tool_list_page(request: HttpRequest) -> HttpResponse:
    planners, users = tool_users(request.user)
    context = {
        "tools": [tool_card(tool, users) for tool in all_tools()],
        "planners": planners,
    }
    return render(request, "tools/list.html", context)
