"""Run pages: the list with its status counts, and the live detail page with its partial and
cancel action. They call the same services and selectors as the API."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from config.errors import NotFound
from config.markdown import render_json, render_markdown
from dags.pages import back_to
from runs import selectors, services
from runs.events import RUN_EVENTS
from runs.models import Output, Run
from ui.listing import ChoiceFilter, list_query, paginate
from ui.templatetags.ui import STATUSES

PAGE_SIZE = 25
# The page shows the latest events; older ones stay available through the API.
TIMELINE_LIMIT = 200
ACTIVE = (Run.Status.PENDING, Run.Status.RUNNING)


def run_or_404(request: HttpRequest, run_id: str) -> Run:
    """The run if the user may see it; a 404 page for a missing one or someone else's."""
    try:
        return selectors.run_get(run_id=run_id, viewer=request.user)
    except NotFound as error:
        raise Http404(error.message) from None


# --- list ----------------------------------------------------------------------------------------
@require_GET
@login_required
def run_list_page(request: HttpRequest) -> HttpResponse:
    listing = list_query(
        request,
        label="runs",
        sorts={key: label for key, (label, _) in selectors.RUN_SORTS.items()},
        default_sort="-created",
        filters=[
            ChoiceFilter(name="status", label="Status", choices=Run.Status.choices),
            ChoiceFilter(name="trigger", label="Started by", choices=Run.Trigger.choices),
        ],
        search_placeholder="Goal objective, goal id or run id",
        clear_url=reverse("runs:list"),
    )
    runs = selectors.run_search(
        viewer=request.user,
        status=listing.values["status"],
        trigger=listing.values["trigger"],
        text=listing.text,
        sort=listing.sort,
    )
    page = paginate(request, runs, PAGE_SIZE)
    counts = selectors.run_status_counts(viewer=request.user)
    context = {
        "page_obj": page,
        "runs": list(page.object_list),
        "controls": listing.controls,
        "filtered": listing.filtered,
        "counts": counts,
        "status_cards": [(status, counts.get(status, 0)) for status in Run.Status.values],
        "current_status": listing.values["status"],
        "sort": listing.sort,
        "columns": sort_columns(request, listing.sort),
    }
    return render(request, "runs/list.html", context)


def sort_columns(request: HttpRequest, current: str) -> dict[str, dict[str, str]]:
    """For each sortable column: the link that sorts by it (toggling the direction when it is
    the current sort) and its aria-sort value."""
    columns = {"created": "-created", "duration": "-duration", "steps": "-steps", "cost": "-cost"}
    result = {}
    for name, default in columns.items():
        descending, ascending = f"-{name}", name
        if current == descending and ascending in selectors.RUN_SORTS:
            target, state = ascending, "descending"
        elif current == ascending:
            target, state = descending, "ascending"
        else:
            target, state = default, "none"
        query = request.GET.copy()
        query["sort"] = target
        query.pop("page", None)
        result[name] = {"url": f"?{query.urlencode()}", "aria": state}
    return result


# --- detail --------------------------------------------------------------------------------------
def step_cards(run: Run) -> list[dict[str, Any]]:
    return [
        {
            "row": step,
            "thought_html": render_markdown(step.thought),
            "input_html": render_json(step.tool_input) if step.tool_input is not None else "",
            "calls": step.tool_calls if isinstance(step.tool_calls, list) else [],
        }
        for step in selectors.run_steps(run=run)
    ]


def live_context(run: Run) -> dict[str, Any]:
    """What the swappable parts of the page need (also the polling partial's context)."""
    outputs = list(selectors.run_outputs(run=run))
    summary = next((o for o in outputs if o.kind == Output.Kind.SUMMARY), None)
    events = selectors.run_events_recent(run=run, limit=TIMELINE_LIMIT)
    budget = run.step_budget or 1
    memory = run.working_memory if isinstance(run.working_memory, dict) else {}
    return {
        "run": run,
        "goal": run.goal,
        "steps": step_cards(run),
        "outputs": outputs,
        "summary_html": render_markdown(summary.path_or_payload) if summary else "",
        "memories": list(selectors.run_memories(run=run)),
        "working_memory_html": render_json(
            {k: v for k, v in memory.items() if k not in ("summary", "stopReason")}
        ),
        "stop_reason": memory.get("stopReason", ""),
        "timeline": [
            {
                "seq": e.seq,
                "type": e.type,
                "at": e.created_at,
                "data": RUN_EVENTS.wire(e.type, e.payload),
            }
            for e in events
        ],
        "last_event_id": run.last_event_seq,
        "percent": min(100, round(100 * run.steps_executed / budget)),
        "cancellable": run.status in ACTIVE,
        "live": run.status in ACTIVE,
    }


@require_GET
@login_required
def run_detail_page(request: HttpRequest, run_id: str) -> HttpResponse:
    run = run_or_404(request, run_id)
    context = live_context(run)
    context["status_meta"] = STATUSES
    return render(request, "runs/detail.html", context)


@require_GET
@login_required
def run_live_partial(request: HttpRequest, run_id: str) -> HttpResponse:
    """The parts of the run page that change while it runs (the script swaps them by id)."""
    run = run_or_404(request, run_id)
    return render(request, "runs/_live.html", live_context(run))


@require_POST
@login_required
def run_cancel_action(request: HttpRequest, run_id: str) -> HttpResponse:
    try:
        run = selectors.run_get(run_id=run_id, viewer=request.user)
    except NotFound:
        messages.error(request, "That run no longer exists.")
        return redirect("runs:list")
    if services.run_cancel(run=run):
        messages.success(request, "Run cancelled.")
    else:
        messages.info(request, "The run had already ended.")
    return back_to(request, reverse("runs:detail", args=[run.id]))
