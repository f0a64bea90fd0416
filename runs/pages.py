"""Run pages: the list with its status counts, and the live detail page with its partial and
cancel action. They call the same services and selectors as the API."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.db.models.functions import Substr
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from config.errors import NotFound
from config.markdown import render_json, render_markdown
from runs import selectors, services
from runs.events import RUN_EVENTS
from runs.models import Output, Run, Step
from ui.listing import ChoiceFilter, list_query, paginate
from ui.navigation import back_to
from ui.templatetags.ui import pretty_json

PAGE_SIZE = 25
# The page shows the latest events; older ones stay available through the API.
TIMELINE_LIMIT = 200
# Characters of a step's thought shown on its closed card.
EXCERPT_CHARS = 120
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
def step_rows(run: Run) -> list[Step]:
    """Every step of the run as its card's heading needs it: the long texts (thought, input,
    observation, error) stay in the database and are read when a card is opened."""
    return list(
        selectors.run_steps(run=run)
        .only("id", "run_id", "step_no", "tool_name", "duration_ms", "created_at")
        .annotate(
            thought_start=Substr("thought", 1, EXCERPT_CHARS),
            failed=ExpressionWrapper(Q(error__isnull=False), output_field=BooleanField()),
        )
    )


def step_body(step: Step) -> dict[str, Any]:
    """One step's card body: the thought as sanitized Markdown, the input as pretty JSON."""
    return {
        "row": step,
        "thought_html": render_markdown(step.thought),
        "input_text": pretty_json(step.tool_input) if step.tool_input is not None else "",
        "calls": step.tool_calls if isinstance(step.tool_calls, list) else [],
    }


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
        "steps": step_rows(run),
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
    # `?step=N` opens that step's card with its body (the way to read a step without scripts).
    opened = request.GET.get("step", "")
    if opened.isdigit():
        step = selectors.run_steps(run=run).filter(step_no=int(opened)).first()
        if step is not None:
            context["opened"] = step_body(step)
    return render(request, "runs/detail.html", context)


@require_GET
@login_required
def run_step_partial(request: HttpRequest, run_id: str, step_no: int) -> HttpResponse:
    """One step's card body (the script loads it when the card is opened)."""
    run = run_or_404(request, run_id)
    step = selectors.run_steps(run=run).filter(step_no=step_no).first()
    if step is None:
        raise Http404("Step not found")
    return render(request, "runs/_step_body.html", {"step": step_body(step), "run": run})


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
