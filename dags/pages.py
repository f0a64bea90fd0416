"""DAG pages: list, new (plan → clarify → execute), detail; they call the same services and
selectors as the API."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.errors import Conflict, NotFound
from dags import costs, selectors, services
from dags.execution import services as execution_services
from dags.models import Dag, DagExecution
from dags.plan import PlanError

logger = logging.getLogger(__name__)

PAGE_SIZE = 20


# --- shared helpers ------------------------------------------------------------------------------
def dag_or_404(dag_id: str) -> Dag:
    try:
        return selectors.dag_get(dag_id=dag_id)
    except NotFound as error:
        raise Http404(error.message) from None


def execution_url(execution_id: str) -> str | None:
    """The execution page, when the executions pages are installed."""
    try:
        return reverse("executions:detail", args=[execution_id])
    except NoReverseMatch:
        return None


def back_to(request: HttpRequest, default: str) -> HttpResponseRedirect:
    """Redirect to the form's `next` (a local URL only), else `default`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(default)


def plan_issue_lines(error: PlanError) -> list[str]:
    return [str(issue.get("message", issue)) for issue in error.issues]


def launch(request: HttpRequest, dag: Dag) -> DagExecution | None:
    """Start an execution of `dag`; on failure, say why in a message and return None."""
    try:
        execution = execution_services.execution_launch(dag=dag)
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
    query = request.GET
    sort = query.get("sort", "-created")
    if sort not in selectors.DAG_SORTS:
        sort = "-created"
    schedule = query.get("schedule", "")
    if schedule not in selectors.DAG_SCHEDULE_FILTERS:
        schedule = ""
    last_status = query.get("status", "")
    if last_status not in {*DagExecution.Status.values, selectors.NEVER_EXECUTED}:
        last_status = ""
    text = query.get("q", "")[:200]
    dags = selectors.dag_search(
        dags=selectors.dag_list(), text=text, schedule=schedule, last_status=last_status, sort=sort
    )
    page = Paginator(dags, PAGE_SIZE).get_page(query.get("page"))
    context = {
        "page_obj": page,
        "dags": list(page.object_list),
        "q": text,
        "sort": sort,
        "schedule": schedule,
        "status": last_status,
        "filtered": bool(text or schedule or last_status),
        "sorts": {key: label for key, (label, _) in selectors.DAG_SORTS.items()},
        "schedule_filters": selectors.DAG_SCHEDULE_FILTERS,
        "statuses": DagExecution.Status.choices,
        "never": selectors.NEVER_EXECUTED,
    }
    return render(request, "dags/list.html", context)


# --- actions -------------------------------------------------------------------------------------
@require_POST
@login_required
def dag_execute(request: HttpRequest, dag_id: str) -> HttpResponse:
    dag = dag_or_404(dag_id)
    execution = launch(request, dag)
    if execution is None:
        return back_to(request, reverse("dags:detail", args=[dag.id]))
    return after_launch(execution, dag)


@require_POST
@login_required
def dag_schedule_toggle(request: HttpRequest, dag_id: str) -> HttpResponse:
    """Pause or resume a DAG's schedule (`active` = "1" resumes)."""
    dag = dag_or_404(dag_id)
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
    dag = dag_or_404(dag_id)
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
        tool = task.get("tool_or_prompt") if isinstance(task.get("tool_or_prompt"), dict) else {}
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


@require_GET
@login_required
def dag_detail_page(request: HttpRequest, dag_id: str) -> HttpResponse:
    dag = dag_or_404(dag_id)
    executions = selectors.execution_list_for_dag(dag=dag)
    page = Paginator(executions, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "dag": dag,
        "plan": plan_rows(dag.result),
        "result": dag.result if isinstance(dag.result, dict) else {},
        "page_obj": page,
        "executions": list(page.object_list),
        "costs": costs.dag_costs(dag=dag)["totals"],
    }
    return render(request, "dags/detail.html", context)
