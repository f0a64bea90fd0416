"""DAG pages: list, new (plan → clarify → execute), detail; they call the same services and
selectors as the API."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agents import selectors as agent_selectors
from agents.llm.errors import LLMError
from agents.task.services import task_params, task_run
from config.cron import CronError, describe_cron, next_run_times, validate_timezone
from config.errors import Conflict, DomainError, NotFound
from dags import costs, selectors, services
from dags.diagram import dag_diagram_svg
from dags.execution import services as execution_services
from dags.forms import CRON_MAX_CHARS, DEFAULT_PLANNER, NewDagForm, ScheduleForm
from dags.models import Dag, DagExecution
from dags.plan import PlanError
from dags.planning.services import dag_plan
from ui.listing import ChoiceFilter, list_query, paginate
from ui.navigation import back_to

logger = logging.getLogger(__name__)

PAGE_SIZE = 20


# --- shared helpers ------------------------------------------------------------------------------
def dag_or_404(request: HttpRequest, dag_id: str) -> Dag:
    """The DAG if the user may see it; a 404 page for a missing one or someone else's."""
    try:
        return selectors.dag_get(dag_id=dag_id, viewer=request.user)
    except NotFound as error:
        raise Http404(error.message) from None


def dag_for_action(request: HttpRequest, dag_id: str) -> Dag | None:
    """The DAG a form acts on; None (with a message) when it is gone, for example deleted in
    another tab, so the user lands on the list instead of an error page."""
    try:
        return selectors.dag_get(dag_id=dag_id, viewer=request.user)
    except NotFound:
        messages.error(request, "That DAG no longer exists (deleted in another tab?).")
        return None


def execution_url(execution_id: str) -> str | None:
    """The execution page, when the executions pages are installed."""
    try:
        return reverse("executions:detail", args=[execution_id])
    except NoReverseMatch:
        return None


def plan_issue_lines(error: PlanError) -> list[str]:
    return [str(issue.get("message", issue)) for issue in error.issues]


def launch(request: HttpRequest, dag: Dag) -> DagExecution | None:
    """Start an execution of `dag`; on failure, say why in a message and return None."""
    try:
        execution = execution_services.execution_launch(dag=dag, owner=request.user)
    except PlanError as error:
        messages.error(request, "This DAG's plan cannot run: " + "; ".join(plan_issue_lines(error)))
        return None
    except execution_services.ClarificationNeeded as clarification:
        question = clarification.job.clarification_query or "more details"
        messages.error(request, f"This plan asks for clarification first: {question}")
        return None
    messages.success(request, f"Execution started ({execution.total_tasks} tasks).")
    return execution


def after_launch(execution: DagExecution, dag: Dag) -> HttpResponseRedirect:
    return redirect(execution_url(execution.id) or reverse("dags:detail", args=[dag.id]))


# --- list ----------------------------------------------------------------------------------------
@require_GET
@login_required
def dag_list_page(request: HttpRequest) -> HttpResponse:
    listing = list_query(
        request,
        label="DAGs",
        sorts={key: label for key, (label, _) in selectors.DAG_SORTS.items()},
        default_sort="-created",
        filters=[
            ChoiceFilter(
                name="status",
                label="Last execution",
                choices=[
                    (selectors.NEVER_EXECUTED, "Never executed"),
                    *DagExecution.Status.choices,
                ],
            ),
            ChoiceFilter(
                name="schedule",
                label="Schedule",
                choices=list(selectors.DAG_SCHEDULE_FILTERS.items()),
            ),
        ],
        search_placeholder="Title or request text",
        clear_url=reverse("dags:list"),
    )
    dags = selectors.dag_search(
        dags=selectors.dag_list(viewer=request.user),
        text=listing.text,
        schedule=listing.values["schedule"],
        last_status=listing.values["status"],
        sort=listing.sort,
    )
    page = paginate(request, dags, PAGE_SIZE)
    context = {
        "page_obj": page,
        "dags": list(page.object_list),
        "controls": listing.controls,
        "filtered": listing.filtered,
    }
    return render(request, "dags/list.html", context)


# --- actions -------------------------------------------------------------------------------------
@require_POST
@login_required
def dag_execute(request: HttpRequest, dag_id: str) -> HttpResponse:
    dag = dag_for_action(request, dag_id)
    if dag is None:
        return redirect("dags:list")
    execution = launch(request, dag)
    if execution is None:
        return back_to(request, reverse("dags:detail", args=[dag.id]))
    return after_launch(execution, dag)


@require_POST
@login_required
def dag_schedule_toggle(request: HttpRequest, dag_id: str) -> HttpResponse:
    """Pause or resume a DAG's schedule (`active` = "1" resumes)."""
    dag = dag_for_action(request, dag_id)
    if dag is None:
        return redirect("dags:list")
    active = request.POST.get("active") == "1"
    if active and not dag.cron_schedule:
        messages.error(request, "This DAG has no schedule to resume; set one first.")
    else:
        services.dag_update(dag=dag, changes={"schedule_active": active})
        messages.success(request, "Schedule resumed." if active else "Schedule paused.")
    return back_to(request, reverse("dags:detail", args=[dag.id]))


@require_http_methods(["GET", "POST"])
@login_required
def dag_delete(request: HttpRequest, dag_id: str) -> HttpResponse:
    """POST deletes a DAG without executions. A DAG with executions gets a page that explains
    why and offers to delete them with it (`with_executions`); GET shows that page."""
    dag = dag_for_action(request, dag_id)
    if dag is None:
        return redirect("dags:list")
    if request.method == "POST":
        try:
            if request.POST.get("with_executions") == "1":
                count = services.dag_delete_with_executions(dag=dag)
                messages.success(
                    request, f"DAG deleted with its {count} execution{'s' if count != 1 else ''}."
                )
            else:
                services.dag_delete(dag=dag)
                messages.success(request, "DAG deleted.")
        except Conflict:
            # It has executions (or one started meanwhile): explain and offer the cascade.
            pass
        else:
            return redirect("dags:list")
    count = selectors.dag_execution_count(dag=dag)
    return render(request, "dags/delete.html", {"dag": dag, "execution_count": count})


# --- detail --------------------------------------------------------------------------------------
def plan_rows(result: Any) -> list[dict[str, Any]]:
    """The plan's sub-tasks as table rows (a malformed plan gives what can be read)."""
    tasks = result.get("sub_tasks") if isinstance(result, dict) else None
    rows = []
    for task in tasks if isinstance(tasks, list) else []:
        if not isinstance(task, dict):
            continue
        tool = task.get("tool_or_prompt")
        if not isinstance(tool, dict):
            tool = {}
        dependencies = [
            str(dep)
            for dep in (task.get("dependencies") or [])
            if str(dep).lower() not in {"none", ""}
        ]
        rows.append(
            {
                "id": str(task.get("id", "")),
                "description": str(task.get("description", "")),
                "thought": str(task.get("thought", "")),
                "action_type": str(task.get("action_type", "")),
                "tool": str(tool.get("name", "")),
                "params": tool.get("params"),
                "dependencies": dependencies,
                "expected_output": str(task.get("expected_output", "")),
            }
        )
    return rows


def schedule_preview(cron: str | None, zone: str) -> dict[str, Any]:
    """A cron expression in words and its next five run times in `zone`."""
    if not cron:
        return {"description": "Not scheduled", "next_runs": []}
    try:
        runs = next_run_times(cron, zone, count=5)
    except CronError as error:
        return {"description": "", "next_runs": [], "error": str(error)}
    return {"description": describe_cron(cron), "next_runs": runs, "zone": zone}


def detail_context(
    request: HttpRequest, dag: Dag, schedule_form: ScheduleForm | None = None
) -> dict[str, Any]:
    executions = selectors.execution_list_for_dag(dag=dag, viewer=request.user)
    page = paginate(request, executions, PAGE_SIZE)
    if schedule_form is None:
        schedule_form = ScheduleForm(
            initial={
                "cron": dag.cron_schedule or "",
                "timezone": dag.timezone or "UTC",
                "active": dag.schedule_active if dag.cron_schedule else True,
            }
        )
    result = dag.result if isinstance(dag.result, dict) else {}
    params = dag.params if isinstance(dag.params, dict) else {}
    plan = plan_rows(dag.result)
    return {
        "dag": dag,
        "plan": plan,
        "diagram": plan_diagram(plan),
        "result": result,
        "request_text": params.get("goalText") or result.get("original_request") or "",
        "page_obj": page,
        "executions": list(page.object_list),
        "costs": costs.dag_costs(dag=dag, viewer=request.user)["totals"],
        "schedule_form": schedule_form,
        "schedule": schedule_preview(dag.cron_schedule, dag.timezone or "UTC"),
    }


def plan_diagram(plan: list[dict[str, Any]]) -> str:
    """The plan drawn as a graph (SVG), or "" for an empty plan."""
    return dag_diagram_svg(plan, label="Plan diagram") if plan else ""


@require_GET
@login_required
def dag_detail_page(request: HttpRequest, dag_id: str) -> HttpResponse:
    dag = dag_or_404(request, dag_id)
    return render(request, "dags/detail.html", detail_context(request, dag))


@require_POST
@login_required
def dag_schedule_save(request: HttpRequest, dag_id: str) -> HttpResponse:
    """Set, change or remove a DAG's schedule; invalid input comes back with its errors."""
    dag = dag_for_action(request, dag_id)
    if dag is None:
        return redirect("dags:list")
    form = ScheduleForm(request.POST)
    if not form.is_valid():
        context = detail_context(request, dag, schedule_form=form)
        context["schedule"] = schedule_preview(
            " ".join(request.POST.get("cron", "").split())[:CRON_MAX_CHARS] or None,
            form.cleaned_data.get("timezone") or "UTC",
        )
        return render(request, "dags/detail.html", context, status=400)
    cron = form.cleaned_data["cron"]
    services.dag_update(
        dag=dag,
        changes={
            "cron_schedule": cron,
            "timezone": form.cleaned_data["timezone"],
            "schedule_active": bool(cron) and form.cleaned_data["active"],
        },
    )
    if cron:
        messages.success(request, f"Schedule saved: {describe_cron(cron)} ({dag.timezone}).")
    else:
        messages.success(request, "Schedule removed.")
    return redirect(reverse("dags:detail", args=[dag.id]) + "#schedule")


@require_GET
@login_required
def dag_schedule_preview(request: HttpRequest) -> HttpResponse:
    """The description and next run times of the cron being typed (htmx partial)."""
    cron = " ".join(request.GET.get("cron", "").split())[:CRON_MAX_CHARS]
    zone = request.GET.get("timezone", "UTC")
    try:
        zone = validate_timezone(zone)
    except CronError as error:
        return render(request, "dags/_schedule_preview.html", {"schedule": {"error": str(error)}})
    return render(
        request, "dags/_schedule_preview.html", {"schedule": schedule_preview(cron or None, zone)}
    )


# --- new DAG: request → (enhance) → plan → (clarify) → execute
ENHANCE_AGENT = "ParaphrasePro"
CLARIFICATION_SEPARATOR = "\n\nClarification\nQ: {question}\nA: {answer}"


def active_agent_names() -> list[str]:
    return sorted(set(agent_selectors.agent_list(active=True).values_list("name", flat=True)))


def default_planner(names: list[str]) -> str:
    if DEFAULT_PLANNER in names:
        return DEFAULT_PLANNER
    return names[0] if names else DEFAULT_PLANNER


def initial_from_dag(dag: Dag, names: list[str]) -> dict[str, Any]:
    params = dag.params if isinstance(dag.params, dict) else {}
    result = dag.result if isinstance(dag.result, dict) else {}
    return {
        "request": params.get("goalText") or result.get("original_request") or "",
        "agent": params.get("agentName") or dag.agent_name or default_planner(names),
        "provider": params.get("provider") or "",
        "model": params.get("model") or "",
        "temperature": params.get("temperature"),
    }


def planning_failure(error: DomainError) -> dict[str, Any]:
    """A planning error in words: the message and the planner's problems, one per line."""
    extra = error.extra or {}
    lines: list[str] = []
    if extra.get("details"):
        lines.append(str(extra["details"]))
    for issue in extra.get("validation_errors") or []:
        if isinstance(issue, dict):
            path = ".".join(str(part) for part in issue.get("path") or [])
            message = str(issue.get("message", ""))
            lines.append(f"{path}: {message}" if path and path not in message else message)
    for gap in extra.get("gaps") or []:
        lines.append(f"Not covered by the plan: {gap}")
    return {
        "message": error.message,
        "lines": lines,
        "preview": extra.get("responsePreview") or "",
        "attempts": extra.get("attempts"),
    }


def enhance_text(text: str) -> tuple[str | None, str | None]:
    """(suggestion, error): the request rewritten by the paraphrasing agent, through the same
    service as POST /task."""
    agent = agent_selectors.agent_get_active(name=ENHANCE_AGENT)
    if agent is None:
        return None, f"Enhance needs the active agent {ENHANCE_AGENT}; none is active."
    try:
        outcome = task_run(agent=agent, prompt=text, attachments=[], params=task_params({}))
    except LLMError as error:
        return None, f"The LLM could not rewrite the request: {error}"
    suggestion = (outcome.result.content or "").strip()
    if not suggestion:
        return None, "The LLM returned an empty text; your request is unchanged."
    return suggestion, None


@require_http_methods(["GET", "POST"])
@login_required
def new_dag_page(request: HttpRequest) -> HttpResponse:
    names = active_agent_names()
    context: dict[str, Any] = {"agent_names": names}
    if request.method == "GET":
        return new_dag_get(request, names, context)

    action = request.POST.get("action", "plan")
    data = request.POST.copy()
    if action == "use_suggestion":
        data["request"] = request.POST.get("suggestion", "")
        messages.info(request, "The enhanced text replaced your request. Review it, then plan.")
    form = NewDagForm(data, agent_names=names)
    context["form"] = form
    if action in ("use_suggestion", "discard_suggestion"):
        return render(request, "dags/new.html", context)
    if action == "answer":
        question = request.POST.get("question", "")
        answer = request.POST.get("answer", "").strip()
        context["clarification"] = {"question": question, "answer": answer}
        context["mode"] = request.POST.get("mode", "plan")
        if not answer:
            context["clarification"]["error"] = "Write an answer to re-plan."
            return render(request, "dags/new.html", context, status=400)
        data["request"] = request.POST.get("request", "") + CLARIFICATION_SEPARATOR.format(
            question=question.strip(), answer=answer
        )
        form = NewDagForm(data, agent_names=names)
        context["form"] = form
        action = context["mode"] if context["mode"] in ("plan", "plan_execute") else "plan"
    if not form.is_valid():
        return render(request, "dags/new.html", context, status=400)

    if action == "enhance":
        suggestion, error = enhance_text(form.cleaned_data["request"])
        context["suggestion"] = suggestion
        context["enhance_error"] = error
        return render(request, "dags/new.html", context)
    if action not in ("plan", "plan_execute"):
        return render(request, "dags/new.html", context, status=400)
    return plan_from_form(request, form, action, context)


def new_dag_get(request: HttpRequest, names: list[str], context: dict[str, Any]) -> HttpResponse:
    initial: dict[str, Any] = {"agent": default_planner(names)}
    source_id = request.GET.get("from") or request.GET.get("planned")
    if source_id:
        try:
            source = selectors.dag_get(dag_id=source_id, viewer=request.user)
        except NotFound:
            messages.error(request, "That DAG no longer exists (deleted in another tab?).")
        else:
            initial = initial_from_dag(source, names)
            if request.GET.get("planned"):
                context["planned"] = source
                context["plan"] = plan_rows(source.result)
                context["diagram"] = plan_diagram(context["plan"])
    context["form"] = NewDagForm(initial=initial, agent_names=names)
    return render(request, "dags/new.html", context)


def plan_from_form(
    request: HttpRequest, form: NewDagForm, action: str, context: dict[str, Any]
) -> HttpResponse:
    # An answered question is now part of the request text; only a new question is shown.
    context.pop("clarification", None)
    try:
        result = dag_plan(request=form.plan_request(), owner=request.user)
    except NotFound as error:
        form.add_error("agent", error.message)
        return render(request, "dags/new.html", context, status=400)
    except DomainError as error:
        logger.info("planning from the page failed: %s", error.message)
        context["failure"] = planning_failure(error)
        return render(request, "dags/new.html", context, status=200)
    if result.dag is None:
        context["clarification"] = {"question": result.job.clarification_query or ""}
        context["mode"] = action
        return render(request, "dags/new.html", context)
    dag = result.dag
    if action == "plan_execute":
        execution = launch(request, dag)
        if execution is not None:
            return after_launch(execution, dag)
    else:
        steps = len(result.job.sub_tasks)
        messages.success(request, f"Planned {steps} step{'s' if steps != 1 else ''}. Review it.")
    return redirect(f"{reverse('dags:new')}?planned={dag.id}#plan")
