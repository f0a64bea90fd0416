"""A DAG drawn as an inline SVG on the server: no diagram library, works without script.

Layout: a task's layer is the length of its longest dependency path, and layers are columns
read left to right. A layer with many tasks wraps into several columns so a 1,000-task fan-out
stays a scrollable rectangle instead of a 60,000-pixel ribbon. Within a column, tasks are
ordered by the mean position of their dependencies, which removes most edge crossings.

Each node is `<g class="node" data-task-id=… data-status=…>`: the stylesheet colours it by
`data-status`, so a live page recolours a node by changing that one attribute (and the icon and
title text, which carry the status for people who cannot tell colours apart).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from ui.templatetags.ui import STATUSES

NODE_WIDTH = 220
NODE_HEIGHT = 46
GAP_X = 56
GAP_Y = 14
PADDING = 12
# Tasks per column before a layer wraps into another column.
COLUMN_SIZE = 30
LABEL_CHARS = 30

# The icon shown in a node for each status: the same as the status badges'.
STATUS_ICONS: dict[str, str] = {status: icon for status, (icon, _label) in STATUSES.items()}


@dataclass(frozen=True)
class PlacedNode:
    id: str
    description: str
    dependencies: tuple[str, ...]
    layer: int
    x: int
    y: int


def _dependencies(task: Mapping[str, Any], known: set[str]) -> tuple[str, ...]:
    raw = task.get("dependencies") or []
    if isinstance(raw, str):
        raw = [raw]
    # "none"-style markers and ids that are not tasks of this diagram draw no edge.
    return tuple(dict.fromkeys(str(dep) for dep in raw if str(dep) in known))


def diagram_layers(tasks: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Each task id's layer: 0 without dependencies, else 1 + the deepest dependency's layer.

    Tasks on a cycle (never in a valid plan) go into one layer after all the others."""
    items = list(tasks)
    known = {str(task["id"]) for task in items}
    deps = {str(task["id"]): _dependencies(task, known) for task in items}
    waiting_on = {task_id: len(task_deps) for task_id, task_deps in deps.items()}
    dependants: dict[str, list[str]] = defaultdict(list)
    for task_id, task_deps in deps.items():
        for dep in task_deps:
            dependants[dep].append(task_id)
    ready = deque(task_id for task_id, count in waiting_on.items() if count == 0)
    layers: dict[str, int] = {}
    while ready:
        task_id = ready.popleft()
        layers[task_id] = 1 + max((layers[dep] for dep in deps[task_id]), default=-1)
        for child in dependants[task_id]:
            waiting_on[child] -= 1
            if waiting_on[child] == 0:
                ready.append(child)
    after_all = 1 + max(layers.values(), default=-1)
    for task_id in deps:
        layers.setdefault(task_id, after_all)
    return layers


def diagram_layout(tasks: Iterable[Mapping[str, Any]]) -> tuple[list[PlacedNode], int, int]:
    """Placed nodes and the drawing's width and height in pixels."""
    items = list(tasks)
    known = {str(task["id"]) for task in items}
    layers = diagram_layers(items)
    by_layer: dict[int, list[Mapping[str, Any]]] = {}
    for task in items:
        by_layer.setdefault(layers[str(task["id"])], []).append(task)

    row_of: dict[str, float] = {}
    placed: list[PlacedNode] = []
    column = 0
    tallest = 0
    for layer in sorted(by_layer):
        members = by_layer[layer]

        def barycentre(task: Mapping[str, Any]) -> tuple[float, str]:
            rows = [row_of[d] for d in _dependencies(task, known) if d in row_of]
            return (sum(rows) / len(rows) if rows else -1.0, str(task["id"]))

        members.sort(key=barycentre)
        for index, task in enumerate(members):
            col, row = divmod(index, COLUMN_SIZE)
            task_id = str(task["id"])
            row_of[task_id] = row
            placed.append(
                PlacedNode(
                    id=task_id,
                    description=str(task.get("description") or ""),
                    dependencies=_dependencies(task, known),
                    layer=layer,
                    x=PADDING + (column + col) * (NODE_WIDTH + GAP_X),
                    y=PADDING + row * (NODE_HEIGHT + GAP_Y),
                )
            )
        tallest = max(tallest, min(len(members), COLUMN_SIZE))
        column += -(-len(members) // COLUMN_SIZE)
    width = 2 * PADDING + max(column, 1) * (NODE_WIDTH + GAP_X) - GAP_X
    height = 2 * PADDING + max(tallest, 1) * (NODE_HEIGHT + GAP_Y) - GAP_Y
    return placed, width, height


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def dag_diagram_svg(
    tasks: Iterable[Mapping[str, Any]],
    statuses: Mapping[str, str] | None = None,
    *,
    step_href: str | None = None,
    label: str = "Task graph",
) -> SafeString:
    """The DAG as an SVG element, ready to put into a template.

    `tasks`: mappings with `id`, `description` and `dependencies` (a plan's `sub_tasks`, or
    sub-steps turned into such mappings). `statuses`: task id → status; without it nodes are
    drawn without a status. `step_href`: a link for each node with `{id}` standing for the task
    id (for example `"?step={id}"`); None draws plain nodes.
    """
    placed, width, height = diagram_layout(tasks)
    statuses = statuses or {}
    centre = {node.id: (node.x, node.y + NODE_HEIGHT // 2) for node in placed}
    parts: list[str] = [
        f'<svg class="dag-diagram" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="group" '
        f'aria-label="{escape(label)}" data-node-count="{len(placed)}">',
        '<defs><marker id="dag-arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z" '
        'class="arrow"/></marker></defs>',
        '<g class="edges" aria-hidden="true">',
    ]
    for node in placed:
        x2, y2 = centre[node.id]
        for dep in node.dependencies:
            x1, y1 = centre[dep]
            x1 += NODE_WIDTH
            bend = max(24, (x2 - x1) // 2)
            parts.append(
                f'<path class="edge" data-from="{escape(dep)}" data-to="{escape(node.id)}" '
                f'd="M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2 - 2},{y2}" '
                'marker-end="url(#dag-arrow)"/>'
            )
    parts.append('</g><g class="nodes">')
    for node in placed:
        status = statuses.get(node.id)
        task_id = escape(node.id)
        title = f"{node.id}: {' '.join(node.description.split())}"
        if status:
            title += f" ({status})"
        status_attr = f' data-status="{escape(status)}"' if status else ""
        icon = STATUS_ICONS.get(status or "", "")
        body = (
            f"<title>{escape(title)}</title>"
            f'<rect width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6"/>'
            f'<text class="node-id" x="10" y="18">{task_id}</text>'
            f'<text class="node-icon" x="{NODE_WIDTH - 10}" y="18" text-anchor="end" '
            f'aria-hidden="true">{escape(icon)}</text>'
            f'<text class="node-label" x="10" y="36">'
            f"{escape(_short(node.description, LABEL_CHARS))}</text>"
        )
        if step_href is not None:
            href = escape(step_href.replace("{id}", quote(node.id, safe="")))
            body = f'<a href="{href}" class="node-link" data-step-link="{task_id}">{body}</a>'
        parts.append(
            f'<g class="node" id="dag-node-{task_id}" data-task-id="{task_id}"{status_attr} '
            f'transform="translate({node.x},{node.y})">{body}</g>'
        )
    parts.append("</g></svg>")
    return mark_safe("".join(parts))  # every interpolated value above is escaped
