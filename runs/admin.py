"""Admin for runs with their steps and outputs.

Runs are written by the step loop on the workers, so the admin shows them read-only; a run can
be deleted (with its steps and outputs) through the service.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from config.admin_tools import (
    READONLY_TABLE,
    CascadeDeleteMixin,
    OwnedAdminMixin,
    ReadOnlyAdminMixin,
    admin_link,
    changelist_link,
    json_details,
    plain_block,
    pretty_json,
    shorten,
    status_badge,
)
from config.display import human_duration, usd
from runs.models import Output, Run, RunEvent, Step
from runs.services import run_delete


class StepInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The run's steps as one compact table; each links to its own page (observation, input)."""

    model = Step
    template = READONLY_TABLE
    extra = 0
    can_delete = False
    fields = (
        "step_link",
        "outcome",
        "tool_name",
        "thought_short",
        "duration",
        "cost",
        "error_short",
    )
    readonly_fields = fields
    ordering = ("step_no",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Step]:
        # Observations and tool inputs can be long and are not shown here.
        return super().get_queryset(request).defer("observation", "tool_input", "tool_calls")

    @admin.display(description="step")
    def step_link(self, step: Step):
        return admin_link(step, str(step.step_no))

    @admin.display(description="status")
    def outcome(self, step: Step):
        return status_badge("failed" if step.error else "ok")

    @admin.display(description="thought")
    def thought_short(self, step: Step) -> str:
        return shorten(step.thought, 120) or "-"

    @admin.display(description="duration")
    def duration(self, step: Step) -> str:
        return human_duration(step.duration_ms)

    @admin.display(description="cost")
    def cost(self, step: Step) -> str:
        return usd(step.cost_usd)

    @admin.display(description="error")
    def error_short(self, step: Step) -> str:
        return shorten(step.error, 80) or "-"


class OutputInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Output
    template = READONLY_TABLE
    extra = 0
    can_delete = False
    fields = ("output_link", "payload_short", "created_at")
    readonly_fields = fields

    @admin.display(description="kind")
    def output_link(self, output: Output):
        return admin_link(output, output.kind)

    @admin.display(description="path or payload")
    def payload_short(self, output: Output) -> str:
        return shorten(output.path_or_payload, 160)


def run_duration(run: Run) -> str:
    if run.started_at and run.ended_at:
        return human_duration((run.ended_at - run.started_at).total_seconds() * 1000)
    return "-"


@admin.register(Run)
class RunAdmin(OwnedAdminMixin, CascadeDeleteMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "goal_link",
        "status_badge",
        "trigger",
        "progress",
        "cost",
        "started_at",
        "duration",
        "created_at",
    )
    list_filter = ("status", "trigger", "created_at")
    search_fields = ("id", "goal__id", "goal__objective", "error")
    date_hierarchy = "created_at"
    list_select_related = ("goal",)

    def get_fieldsets(self, request: HttpRequest, obj: Run | None = None):
        summary: list[Any] = [
            ("status_badge", "goal_link"),
            ("id", "trigger"),
            ("progress", "duration", "cost"),
            ("started_at", "ended_at"),
        ]
        if obj is not None and obj.error:
            summary.append("error")
        return ((None, {"fields": summary}), *self.detail_fieldsets)

    detail_fieldsets = (
        (
            "Usage, memory and record",
            {
                "classes": ("collapse",),
                "fields": (
                    "usage_details",
                    "working_memory_details",
                    "events_link",
                    ("attempts", "created_at"),
                    "owner",
                ),
            },
        ),
    )
    readonly_fields = (
        "id",
        "goal_link",
        "status_badge",
        "trigger",
        "progress",
        "duration",
        "cost",
        "started_at",
        "ended_at",
        "error",
        "usage_details",
        "working_memory_details",
        "events_link",
        "attempts",
        "created_at",
        "owner",
    )
    inlines = (StepInline, OutputInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Run]:
        return super().get_queryset(request).select_related("goal")

    @admin.display(description="goal", ordering="goal__created_at")
    def goal_link(self, run: Run):
        return admin_link(run.goal, shorten(run.goal.objective, 60))

    @admin.display(description="status", ordering="status")
    def status_badge(self, run: Run):
        return status_badge(run.status)

    @admin.display(description="steps")
    def progress(self, run: Run) -> str:
        return f"{run.steps_executed}/{run.step_budget}"

    @admin.display(description="duration")
    def duration(self, run: Run) -> str:
        return run_duration(run)

    @admin.display(description="cost", ordering="cost_usd")
    def cost(self, run: Run) -> str:
        return usd(run.cost_usd)

    @admin.display(description="events")
    def events_link(self, run: Run):
        return changelist_link(RunEvent, f"{run.last_event_seq} event(s)", run__id__exact=run.pk)

    @admin.display(description="token usage")
    def usage_details(self, run: Run):
        return json_details(run.usage, "token usage")

    @admin.display(description="working memory")
    def working_memory_details(self, run: Run):
        return json_details(run.working_memory, "working memory")

    def delete_model(self, request: HttpRequest, obj: Run) -> None:
        run_delete(run=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        for run in queryset:
            run_delete(run=run)


@admin.register(Step)
class StepAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "run_link",
        "step_no",
        "tool_name",
        "outcome",
        "duration",
        "cost",
        "created_at",
    )
    list_filter = ("tool_name",)
    search_fields = ("id", "run__id", "tool_name", "thought", "observation", "error")
    list_select_related = ("run",)
    fields = (
        ("outcome", "run_link"),
        ("id", "step_no"),
        ("tool_name", "duration", "cost"),
        "thought",
        "tool_input_pretty",
        "observation_block",
        "error",
        "tool_calls_details",
        "usage_details",
        "created_at",
    )
    readonly_fields = (
        "outcome",
        "run_link",
        "id",
        "step_no",
        "tool_name",
        "duration",
        "cost",
        "thought",
        "tool_input_pretty",
        "observation_block",
        "error",
        "tool_calls_details",
        "usage_details",
        "created_at",
    )

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="run", ordering="run__created_at")
    def run_link(self, step: Step):
        return admin_link(step.run, step.run_id)

    @admin.display(description="status")
    def outcome(self, step: Step):
        return status_badge("failed" if step.error else "ok")

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, step: Step) -> str:
        return human_duration(step.duration_ms)

    @admin.display(description="cost", ordering="cost_usd")
    def cost(self, step: Step) -> str:
        return usd(step.cost_usd)

    @admin.display(description="tool input")
    def tool_input_pretty(self, step: Step):
        return json_details(step.tool_input, "tool input", open_=True)

    @admin.display(description="observation")
    def observation_block(self, step: Step):
        return plain_block(step.observation)

    @admin.display(description="tool calls")
    def tool_calls_details(self, step: Step):
        return json_details(step.tool_calls, f"{len(step.tool_calls or [])} tool call(s)")

    @admin.display(description="token usage")
    def usage_details(self, step: Step):
        return json_details(step.usage, "token usage")


@admin.register(Output)
class OutputAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "run_link", "kind", "payload_short", "created_at")
    list_filter = ("kind",)
    search_fields = ("id", "run__id", "path_or_payload")
    list_select_related = ("run",)
    fields = ("id", "run", "kind", "path_or_payload", "created_at")
    readonly_fields = fields

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="run", ordering="run__created_at")
    def run_link(self, output: Output):
        return admin_link(output.run, output.run_id)

    @admin.display(description="path or payload")
    def payload_short(self, output: Output) -> str:
        return shorten(output.path_or_payload, 120)


@admin.register(RunEvent)
class RunEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "run_link", "seq", "type", "created_at")
    list_filter = ("type",)
    search_fields = ("run__id", "type")
    date_hierarchy = "created_at"
    list_select_related = ("run",)
    ordering = ("-created_at", "-seq")
    fields = ("run", "seq", "type", "payload_pretty", "created_at")
    readonly_fields = fields

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="run", ordering="run__created_at")
    def run_link(self, event: RunEvent):
        return admin_link(event.run, event.run_id)

    @admin.display(description="payload")
    def payload_pretty(self, event: RunEvent):
        return pretty_json(event.payload)
