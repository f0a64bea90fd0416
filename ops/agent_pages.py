"""Agent pages: the versions grouped by name, create/edit, activate, delete, the prompt helper
(placeholders and a preview) and a test call. They call the same services and selectors as
the API; changing agents needs the same model permissions (`agents.add_agent`, ...)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agents import selectors, services
from agents.forms import AgentForm, AgentTestForm
from agents.llm.errors import LLMConfigurationError, LLMError
from agents.models import Agent
from agents.task.services import task_params, task_run
from agents.templating import (
    PROMPT_PLACEHOLDERS,
    current_date_text,
    placeholders,
    render_template,
)
from config.error_pages import error_page
from config.errors import Conflict, NotFound
from config.markdown import render_markdown
from goals import selectors as goal_selectors
from goals import services as goal_services
from runs import conversation
from tools.registry import tool_definitions
from ui.listing import ChoiceFilter, list_query, paginate

logger = logging.getLogger(__name__)

View = Callable[..., HttpResponse]

PAGE_SIZE = 20  # agent names per page
NEW_AGENT_TEMPLATE = (
    "You are a careful assistant. Today is {{currentDate}}.\n\n"
    "Answer the user's request clearly and say when you are unsure."
)


# --- permissions ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgentRights:
    add: bool
    change: bool
    delete: bool

    @property
    def any(self) -> bool:
        return self.add or self.change or self.delete


def rights(request: HttpRequest) -> AgentRights:
    user = request.user
    return AgentRights(
        add=user.has_perm("agents.add_agent"),
        change=user.has_perm("agents.change_agent"),
        delete=user.has_perm("agents.delete_agent"),
    )


NO_PERMISSION = (
    "Changing agents needs permission (the “Agent managers” group or an administrator). "
    "You can still read agents, preview prompts and test them."
)


def needs_permission(action: str) -> Callable[[View], View]:
    """The view only for users holding `agents.<action>_agent` (as the API requires); others
    get the 403 page, whatever the method."""

    def decorate(view: View) -> View:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.has_perm(f"agents.{action}_agent"):
                return error_page(request, 403, NO_PERMISSION)
            return view(request, *args, **kwargs)

        return checked

    return decorate


def back_to(request: HttpRequest, default: str) -> HttpResponse:
    """Redirect to the form's `next` (a local URL only, such as the filtered list), else
    `default`."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(default)


def agent_or_404(agent_id: str) -> Agent:
    try:
        return selectors.agent_get(agent_id=agent_id)
    except NotFound as error:
        raise Http404(error.message) from None


# --- prompt helper -------------------------------------------------------------------------------
def sample_values() -> dict[str, Any]:
    """Values for the preview, made by the same helpers the real callers use."""
    definitions = tool_definitions()
    return {
        "currentDate": current_date_text(),
        "tools": json.dumps(definitions, ensure_ascii=False, separators=(",", ":")),
        "objective": "Find three recent articles about solid-state batteries and summarise them.",
        "toolsList": conversation.tools_list_text(definitions),
        "constraints": conversation.constraints_text(["Cite every source", "Under 300 words"]),
        "stepsRemaining": 12,
        "workingMemory": conversation.working_memory_text(
            {"searched": "solid-state battery 2025"}, 2000
        ),
    }


def prompt_helper(template: str) -> dict[str, Any]:
    """Which placeholders the template uses (known or not), which known ones it leaves out,
    and the template rendered with sample values."""
    used = placeholders(template)
    known = {item.name: item for item in PROMPT_PLACEHOLDERS}
    samples = sample_values()
    return {
        "used": [known[name] for name in used if name in known],
        "unknown": [name for name in used if name not in known],
        "unused": [item for item in PROMPT_PLACEHOLDERS if item.name not in used],
        "known": PROMPT_PLACEHOLDERS,
        "preview": render_template(template, samples) if template else "",
    }


@require_POST
@login_required
def agent_prompt_preview(request: HttpRequest) -> HttpResponse:
    """The prompt helper for the template being typed (an htmx partial; nothing is saved)."""
    template = request.POST.get("prompt_template", "")
    return render(request, "agents/_prompt_helper.html", {"helper": prompt_helper(template)})


def row_links() -> Callable[[str], dict[str, str]]:
    """The URLs of one version's row, made by substitution: reversing four URLs for each of
    a hundred rows was a large part of the page's time."""
    marker = "AGENT-ID"
    patterns = {name: reverse(f"agents:{name}", args=[marker]) for name in ROW_ACTIONS}

    def links(agent_id: str) -> dict[str, str]:
        safe = quote(agent_id, safe="")
        return {name: url.replace(marker, safe) for name, url in patterns.items()}

    return links


ROW_ACTIONS = ("detail", "edit", "activate", "delete")


@dataclass(frozen=True)
class VersionRow:
    """One version in the list, with what its row shows and links to."""

    id: str
    version: str
    provider: str
    model: str
    active: bool
    updated_at: datetime
    goal_count: int
    links: dict[str, str]
    label: str


@dataclass(frozen=True)
class GroupRow:
    name: str
    version_count: int
    hidden_count: int
    active_version: str
    versions: list[VersionRow]


# --- list ----------------------------------------------------------------------------------------
@require_GET
@login_required
def agent_list_page(request: HttpRequest) -> HttpResponse:
    listing = list_query(
        request,
        label="agents",
        sorts={key: label for key, (label, _) in selectors.AGENT_SORTS.items()},
        default_sort="name",
        filters=[
            ChoiceFilter(
                name="active",
                label="Versions",
                choices=list(selectors.ACTIVE_FILTERS.items()),
                any_label="All versions",
            )
        ],
        search_placeholder="Agent name",
        clear_url=reverse("agents:list"),
    )
    active = listing.values["active"]
    rows = selectors.agent_name_rows(text=listing.text, active=active, sort=listing.sort)
    page = paginate(request, rows, PAGE_SIZE)
    groups = selectors.agent_groups(rows=page.object_list, active=active)
    links = row_links()
    counts = goal_selectors.agent_goal_counts(
        agent_ids=[agent.pk for group in groups for agent in group.versions]
    )
    group_rows = [
        GroupRow(
            name=group.name,
            version_count=group.version_count,
            hidden_count=group.hidden_count,
            active_version=group.active.version if group.active else "",
            versions=[
                VersionRow(
                    id=agent.pk,
                    version=agent.version,
                    provider=agent.provider or "",
                    model=agent.model or "",
                    active=agent.active,
                    updated_at=agent.updated_at,
                    goal_count=counts.get(agent.pk, 0),
                    links=links(agent.pk),
                    label=f"{agent.name} version {agent.version}",
                )
                for agent in group.versions
            ],
        )
        for group in groups
    ]
    context = {
        "page_obj": page,
        "groups": group_rows,
        "controls": listing.controls,
        "filtered": listing.filtered,
        "rights": rights(request),
    }
    return render(request, "agents/list.html", context)


# --- create and edit -----------------------------------------------------------------------------
def form_page(
    request: HttpRequest,
    form: AgentForm,
    *,
    agent: Agent | None,
    status: int = 200,
) -> HttpResponse:
    template = form["prompt_template"].value() or ""
    context = {
        "form": form,
        "agent": agent,
        "helper": prompt_helper(template),
    }
    return render(request, "agents/form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@needs_permission("add")
def agent_new_page(request: HttpRequest) -> HttpResponse:
    """A new agent, or (`?from=<id>`) a new version of an existing one."""
    if request.method == "GET":
        initial: dict[str, Any] = {"prompt_template": NEW_AGENT_TEMPLATE, "metadata": "{}"}
        source_id = request.GET.get("from")
        if source_id:
            source = agent_or_404(source_id)
            initial = AgentForm.initial_for(source)
            initial["version"] = ""
        return form_page(request, AgentForm(initial=initial), agent=None)

    form = AgentForm(request.POST)
    if request.POST.get("action") == "preview" or not form.is_valid():
        return form_page(request, form, agent=None, status=200 if form.is_valid() else 400)
    try:
        agent = services.agent_create(**form.changes(), active=request.POST.get("activate") == "1")
    except Conflict as error:
        form.add_error("version", error.message)
        return form_page(request, form, agent=None, status=409)
    messages.success(request, f"Agent {agent.name} version {agent.version} created.")
    return redirect("agents:detail", agent_id=agent.id)


@require_http_methods(["GET", "POST"])
@login_required
@needs_permission("change")
def agent_edit_page(request: HttpRequest, agent_id: str) -> HttpResponse:
    agent = agent_or_404(agent_id)
    if request.method == "GET":
        return form_page(request, AgentForm(initial=AgentForm.initial_for(agent)), agent=agent)
    form = AgentForm(request.POST)
    if request.POST.get("action") == "preview" or not form.is_valid():
        return form_page(request, form, agent=agent, status=200 if form.is_valid() else 400)
    try:
        services.agent_update(agent=agent, changes=form.changes())
    except Conflict as error:
        form.add_error(None, error.message)
        return form_page(request, form, agent=agent, status=409)
    messages.success(request, f"Agent {agent.name} version {agent.version} saved.")
    return redirect("agents:detail", agent_id=agent.id)


# --- detail, test --------------------------------------------------------------------------------
def detail_context(
    request: HttpRequest, agent: Agent, test_form: AgentTestForm | None = None
) -> dict[str, Any]:
    return {
        "agent": agent,
        "versions": list(selectors.agent_versions(name=agent.name)),
        "usage": goal_selectors.agent_usage(agent=agent),
        "helper": prompt_helper(agent.prompt_template),
        "metadata_json": json.dumps(
            agent.metadata if agent.metadata is not None else {}, indent=2, ensure_ascii=False
        ),
        "rights": rights(request),
        "test_form": test_form or AgentTestForm(),
    }


@require_GET
@login_required
def agent_detail_page(request: HttpRequest, agent_id: str) -> HttpResponse:
    agent = agent_or_404(agent_id)
    return render(request, "agents/detail.html", detail_context(request, agent))


@require_POST
@login_required
def agent_test(request: HttpRequest, agent_id: str) -> HttpResponse:
    """Send a sample prompt to this version through the real LLM client; show the reply,
    tokens and cost, or why the call failed. Nothing is stored."""
    agent = agent_or_404(agent_id)
    form = AgentTestForm(request.POST)
    context = detail_context(request, agent, test_form=form)
    if not form.is_valid():
        return render(request, "agents/detail.html", context, status=400)
    try:
        outcome = task_run(
            agent=agent, prompt=form.cleaned_data["prompt"], attachments=[], params=task_params({})
        )
    except LLMConfigurationError as error:
        context["test_error"] = f"The LLM is not set up: {error}"
    except LLMError as error:
        context["test_error"] = f"The LLM call failed: {error}"
    else:
        context["test_result"] = outcome.result
        context["test_html"] = render_markdown(outcome.result.content or "")
    return render(request, "agents/detail.html", context)


# --- activate, delete ----------------------------------------------------------------------------
@require_POST
@login_required
@needs_permission("change")
def agent_activate(request: HttpRequest, agent_id: str) -> HttpResponse:
    agent = agent_or_404(agent_id)
    services.agent_activate(agent=agent)
    messages.success(request, f"Version {agent.version} is now the active version of {agent.name}.")
    return back_to(request, reverse("agents:detail", args=[agent.id]))


@require_http_methods(["GET", "POST"])
@login_required
@needs_permission("delete")
def agent_delete(request: HttpRequest, agent_id: str) -> HttpResponse:
    """POST deletes an unused version; a used one gets a page that says what uses it (GET
    shows the same page)."""
    agent = agent_or_404(agent_id)
    refusal = ""
    if request.method == "POST":
        try:
            goal_services.agent_delete_unused(agent=agent)
        except Conflict as error:
            refusal = error.message
        else:
            messages.success(request, f"Agent {agent.name} version {agent.version} deleted.")
            return redirect("agents:list")
    context = {"agent": agent, "usage": goal_selectors.agent_usage(agent=agent), "refusal": refusal}
    return render(request, "agents/delete.html", context, status=409 if refusal else 200)
