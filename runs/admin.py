"""Admin for runs with their steps and outputs.

Runs are written by the step loop on the workers, so the admin shows them read-only; a run can
be deleted (with its steps and outputs) through the service.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import flatten
from django.db.models import QuerySet
from django.http import HttpRequest

from config.admin_tools import (
    CascadeDeleteMixin,
    OwnedAdminMixin,
    ReadOnlyAdminMixin,
    admin_link,
    changelist_link,
    pretty_json,
    shorten,
)
from runs.models import Output, Run, RunEvent, Step
from runs.services import run_delete


class StepInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Step
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("step_no", "tool_name", "thought_short", "duration_ms", "error_short", "created_at")
    readonly_fields = fields
    ordering = ("step_no",)

    @admin.display(description="thought")
    def thought_short(self, step: Step) -> str:
        return shorten(step.thought, 120)

    @admin.display(description="error")
    def error_short(self, step: Step) -> str:
        return shorten(step.error, 80)


class OutputInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Output
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("kind", "payload_short", "created_at")
    readonly_fields = fields

    @admin.display(description="path or payload")
    def payload_short(self, output: Output) -> str:
        return shorten(output.path_or_payload, 160)


@admin.register(Run)
class RunAdmin(OwnedAdminMixin, CascadeDeleteMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "goal_link",
        "status",
        "progress",
        "started_at",
        "ended_at",
        "duration",
        "created_at",
    )
    list_filter = ("status", "created_at")
    search_fields = ("id", "goal__id", "goal__objective", "error")
    date_hierarchy = "created_at"
    list_select_related = ("goal",)
    fields = (
        "id",
        "goal",
        "status",
        ("step_budget", "steps_executed"),
        ("started_at", "ended_at", "duration"),
        "error",
        "working_memory_pretty",
        "events_link",
        "created_at",
    )
    readonly_fields = flatten(fields)
    inlines = (StepInline, OutputInline)

    @admin.display(description="goal", ordering="goal__created_at")
    def goal_link(self, run: Run):
        return admin_link(run.goal, shorten(run.goal.objective, 60))

    @admin.display(description="steps")
    def progress(self, run: Run) -> str:
        return f"{run.steps_executed}/{run.step_budget}"

    @admin.display(description="duration")
    def duration(self, run: Run) -> str:
        if run.started_at and run.ended_at:
            return f"{(run.ended_at - run.started_at).total_seconds():.1f} s"
        return "-"

    @admin.display(description="events")
    def events_link(self, run: Run):
        return changelist_link(RunEvent, f"{run.last_event_seq} event(s)", run__id__exact=run.pk)

    @admin.display(description="working memory")
    def working_memory_pretty(self, run: Run):
        return pretty_json(run.working_memory)

    def delete_model(self, request: HttpRequest, obj: Run) -> None:
        run_delete(run=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        for run in queryset:
            run_delete(run=run)


@admin.register(Step)
class StepAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "run_link", "step_no", "tool_name", "duration_ms", "failed", "created_at")
    list_filter = ("tool_name",)
    search_fields = ("id", "run__id", "tool_name", "thought", "observation", "error")
    list_select_related = ("run",)
    fields = (
        "id",
        "run",
        "step_no",
        "thought",
        "tool_name",
        "tool_input_pretty",
        "observation",
        "duration_ms",
        "error",
        "created_at",
    )
    readonly_fields = fields

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="run", ordering="run__created_at")
    def run_link(self, step: Step):
        return admin_link(step.run, step.run_id)

    @admin.display(description="failed", boolean=True)
    def failed(self, step: Step) -> bool:
        return bool(step.error)

    @admin.display(description="tool input")
    def tool_input_pretty(self, step: Step):
        return pretty_json(step.tool_input)


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
