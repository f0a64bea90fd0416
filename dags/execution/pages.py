"""Execution pages: the list and the live detail page with its partials, step dialog,
artifacts and actions. They call the same services and selectors as the API."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from artifacts import selectors as artifact_selectors
from artifacts.serving import artifact_file_response, artifact_preview
from config.errors import DomainError, NotFound
from config.markdown import render_json, render_markdown, render_value
from dags import costs, selectors, services
from dags.diagram import dag_diagram_svg
from dags.events import EXECUTION_EVENTS, TOOL_COMPLETED, TOOL_PROGRESS
from dags.execution import services as execution_services
from dags.models import SYNTHESIS_TASK_ID, DagExecution, ExecutionEvent, SubStep
from dags.pages import launch
from dags.plan import parse_result, real_dependencies, reference_key, resolve_tool_params
from tools.registry import artifact_writing_tool_names
from ui.listing import ChoiceFilter, list_query, paginate
from ui.templatetags.ui import STATUSES, duration, usd

logger = logging.getLogger(__name__)

PAGE_SIZE = 25
TABS = ("progress", "graph", "result", "artifacts", "costs", "events", "details")
TAB_LABELS = {
    "progress": "Progress",
    "graph": "Graph",
    "result": "Result",
    "artifacts": "Artifacts",
    "costs": "Costs",
    "events": "Events",
    "details": "Details",
}
# The page shows the latest events; older ones stay available through the API.
EVENT_LOG_LIMIT = 200
# Tool-progress lines kept per running step, and how many recent tool events are read for them.
PROGRESS_PER_STEP = 3
PROGRESS_SCAN = 400
EVENT_FILTERS = (
    ("", "All events"),
    ("execution", "Execution events"),
    ("substep", "Step events"),
    ("tool", "Tool progress"),
)
INPUT_CLIP = 4000


# --- helpers -------------------------------------------------------------------------------------
def execution_or_404(execution_id: str, viewer: Any) -> DagExecution:
    """The execution if `viewer` may see it; a 404 page for a missing one or someone else's."""
    try:
        return selectors.execution_get(execution_id=execution_id, viewer=viewer, with_title=True)
    except NotFound as error:
        raise Http404(error.message) from None


def execution_title(execution: DagExecution) -> str:
    title = getattr(execution, "dag_title", None) or execution.primary_intent
    return title or f"Execution {execution.id}"


# What the page shows of every step; results, parameters and usage are read only where shown
# (the step dialog, the artifacts list, the costs), so a 1,000-step page stays light.
STEP_LIST_FIELDS = (
    "id",
    "execution_id",
    "task_id",
    "description",
    "status",
    "action_type",
    "tool_or_prompt_name",
    "dependencies",
    "duration_ms",
    "error",
)


def _sub_steps(execution: DagExecution) -> list[SubStep]:
    return list(selectors.execution_sub_steps(execution=execution).only(*STEP_LIST_FIELDS))


def _plan_steps(steps: list[SubStep]) -> list[SubStep]:
    return [step for step in steps if step.task_id != SYNTHESIS_TASK_ID]


def _recent_progress(execution: DagExecution, steps: list[SubStep]) -> dict[str, list[str]]:
    """The last few tool-progress lines of each running step (one query)."""
    running = {step.task_id for step in steps if step.status == SubStep.Status.RUNNING}
    if not running:
        return {}
    rows = (
        ExecutionEvent.objects.filter(execution=execution, type__in=[TOOL_PROGRESS, TOOL_COMPLETED])
        .order_by("-seq")
        .values_list("payload", flat=True)[:PROGRESS_SCAN]
    )
    lines: dict[str, list[str]] = defaultdict(list)
    for payload in rows:
        task_id = str(payload.get("subStepId") or "")
        if task_id in running and len(lines[task_id]) < PROGRESS_PER_STEP:
            tool = payload.get("toolName")
            message = " ".join(str(payload.get("message") or "").split())[:140]
            lines[task_id].insert(0, f"{tool}: {message}" if tool else message)
    return dict(lines)


def _artifact_rows(execution: DagExecution) -> list[dict[str, Any]]:
    """Files the execution's completed file-writing steps wrote, newest write per file."""
    rows: dict[str, dict[str, Any]] = {}
    written = (
        selectors.execution_sub_steps(execution=execution)
        .filter(
            tool_or_prompt_name__in=artifact_writing_tool_names(),
            status=SubStep.Status.COMPLETED,
        )
        .values_list("task_id", "result", "completed_at")
    )
    for task_id, stored, completed_at in written:
        result = parse_result(stored)
        path = result.get("path") if isinstance(result, dict) else None
        if isinstance(path, str) and path:
            rows[path] = {
                "path": path,
                "task_id": task_id,
                "size": result.get("size"),
                "written_at": completed_at,
            }
    return sorted(rows.values(), key=lambda row: row["path"])


def _events(execution: DagExecution, event_type: str) -> tuple[list[dict[str, Any]], int]:
    """The latest stored events (oldest first) as sent on the stream, and how many exist.

    Only up to the execution's `last_event_seq` as read with it: the page's stream resumes after
    that number, so an event committed since would otherwise be listed here and then sent again
    by the stream (shown twice)."""
    rows = ExecutionEvent.objects.filter(execution=execution, seq__lte=execution.last_event_seq)
    if event_type:
        rows = rows.filter(type__startswith=f"{event_type}.")
    total = rows.count()
    latest = list(
        rows.order_by("-seq").only("seq", "type", "payload", "created_at")[:EVENT_LOG_LIMIT]
    )
    latest.reverse()
    return (
        [
            {
                "seq": row.seq,
                "type": row.type,
                "at": row.created_at,
                "data": EXECUTION_EVENTS.wire(row.type, row.payload),
            }
            for row in latest
        ],
        total,
    )


def _live_context(execution: DagExecution, steps: list[SubStep]) -> dict[str, Any]:
    """What the swappable parts of the page need (also the polling partial's context)."""
    plan = _plan_steps(steps)
    synthesis = next((step for step in steps if step.task_id == SYNTHESIS_TASK_ID), None)
    progress = _recent_progress(execution, steps)
    done = sum(1 for step in plan if step.status == SubStep.Status.COMPLETED)
    failed = sum(1 for step in plan if step.status == SubStep.Status.FAILED)
    total = execution.total_tasks or len(plan)
    execution_costs = costs.execution_costs(execution=execution)
    items = [
        {
            "row": step,
            "progress": progress.get(step.task_id, []),
            "dependencies": real_dependencies(step.dependencies or []),
        }
        for step in [*plan, *([synthesis] if synthesis else [])]
    ]
    return {
        "execution": execution,
        "dag": execution.dag,
        "title": execution_title(execution),
        "steps_html": steps_list_html(items),
        "done": done,
        "failed": failed,
        "total": total,
        "percent": round(100 * done / total) if total else 0,
        "result_html": render_markdown(execution.final_result),
        "costs": execution_costs,
        "cost_rows_html": cost_rows_html(execution_costs["execution"]["subSteps"]),
        "artifacts": _artifact_rows(execution),
        "resumable": execution.status in execution_services.RESUMABLE,
        "cancellable": execution.status in execution_services.CANCELLABLE,
    }


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def steps_list_html(items: list[dict[str, Any]]) -> SafeString:
    """The step timeline's items (see templates/executions/_steps.html).

    Written in Python rather than as a template loop: a 1,000-step execution would spend most
    of its page time in the template engine's per-variable lookups."""
    parts: list[str] = []
    for item in items:
        step: SubStep = item["row"]
        status = escape(step.status)
        icon, label = STATUSES.get(step.status, ("•", step.status.capitalize()))
        task_id = escape(step.task_id)
        synthesis = step.task_id == SYNTHESIS_TASK_ID
        description = step.description or ("Final report" if synthesis else "")
        deps = item["dependencies"]
        progress = item["progress"]
        parts.append(
            f'<li class="step" data-step="{task_id}" data-status="{status}">'
            f'<span class="step-icon status-{status}" data-step-icon aria-hidden="true">'
            f"{escape(icon)}</span>"
            '<div class="step-body"><div class="step-line">'
            f'<a class="step-link" href="?step={escape(quote(step.task_id, safe=""))}" '
            f'data-step-link="{task_id}"><span class="mono">'
            f"{'Synthesis' if synthesis else task_id}</span> "
            f"{escape(_short(description, 160))}</a>"
            f'<span class="badge status-{status}" data-step-badge data-status="{status}">'
            f'<span class="icon" aria-hidden="true">{escape(icon)}</span>{escape(label)}</span>'
            '</div><div class="step-meta muted">'
            f"<span>{escape(step.tool_or_prompt_name)}</span>"
            + (f"<span>after {escape(', '.join(deps))}</span>" if deps else "")
            + "<span data-step-duration>"
            + (escape(duration(step.duration_ms)) if step.duration_ms is not None else "")
            + "</span></div>"
            + '<ul class="tool-progress" data-step-progress'
            + ("" if progress else " hidden")
            + ">"
            + "".join(f"<li>{escape(line)}</li>" for line in progress)
            + "</ul>"
            + '<p class="step-error" data-step-error'
            + ("" if step.error else " hidden")
            + ">"
            + escape(_short(step.error or "", 300))
            + "</p></div></li>"
        )
    if not parts:
        parts.append('<li class="muted">This execution has no steps.</li>')
    return mark_safe("".join(parts))  # every interpolated value above is escaped


def cost_rows_html(rows: list[dict[str, Any]]) -> SafeString:
    """The per-step rows of the costs table (Python for the same reason as the step list)."""

    def tokens(usage: Any, key: str) -> str:
        value = usage.get(key) if isinstance(usage, dict) else None
        return escape(value) if value is not None else "—"

    return mark_safe(
        "".join(
            f'<tr><td class="mono">{escape(row["taskId"])}</td>'
            f"<td>{escape(row['toolOrPromptName'])}</td>"
            f'<td class="right">{tokens(row["usage"], "promptTokens")}</td>'
            f'<td class="right">{tokens(row["usage"], "completionTokens")}</td>'
            f'<td class="right">{tokens(row["usage"], "totalTokens")}</td>'
            f'<td class="right">{escape(usd(row["costUsd"]))}</td></tr>'
            for row in rows
        )
    )


# --- list ----------------------------------------------------------------------------------------
@require_GET
@login_required
def execution_list_page(request: HttpRequest) -> HttpResponse:
    listing = list_query(
        request,
        label="executions",
        sorts={key: label for key, (label, _) in selectors.EXECUTION_SORTS.items()},
        default_sort="-created",
        filters=[ChoiceFilter(name="status", label="Status", choices=DagExecution.Status.choices)],
        search_placeholder="DAG title, request or execution id",
        clear_url=reverse("executions:list"),
    )
    executions = selectors.execution_search(
        viewer=request.user,
        text=listing.text,
        status=listing.values["status"],
        sort=listing.sort,
    )
    page = paginate(request, executions, PAGE_SIZE)
    context = {
        "page_obj": page,
        "executions": list(page.object_list),
        "controls": listing.controls,
        "filtered": listing.filtered,
    }
    return render(request, "executions/list.html", context)


# --- detail --------------------------------------------------------------------------------------
@require_GET
@login_required
def execution_detail_page(request: HttpRequest, execution_id: str) -> HttpResponse:
    execution = execution_or_404(execution_id, request.user)
    steps = _sub_steps(execution)
    tab = request.GET.get("tab", "progress")
    if tab not in TABS:
        tab = "progress"
    event_type = request.GET.get("events", "")
    if event_type not in dict(EVENT_FILTERS):
        event_type = ""
    events, event_count = _events(execution, event_type)
    plan = _plan_steps(steps)
    diagram = dag_diagram_svg(
        [
            {"id": step.task_id, "description": step.description, "dependencies": step.dependencies}
            for step in plan
        ],
        {step.task_id: step.status for step in plan},
        step_href="?step={id}",
        label=f"Graph of the {len(plan)} steps of this execution",
    )
    context = {
        **_live_context(execution, steps),
        "tab": tab,
        "tabs": [(key, TAB_LABELS[key]) for key in TABS],
        "diagram": diagram,
        "events": events,
        "event_count": event_count,
        "event_filter": event_type,
        "event_filters": EVENT_FILTERS,
        "last_event_id": execution.last_event_seq,
        "status_meta": STATUSES,
        "step": _step_context(execution, steps, request.GET.get("step")),
    }
    return render(request, "executions/detail.html", context)


@require_GET
@login_required
def execution_live_partial(request: HttpRequest, execution_id: str) -> HttpResponse:
    """The parts of the page that change while it runs: for the polling fallback and for
    refreshing results, costs and actions when the execution finishes."""
    execution = execution_or_404(execution_id, request.user)
    context = _live_context(execution, _sub_steps(execution))
    return render(request, "executions/_live.html", context)


# --- step dialog ---------------------------------------------------------------------------------
def _step_context(
    execution: DagExecution, steps: list[SubStep], task_id: str | None
) -> dict[str, Any] | None:
    if not task_id:
        return None
    step = selectors.execution_sub_steps(execution=execution).filter(task_id=task_id).first()
    if step is None:
        return {"missing": task_id, "row": None}
    by_key = {reference_key(row.task_id): row for row in steps}
    dependency_ids = real_dependencies(step.dependencies or [])
    dependencies: list[dict[str, Any]] = []
    for dep in dependency_ids:
        row = by_key.get(reference_key(dep))
        dependencies.append({"id": dep, "status": row.status if row else None})
    completed = [
        row.task_id
        for dep in dependency_ids
        if (row := by_key.get(reference_key(dep))) and row.status == SubStep.Status.COMPLETED
    ]
    results: dict[str, Any] = {
        reference_key(dep_id): parse_result(stored)
        for dep_id, stored in selectors.execution_sub_steps(execution=execution)
        .filter(task_id__in=completed)
        .values_list("task_id", "result")
    }
    if step.action_type == SubStep.ActionType.TOOL and step.tool_or_prompt_name != "inference":
        inputs: Any = resolve_tool_params(
            tool_name=step.tool_or_prompt_name,
            params=step.tool_or_prompt_params,
            dependency_ids=dependency_ids,
            results=results,
        )
        inputs_html = render_json(inputs)
    else:
        # An inference step receives its dependencies' results in its prompt.
        inputs_html = render_json(
            {
                dep["id"]: _clip(results.get(reference_key(dep["id"])))
                for dep in dependencies
                if reference_key(dep["id"]) in results
            }
        )
    result = parse_result(step.result)
    return {
        "missing": None,
        "row": step,
        "dependencies": dependencies,
        "params_html": render_json(step.tool_or_prompt_params or {}),
        "inputs_html": inputs_html,
        "result_html": render_value(result),
        "usage": step.usage or {},
        "cost": step.cost_usd,
    }


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > INPUT_CLIP:
        return value[:INPUT_CLIP] + " …"
    return value


@require_GET
@login_required
def execution_step_partial(request: HttpRequest, execution_id: str, task_id: str) -> HttpResponse:
    """The step dialog's content (the page itself renders it for `?step=<task id>`)."""
    execution = execution_or_404(execution_id, request.user)
    step = _step_context(execution, _sub_steps(execution), task_id)
    if step is None or step["missing"]:
        raise Http404(f"Step '{task_id}' not found in this execution")
    return render(request, "executions/_step.html", {"execution": execution, "step": step})


# --- artifacts -----------------------------------------------------------------------------------
# The file itself may be embedded by its own page (a PDF in an <object>).
@xframe_options_sameorigin
@require_GET
@login_required
def execution_artifact_page(request: HttpRequest, execution_id: str, name: str) -> HttpResponse:
    """A file this execution wrote: its page (shown as the artifacts pages show files), the
    file inline (`?raw=1`) or downloaded (`?download=1`).

    Only files the execution's own steps wrote are served here, through the artifacts app's
    path checks."""
    execution = execution_or_404(execution_id, request.user)
    written = {row["path"]: row for row in _artifact_rows(execution)}
    if name not in written:
        raise Http404("This execution wrote no such file")
    try:
        content = artifact_selectors.artifact_read(name=name, viewer=request.user)
    except DomainError as error:
        raise Http404(error.message) from None
    if request.GET.get("download") or request.GET.get("raw"):
        return artifact_file_response(
            name=name, content=content, download=bool(request.GET.get("download"))
        )
    context = {
        "execution": execution,
        "title": execution_title(execution),
        "artifact": written[name],
        "preview": artifact_preview(name=name, content=content),
        "raw_url": "?raw=1",
        "size": len(content),
    }
    return render(request, "executions/artifact.html", context)


# --- actions -------------------------------------------------------------------------------------
def _detail(execution_id: str) -> HttpResponse:
    return redirect("executions:detail", execution_id=execution_id)


@require_POST
@login_required
def execution_resume_action(request: HttpRequest, execution_id: str) -> HttpResponse:
    execution = execution_or_404(execution_id, request.user)
    try:
        execution_services.execution_resume(execution_id=execution.id)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, "Execution resumed: only the steps that did not finish run again."
        )
    return _detail(execution.id)


@require_POST
@login_required
def execution_cancel_action(request: HttpRequest, execution_id: str) -> HttpResponse:
    execution = execution_or_404(execution_id, request.user)
    try:
        execution_services.execution_cancel(execution_id=execution.id)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Execution cancelled: running steps finish, nothing new starts.")
    return _detail(execution.id)


@require_POST
@login_required
def execution_rerun_action(request: HttpRequest, execution_id: str) -> HttpResponse:
    execution = execution_or_404(execution_id, request.user)
    if execution.dag_id is None:
        messages.error(request, "This execution has no DAG to run again.")
        return _detail(execution.id)
    try:
        dag = selectors.dag_get(dag_id=execution.dag_id, viewer=request.user)
    except NotFound as error:
        messages.error(request, error.message)
        return _detail(execution.id)
    started = launch(request, dag)
    return _detail(started.id if started else execution.id)


@require_POST
@login_required
def execution_delete_action(request: HttpRequest, execution_id: str) -> HttpResponse:
    execution = execution_or_404(execution_id, request.user)
    dag_id = execution.dag_id
    try:
        services.execution_delete(execution=execution)
    except DomainError as error:
        messages.error(request, error.message)
        return _detail(execution.id)
    messages.success(request, "Execution deleted.")
    if dag_id:
        return redirect(reverse("dags:detail", args=[dag_id]))
    return redirect("executions:list")
