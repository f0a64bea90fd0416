"""Admin for DAGs, executions, sub-steps and execution events.

Executions, sub-steps and events are written by the workers (with an event for every change
users watch), so the admin shows them read-only; DAG titles and schedules are editable.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from config.admin_tools import (
    JSON_FIELD_OVERRIDES,
    CascadeDeleteMixin,
    ObjectButtonsMixin,
    OwnedAdminMixin,
    ReadOnlyAdminMixin,
    admin_link,
    changelist_link,
    clean_cron,
    clean_timezone,
    cron_description,
    pretty_json,
    shorten,
    status_badge,
)
from config.display import human_duration, usd
from config.errors import DomainError, InvalidInput
from dags import selectors
from dags.execution import services as execution_services
from dags.models import Dag, DagExecution, ExecutionEvent, SubStep
from dags.plan import PlanError
from dags.schedules import dag_schedule_sync
from dags.services import dag_delete, dag_result_issues, dag_update, execution_delete


class DagForm(forms.ModelForm):
    class Meta:
        model = Dag
        fields = (
            "dag_title",
            "status",
            "agent_name",
            "cron_schedule",
            "timezone",
            "schedule_active",
            "result",
            "params",
            "attempts",
            "usage",
            "generation_stats",
            "planning_total_usage",
            "planning_total_cost_usd",
            "planning_attempts",
        )

    def clean_cron_schedule(self) -> str | None:
        value = (self.cleaned_data.get("cron_schedule") or "").strip()
        return clean_cron(value) if value else None

    def clean_timezone(self) -> str:
        return clean_timezone(self.cleaned_data["timezone"])

    def clean_result(self) -> Any:
        result = self.cleaned_data.get("result")
        if result is not None and "result" in self.changed_data:
            issues = dag_result_issues(result)
            if issues:
                raise forms.ValidationError(
                    [f"{'.'.join(map(str, i['path'][1:]))}: {i['message']}" for i in issues]
                )
        return result


@admin.register(Dag)
class DagAdmin(ObjectButtonsMixin, OwnedAdminMixin, CascadeDeleteMixin, admin.ModelAdmin):
    object_buttons = (("execute", "Execute now"),)

    def press_execute(self, request: HttpRequest, dag: Dag) -> str:
        dag = selectors.dag_get(dag_id=dag.pk, viewer=request.user)
        try:
            execution = execution_services.execution_launch(dag=dag, owner=request.user)
        except PlanError as error:
            raise InvalidInput(f"DAG {dag.id}: the plan cannot run: {error}") from None
        except execution_services.ClarificationNeeded as clarification:
            raise InvalidInput(
                f"DAG {dag.id}: the plan asks a question first: {clarification}"
            ) from None
        return f"Execution {execution.id} of DAG {dag.id} started."

    form = DagForm
    list_display = (
        "id",
        "title",
        "status",
        "agent_name",
        "cron_schedule",
        "schedule_active",
        "schedule_failed",
        "execution_count",
        "planning_total_cost_usd",
        "created_at",
    )
    list_filter = ("status", "schedule_active", "agent_name", "created_at")
    search_fields = ("id", "dag_title", "agent_name")
    actions = ["execute_selected"]
    date_hierarchy = "created_at"
    readonly_fields = (
        "id",
        "schedule_description",
        "executions_link",
        "last_run_at",
        "schedule_error",
        "schedule_error_at",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("id", "dag_title", "status", "agent_name", "executions_link")}),
        (
            "Schedule",
            {
                "fields": (
                    ("cron_schedule", "schedule_description"),
                    "timezone",
                    "schedule_active",
                    "last_run_at",
                    ("schedule_error", "schedule_error_at"),
                )
            },
        ),
        ("Plan", {"fields": ("result", "params")}),
        (
            "Planning cost",
            {
                "classes": ("collapse",),
                "fields": (
                    "attempts",
                    "usage",
                    "generation_stats",
                    "planning_total_usage",
                    "planning_total_cost_usd",
                    "planning_attempts",
                ),
            },
        ),
        (None, {"fields": (("created_at", "updated_at"),)}),
    )
    formfield_overrides = JSON_FIELD_OVERRIDES

    @admin.action(description="Execute the selected DAGs now")
    def execute_selected(self, request: HttpRequest, queryset: QuerySet[Dag]) -> None:
        for dag in queryset:
            try:
                execution = execution_services.execution_launch(dag=dag, owner=request.user)
            except PlanError as error:
                self.message_user(
                    request, f"DAG {dag.id}: the plan cannot run: {error}", messages.ERROR
                )
            except execution_services.ClarificationNeeded as clarification:
                self.message_user(
                    request,
                    f"DAG {dag.id}: the plan asks a question first: {clarification}",
                    messages.WARNING,
                )
            else:
                self.message_user(request, f"DAG {dag.id}: execution {execution.id} started.")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dag]:
        return super().get_queryset(request).annotate(executions_total=Count("executions"))

    @admin.display(description="title", ordering="dag_title")
    def title(self, dag: Dag) -> str:
        return shorten(dag.dag_title, 70) or "-"

    @admin.display(description="executions", ordering="executions_total")
    def execution_count(self, dag: Dag) -> int:
        return dag.executions_total

    @admin.display(description="executions")
    def executions_link(self, dag: Dag):
        if dag._state.adding:
            return "-"
        total = getattr(dag, "executions_total", None)
        if total is None:
            total = dag.executions.count()
        return changelist_link(DagExecution, f"{total} execution(s)", dag__id__exact=dag.pk)

    @admin.display(description="schedule failed", boolean=True)
    def schedule_failed(self, dag: Dag) -> bool:
        return bool(dag.schedule_error)

    @admin.display(description="schedule")
    def schedule_description(self, dag: Dag) -> str:
        return cron_description(dag.cron_schedule)

    def save_model(self, request: HttpRequest, obj: Dag, form, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            dag_schedule_sync(dag=obj)
            return
        stored = Dag.objects.get(pk=obj.pk)
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        dag_update(dag=stored, changes=changes)

    def delete_model(self, request: HttpRequest, obj: Dag) -> None:
        dag_delete(dag=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Dag]) -> None:
        for dag in queryset:
            dag_delete(dag=dag)


class SubStepInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SubStep
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        "task_id",
        "action_type",
        "tool_or_prompt_name",
        "status",
        "dependencies",
        "duration_ms",
        "cost_usd",
        "error_short",
    )
    readonly_fields = fields

    @admin.display(description="error")
    def error_short(self, sub_step: SubStep) -> str:
        return shorten(sub_step.error, 80)


@admin.register(DagExecution)
class DagExecutionAdmin(
    ObjectButtonsMixin, OwnedAdminMixin, CascadeDeleteMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    object_buttons = (("resume", "Resume"), ("cancel", "Cancel"))

    def buttons_for(self, execution: DagExecution) -> list[str]:
        shown = []
        if execution.status in execution_services.RESUMABLE:
            shown.append("resume")
        if execution.status in execution_services.CANCELLABLE:
            shown.append("cancel")
        return shown

    def press_resume(self, request: HttpRequest, execution: DagExecution) -> str:
        execution = selectors.execution_get(execution_id=execution.pk, viewer=request.user)
        execution = execution_services.execution_resume(execution_id=execution.id)
        return f"Execution {execution.id} resumed (retry {execution.retry_count})."

    def press_cancel(self, request: HttpRequest, execution: DagExecution) -> str:
        execution = selectors.execution_get(execution_id=execution.pk, viewer=request.user)
        execution_services.execution_cancel(
            execution_id=execution.id, reason=f"Cancelled in the admin by {request.user}"
        )
        return f"Execution {execution.id} cancelled."

    list_display = (
        "id",
        "dag_link",
        "status_badge",
        "progress",
        "cost",
        "started_at",
        "duration",
        "updated_at",
    )
    list_filter = ("status", "created_at")
    search_fields = ("id", "original_request", "dag__id", "dag__dag_title")
    actions = ["resume_selected", "cancel_selected"]
    date_hierarchy = "created_at"
    list_select_related = ("dag",)
    fieldsets = (
        (None, {"fields": ("id", "dag", "status", "original_request", "primary_intent")}),
        (
            "Progress",
            {
                "fields": (
                    ("total_tasks", "completed_tasks", "failed_tasks", "waiting_tasks"),
                    ("started_at", "completed_at", "duration_ms"),
                    ("retry_count", "last_retry_at"),
                    ("suspended_reason", "suspended_at"),
                    "events_link",
                )
            },
        ),
        ("Result", {"fields": ("final_result", "synthesis_result")}),
        ("Plan", {"classes": ("collapse",), "fields": ("plan_context_pretty",)}),
        ("Cost", {"fields": ("total_cost_usd", "total_usage_pretty")}),
        (None, {"fields": (("created_at", "updated_at"),)}),
    )
    readonly_fields = (
        "id",
        "dag",
        "status",
        "original_request",
        "primary_intent",
        "total_tasks",
        "completed_tasks",
        "failed_tasks",
        "waiting_tasks",
        "started_at",
        "completed_at",
        "duration_ms",
        "retry_count",
        "last_retry_at",
        "suspended_reason",
        "suspended_at",
        "events_link",
        "final_result",
        "synthesis_result",
        "total_cost_usd",
        "total_usage_pretty",
        "plan_context_pretty",
        "created_at",
        "updated_at",
    )
    inlines = (SubStepInline,)

    def _each(self, request: HttpRequest, queryset, service, done: str) -> None:
        for execution in queryset:
            try:
                service(execution_id=execution.id)
            except DomainError as error:
                self.message_user(
                    request, f"Execution {execution.id}: {error.message}", messages.ERROR
                )
            else:
                self.message_user(request, f"Execution {execution.id} {done}.")

    @admin.action(description="Resume the selected executions (unfinished tasks only)")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[DagExecution]) -> None:
        self._each(request, queryset, execution_services.execution_resume, "resumed")

    @admin.action(description="Cancel the selected executions")
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[DagExecution]) -> None:
        self._each(request, queryset, execution_services.execution_cancel, "cancelled")

    @admin.display(description="DAG", ordering="dag__dag_title")
    def dag_link(self, execution: DagExecution):
        if execution.dag is None:
            return "-"
        return admin_link(execution.dag, shorten(str(execution.dag), 60))

    @admin.display(description="tasks")
    def progress(self, execution: DagExecution) -> str:
        text = f"{execution.completed_tasks}/{execution.total_tasks}"
        if execution.failed_tasks:
            text += f" ({execution.failed_tasks} failed)"
        return text

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, execution: DagExecution) -> str:
        return human_duration(execution.duration_ms)

    @admin.display(description="cost", ordering="total_cost_usd")
    def cost(self, execution: DagExecution) -> str:
        return usd(execution.total_cost_usd)

    @admin.display(description="status", ordering="status")
    def status_badge(self, execution: DagExecution):
        return status_badge(execution.status)

    @admin.display(description="events")
    def events_link(self, execution: DagExecution):
        return changelist_link(
            ExecutionEvent,
            f"{execution.last_event_seq} event(s)",
            execution__id__exact=execution.pk,
        )

    @admin.display(description="total usage")
    def total_usage_pretty(self, execution: DagExecution):
        return pretty_json(execution.total_usage)

    @admin.display(description="plan context")
    def plan_context_pretty(self, execution: DagExecution):
        return pretty_json(execution.plan_context)

    def delete_model(self, request: HttpRequest, obj: DagExecution) -> None:
        execution_delete(execution=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[DagExecution]) -> None:
        for execution in queryset:
            execution_delete(execution=execution)


@admin.register(SubStep)
class SubStepAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "execution_link",
        "task_id",
        "action_type",
        "tool_or_prompt_name",
        "status",
        "duration_ms",
        "cost_usd",
        "updated_at",
    )
    list_filter = ("status", "action_type")
    search_fields = ("id", "execution__id", "task_id", "tool_or_prompt_name", "description")
    list_select_related = ("execution",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "execution",
                    ("task_id", "status"),
                    "description",
                    "thought",
                    ("action_type", "tool_or_prompt_name"),
                    "params_pretty",
                    "dependencies",
                )
            },
        ),
        (
            "Outcome",
            {
                "fields": (
                    ("started_at", "completed_at", "duration_ms"),
                    "result_pretty",
                    "error",
                    ("cost_usd", "usage_pretty"),
                    "generation_stats_pretty",
                )
            },
        ),
        (
            "Scheduling",
            {
                "classes": ("collapse",),
                "fields": (
                    ("dispatched_at", "lease_expires_at"),
                    ("attempts", "remaining_dependencies"),
                    "dependants",
                    "queue_task_id",
                ),
            },
        ),
        (None, {"fields": (("created_at", "updated_at"),)}),
    )
    readonly_fields = (
        "id",
        "execution",
        "task_id",
        "status",
        "description",
        "thought",
        "action_type",
        "tool_or_prompt_name",
        "params_pretty",
        "dependencies",
        "started_at",
        "completed_at",
        "duration_ms",
        "result_pretty",
        "error",
        "cost_usd",
        "usage_pretty",
        "generation_stats_pretty",
        "dispatched_at",
        "lease_expires_at",
        "attempts",
        "remaining_dependencies",
        "dependants",
        "queue_task_id",
        "created_at",
        "updated_at",
    )

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="execution", ordering="execution__created_at")
    def execution_link(self, sub_step: SubStep):
        return admin_link(sub_step.execution, sub_step.execution_id)

    @admin.display(description="params")
    def params_pretty(self, sub_step: SubStep):
        return pretty_json(sub_step.tool_or_prompt_params)

    @admin.display(description="result")
    def result_pretty(self, sub_step: SubStep):
        return pretty_json(sub_step.result)

    @admin.display(description="usage")
    def usage_pretty(self, sub_step: SubStep):
        return pretty_json(sub_step.usage)

    @admin.display(description="generation stats")
    def generation_stats_pretty(self, sub_step: SubStep):
        return pretty_json(sub_step.generation_stats)


@admin.register(ExecutionEvent)
class ExecutionEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "execution_link", "seq", "type", "created_at")
    list_filter = ("type",)
    search_fields = ("execution__id", "type")
    date_hierarchy = "created_at"
    list_select_related = ("execution",)
    ordering = ("-created_at", "-seq")
    fields = ("execution", "seq", "type", "payload_pretty", "created_at")
    readonly_fields = fields

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="execution", ordering="execution__created_at")
    def execution_link(self, event: ExecutionEvent):
        return admin_link(event.execution, event.execution_id)

    @admin.display(description="payload")
    def payload_pretty(self, event: ExecutionEvent):
        return pretty_json(event.payload)
