"""Admin for agents: versions side by side, activation through the service (one per name)."""

from __future__ import annotations

from collections import Counter

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from agents import selectors as agent_selectors
from agents.models import Agent, LlmCheck
from agents.services import agent_activate, agent_delete, agent_update
from config.admin_tools import (
    JSON_FIELD_OVERRIDES,
    ObjectButtonsMixin,
    ReadOnlyAdminMixin,
    pretty_json,
    status_badge,
)


@admin.register(Agent)
class AgentAdmin(ObjectButtonsMixin, admin.ModelAdmin):
    # Pressing needs `agents.change_agent`, as activating through the API does.
    object_buttons = (("activate", "Activate this version"),)

    def buttons_for(self, agent: Agent) -> list[str]:
        return [] if agent.active else ["activate"]

    def press_activate(self, request: HttpRequest, agent: Agent) -> str:
        agent = agent_activate(agent=agent_selectors.agent_get(agent_id=agent.pk))
        return f"Agent {agent.name} version {agent.version} is now the active one."

    list_display = (
        "name",
        "version",
        "active_badge",
        "provider",
        "model",
        "created_at",
        "updated_at",
    )
    list_display_links = ("name", "version")
    list_filter = ("active", "provider")
    search_fields = ("name", "version", "id", "model")
    ordering = ("name", "-created_at")
    readonly_fields = ("id", "active_badge", "created_at", "updated_at")
    fields = (
        ("id", "active_badge"),
        ("name", "version"),
        ("provider", "model"),
        "prompt_template",
        "metadata",
        ("created_at", "updated_at"),
    )
    formfield_overrides = JSON_FIELD_OVERRIDES
    actions = ("activate_selected",)

    @admin.display(description="active", ordering="active")
    def active_badge(self, agent: Agent):
        return status_badge("active" if agent.active else "inactive")

    @admin.action(description="Activate the selected versions (one per name)")
    def activate_selected(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        agents = list(queryset)
        clashing = sorted(
            name for name, count in Counter(a.name for a in agents).items() if count > 1
        )
        if clashing:
            self.message_user(
                request,
                "Only one version per name can be active; you selected several versions of: "
                + ", ".join(clashing),
                messages.ERROR,
            )
            return
        for agent in agents:
            agent_activate(agent=agent)
        self.message_user(
            request,
            "Activated: " + ", ".join(f"{a.name}@{a.version}" for a in agents),
            messages.SUCCESS,
        )

    def save_model(self, request: HttpRequest, obj: Agent, form, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        stored = Agent.objects.get(pk=obj.pk)
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        agent_update(agent=stored, changes=changes)

    def has_delete_permission(self, request: HttpRequest, obj: Agent | None = None) -> bool:
        # The active version of a name cannot be deleted: activate another one first.
        if obj is not None and obj.active:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: Agent) -> None:
        agent_delete(agent=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        for agent in queryset:
            agent_delete(agent=agent)


@admin.register(LlmCheck)
class LlmCheckAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Results of `manage.py check_llm`, written by that command only."""

    list_display = (
        "provider",
        "model",
        "configured",
        "ok",
        "tool_calling",
        "latency_ms",
        "checked_at",
    )
    list_filter = ("ok", "configured", "tool_calling", "provider")
    search_fields = ("provider", "model", "error")
    fields = (
        ("provider", "model"),
        ("configured", "ok", "tool_calling"),
        "latency_ms",
        "error",
        "used_by_pretty",
        "checked_at",
    )
    readonly_fields = (
        "provider",
        "model",
        "configured",
        "ok",
        "tool_calling",
        "latency_ms",
        "error",
        "used_by_pretty",
        "checked_at",
    )

    @admin.display(description="used by")
    def used_by_pretty(self, check: LlmCheck):
        return pretty_json(check.used_by)
