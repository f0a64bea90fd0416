"""Goal pages: list, new, edit, detail, and the actions on a goal; they call the same services
and selectors as the API."""

from __future__ import annotations

import logging
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.access import owner_for_new_row
from config.cron import CronError, validate_timezone
from config.errors import Conflict, DomainError, NotFound
from dags.forms import CRON_MAX_CHARS
from dags.pages import schedule_preview
from goals import selectors, services
from goals.forms import CRON_PRESETS, GoalForm, ScheduleFormSet
from goals.models import Goal
from runs import selectors as run_selectors
from runs.services import TooManyRuns, run_trigger, step_budget_of
from tools.registry import all_tools
from ui.listing import ChoiceFilter, list_query, paginate
from ui.navigation import back_to

logger = logging.getLogger(__name__)

PAGE_SIZE = 20
RUNS_PAGE_SIZE = 20
SCHEDULES_PREFIX = "schedules"


# --- helpers -------------------------------------------------------------------------------------
def goal_or_404(request: HttpRequest, goal_id: str) -> Goal:
    """The goal if the user may see it; a 404 page for a missing one or someone else's."""
    try:
        return selectors.goal_get(goal_id=goal_id, viewer=request.user, with_schedules=True)
    except NotFound as error:
        raise Http404(error.message) from None


def goal_for_action(request: HttpRequest, goal_id: str) -> Goal | None:
    """The goal a form acts on; None (with a message) when it is gone, for example deleted in
    another tab, so the user lands on the list instead of an error page."""
    try:
        return selectors.goal_get(goal_id=goal_id, viewer=request.user)
    except NotFound:
        messages.error(request, "That goal no longer exists (deleted in another tab?).")
        return None


def goal_label(goal: Goal) -> str:
    text = " ".join(goal.objective.split())
    return text if len(text) <= 60 else text[:59] + "…"


# --- list ----------------------------------------------------------------------------------------
@require_GET
@login_required
def goal_list_page(request: HttpRequest) -> HttpResponse:
    listing = list_query(
        request,
        label="goals",
        sorts={key: label for key, (label, _) in selectors.GOAL_SORTS.items()},
        default_sort="-created",
        filters=[ChoiceFilter(name="status", label="Status", choices=Goal.Status.choices)],
        search_placeholder="Objective words or a goal id",
        clear_url=reverse("goals:list"),
    )
    goals = selectors.goal_search(
        viewer=request.user,
        text=listing.text,
        status=listing.values["status"],
        sort=listing.sort,
    )
    page = paginate(request, goals, PAGE_SIZE)
    rows = selectors.goal_run_stats_attach(selectors.goal_schedules_attach(list(page.object_list)))
    context = {
        "page_obj": page,
        "goals": rows,
        "controls": listing.controls,
        "filtered": listing.filtered,
    }
    return render(request, "goals/list.html", context)


# --- actions -------------------------------------------------------------------------------------
@require_POST
@login_required
def goal_run_action(request: HttpRequest, goal_id: str) -> HttpResponse:
    goal = goal_for_action(request, goal_id)
    if goal is None:
        return redirect("goals:list")
    try:
        run = run_trigger(goal_id=goal.id)
    except Conflict:
        messages.error(request, "This goal is paused: resume it before running it.")
    except TooManyRuns as error:
        messages.error(request, f"Not started: {error.message}. Try again when one ends.")
    else:
        messages.success(request, "Run started.")
        return redirect("runs:detail", run_id=run.id)
    return back_to(request, reverse("goals:detail", args=[goal.id]))


@require_POST
@login_required
def goal_pause_action(request: HttpRequest, goal_id: str) -> HttpResponse:
    goal = goal_for_action(request, goal_id)
    if goal is None:
        return redirect("goals:list")
    services.goal_pause(goal=goal)
    messages.success(request, "Goal paused: its schedules stop firing.")
    return back_to(request, reverse("goals:detail", args=[goal.id]))


@require_POST
@login_required
def goal_resume_action(request: HttpRequest, goal_id: str) -> HttpResponse:
    goal = goal_for_action(request, goal_id)
    if goal is None:
        return redirect("goals:list")
    services.goal_resume(goal=goal)
    messages.success(request, "Goal resumed: its schedules fire again.")
    return back_to(request, reverse("goals:detail", args=[goal.id]))


@require_POST
@login_required
def goal_delete_action(request: HttpRequest, goal_id: str) -> HttpResponse:
    goal = goal_for_action(request, goal_id)
    if goal is None:
        return redirect("goals:list")
    services.goal_delete(goal=goal)
    messages.success(request, "Goal deleted with its schedules and runs.")
    return redirect("goals:list")


# --- new and edit --------------------------------------------------------------------------------
def schedule_initial(goal: Goal) -> list[dict[str, Any]]:
    return [
        {"id": schedule.id, "cron": schedule.cron_expr, "timezone": schedule.timezone}
        for schedule in getattr(goal, "schedule_list", None) or goal.schedules.all()
    ]


def goal_initial(goal: Goal) -> dict[str, Any]:
    params = goal.params if isinstance(goal.params, dict) else {}
    tools = params.get("allowedTools")
    return {
        "objective": goal.objective,
        "agent": goal.agent_id or "",
        "step_budget": params.get("stepBudget"),
        "allowed_tools": tools if isinstance(tools, list) else [],
        "webhook_url": goal.webhook_url or "",
    }


def form_context(form: GoalForm, formset: Any, goal: Goal | None, *, fresh: bool) -> dict[str, Any]:
    rows = [
        {"form": row, "preview": row_preview(row), "browser_zone": fresh and not row.is_bound}
        for row in formset.forms
    ]
    return {
        "form": form,
        "formset": formset,
        "schedule_rows": rows,
        "empty_row": formset.empty_form,
        "goal": goal,
        "presets": CRON_PRESETS,
        "tool_descriptions": {tool.name: tool.description for tool in all_tools()},
    }


def row_preview(row: Any) -> dict[str, Any]:
    """The description and next runs of a schedule row as typed (or as stored)."""
    if row.is_bound:
        cron = " ".join((row.data.get(row.add_prefix("cron")) or "").split())[:CRON_MAX_CHARS]
        cron = cron or row.data.get(row.add_prefix("preset")) or ""
        zone = row.data.get(row.add_prefix("timezone")) or "UTC"
    else:
        cron = row.initial.get("cron") or ""
        zone = row.initial.get("timezone") or "UTC"
    try:
        zone = validate_timezone(zone)
    except CronError as error:
        return {"error": str(error)}
    return schedule_preview(cron or None, zone)


def wanted_schedules(formset: Any) -> list[dict[str, str]]:
    return [
        {
            "id": row.cleaned_data.get("id") or "",
            "cron_expr": row.cleaned_data["cron"],
            "timezone": row.cleaned_data["timezone"],
        }
        for row in formset.forms
        if row.wanted
    ]


def posted_rows(data: Any) -> list[dict[str, Any]]:
    """The schedule rows as posted (removed rows left out), for showing the form again."""
    try:
        total = min(int(data.get(f"{SCHEDULES_PREFIX}-TOTAL_FORMS", "0")), 40)
    except ValueError:
        total = 0
    rows = []
    for index in range(max(total, 0)):
        prefix = f"{SCHEDULES_PREFIX}-{index}-"
        if data.get(prefix + "DELETE"):
            continue
        rows.append(
            {name: data.get(prefix + name, "") for name in ("id", "preset", "cron", "timezone")}
        )
    return rows


def posted_goal(data: Any) -> dict[str, Any]:
    initial = {
        name: data.get(name, "") for name in ("objective", "agent", "step_budget", "webhook_url")
    }
    initial["allowed_tools"] = data.getlist("allowed_tools")
    return initial


@require_http_methods(["GET", "POST"])
@login_required
def goal_new_page(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        form = GoalForm(initial={"allowed_tools": []})
        formset = ScheduleFormSet(prefix=SCHEDULES_PREFIX)
        return render(request, "goals/form.html", form_context(form, formset, None, fresh=True))
    return save_goal(request, None)


@require_http_methods(["GET", "POST"])
@login_required
def goal_edit_page(request: HttpRequest, goal_id: str) -> HttpResponse:
    goal = goal_or_404(request, goal_id)
    if request.method == "GET":
        form = GoalForm(initial=goal_initial(goal))
        formset = ScheduleFormSet(prefix=SCHEDULES_PREFIX, initial=schedule_initial(goal))
        return render(request, "goals/form.html", form_context(form, formset, goal, fresh=False))
    return save_goal(request, goal)


def save_goal(request: HttpRequest, goal: Goal | None) -> HttpResponse:
    data = request.POST
    if "add_schedule" in data:
        # The "Add schedule" button without JavaScript: the form again as typed, one row more,
        # and no error messages yet (nothing was submitted for saving).
        form = GoalForm(initial=posted_goal(data))
        formset = ScheduleFormSet(prefix=SCHEDULES_PREFIX, initial=[*posted_rows(data), {}])
        context = form_context(form, formset, goal, fresh=False)
        context["schedule_rows"][-1]["browser_zone"] = True
        return render(request, "goals/form.html", context)
    form = GoalForm(data)
    formset = ScheduleFormSet(data, prefix=SCHEDULES_PREFIX)
    valid = form.is_valid() & formset.is_valid()
    if not valid:
        context = form_context(form, formset, goal, fresh=False)
        return render(request, "goals/form.html", context, status=400)
    cleaned = form.cleaned_data
    agent = cleaned["agent"]
    schedules = wanted_schedules(formset)
    try:
        with transaction.atomic():
            if goal is None:
                saved = services.goal_create(
                    objective=cleaned["objective"],
                    params=form.params(),
                    webhook_url=cleaned["webhook_url"],
                    agent_id=agent.id if agent else None,
                    owner=owner_for_new_row(request.user),
                )
            else:
                params = goal.params if isinstance(goal.params, dict) else {}
                saved = services.goal_update(
                    goal=goal,
                    changes={
                        "objective": cleaned["objective"],
                        "params": form.params(params),
                        "webhook_url": cleaned["webhook_url"],
                        "agent": agent,
                    },
                )
            counts = services.goal_schedules_set(goal=saved, schedules=schedules)
    except DomainError as error:
        # For example no agent picked and no default agent: say so above the form.
        logger.info("goal form refused by the service: %s", error.message)
        form.add_error(None, error.message)
        context = form_context(form, formset, goal, fresh=False)
        return render(request, "goals/form.html", context, status=400)
    described = f"{len(schedules)} schedule{'s' if len(schedules) != 1 else ''}"
    if goal is None:
        messages.success(request, f"Goal created with {described}.")
    else:
        changed = any(counts.values())
        messages.success(
            request, f"Goal saved ({described}{'; schedules changed' if changed else ''})."
        )
    return redirect("goals:detail", goal_id=saved.id)


# --- detail --------------------------------------------------------------------------------------
@require_GET
@login_required
def goal_detail_page(request: HttpRequest, goal_id: str) -> HttpResponse:
    goal = goal_or_404(request, goal_id)
    runs = run_selectors.run_list(viewer=request.user, goal_id=goal.id)
    page = paginate(request, runs, RUNS_PAGE_SIZE)
    params = goal.params if isinstance(goal.params, dict) else {}
    agent = goal.agent if goal.agent_id else None
    schedules = [
        {"row": schedule, "preview": schedule_preview(schedule.cron_expr, schedule.timezone)}
        # Attached by `goal_get(with_schedules=True)`, one query for all of them.
        for schedule in goal.schedule_list  # type: ignore[attr-defined]
    ]
    context = {
        "goal": goal,
        "agent": agent,
        "params": params,
        "step_budget": step_budget_of(goal),
        "allowed_tools": params.get("allowedTools") or [],
        "schedules": schedules,
        "page_obj": page,
        "runs": list(page.object_list),
        "run_total": page.paginator.count,
    }
    return render(request, "goals/detail.html", context)


@require_GET
@login_required
def goal_schedule_preview(request: HttpRequest) -> HttpResponse:
    """The description and next run times of one schedule row as it is typed (htmx partial).
    Reads the row's fields by suffix, whatever the row's prefix."""
    values = {"cron": "", "preset": "", "timezone": "UTC"}
    for key, value in request.GET.items():
        for name in values:
            if key == name or key.endswith(f"-{name}"):
                # A query string value is a string (the stubs allow the lists of MultiValueDict).
                values[name] = cast(str, value)
    cron = " ".join(values["cron"].split())[:CRON_MAX_CHARS] or values["preset"]
    row_id = request.GET.get("row", "")
    try:
        zone = validate_timezone(values["timezone"])
    except CronError as error:
        preview: dict[str, Any] = {"error": str(error)}
    else:
        preview = schedule_preview(cron or None, zone)
    return render(request, "goals/_schedule_preview.html", {"preview": preview, "row_id": row_id})
