"""Admin for DAGs, executions, sub-steps and execution events.

Executions, sub-steps and events are written by the workers (with an event for every change
users watch), so the admin shows them read-only; DAG titles and schedules are editable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from config.admin_tools import (
    JSON_FIELD_OVERRIDES,
    READONLY_TABLE,
    CascadeDeleteMixin,
    ObjectButtonsMixin,
    OwnedAdminMixin,
    ReadOnlyAdminMixin,
    admin_link,
    changelist_link,
    clean_cron,
    clean_timezone,
    cron_description,
    json_details,
    markdown_block,
    plain_block,
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

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class _DagTotals(TypedDict):
        executions_total: int


class DagForm(forms.ModelForm):
    class Meta:
        model = Dag
        # What a person may change; what the planner wrote is shown read-only.
        fields = (
            "dag_title",
            "agent_name",
            "cron_schedule",
            "timezone",
            "schedule_active",
            "result",
            "params",
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


def plan_tasks(result: Any) -> list[dict[str, Any]]:
    """The plan's tasks as stored (a plan written around the checks may be malformed: whatever
    is not a task is left out of the table, and the JSON below still shows it)."""
    tasks = result.get("sub_tasks") if isinstance(result, dict) else None
    return [task for task in tasks or [] if isinstance(task, dict)]


def plan_table_html(result: Any):
    """The plan as a table: one row per task with what it does and what it waits for."""
    tasks = plan_tasks(result)
    if not tasks:
        return "-"
    rows = format_html_join(
        "",
        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                task.get("id", "?"),
                task.get("action_type", "?"),
                (task.get("tool_or_prompt") or {}).get("name", "?")
                if isinstance(task.get("tool_or_prompt"), dict)
                else "?",
                shorten(str(task.get("description") or ""), 160),
                ", ".join(map(str, task.get("dependencies") or [])) or "-",
            )
            for task in tasks
        ),
    )
    synthesis = result.get("synthesis_plan") if isinstance(result, dict) else None
    return format_html(
        "<table><thead><tr><th>task</th><th>action</th><th>tool or prompt</th>"
        "<th>description</th><th>depends on</th></tr></thead><tbody>{}</tbody></table>{}",
        rows,
        format_html("<p><strong>Synthesis:</strong> {}</p>", shorten(synthesis, 400))
        if synthesis
        else "",
    )


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
        "status_badge",
        "agent_name",
        "cron_schedule",
        "schedule_active",
        "schedule_failed",
        "execution_count",
        "planning_cost",
        "created_at",
    )
    list_filter = ("status", "schedule_active", "agent_name", "created_at")
    search_fields = ("id", "dag_title", "agent_name")
    actions = ["execute_selected"]
    date_hierarchy = "created_at"
    readonly_fields = (
        "id",
        "status_badge",
        "task_count",
        "plan_table",
        "schedule_description",
        "executions_link",
        "last_run_at",
        "schedule_error",
        "schedule_error_at",
        "planning_cost",
        "attempts",
        "usage_details",
        "generation_stats_details",
        "planning_usage_details",
        "planning_attempts_details",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("id", "status_badge"),
                    "dag_title",
                    "agent_name",
                    ("task_count", "executions_link"),
                    "planning_cost",
                )
            },
        ),
        ("Plan", {"fields": ("plan_table",)}),
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
        (
            "Edit the plan (JSON; checked like the API's edits)",
            {"classes": ("collapse",), "fields": ("result", "params")},
        ),
        (
            "Planning record",
            {
                "classes": ("collapse",),
                "fields": (
                    "attempts",
                    "usage_details",
                    "generation_stats_details",
                    "planning_usage_details",
                    "planning_attempts_details",
                    ("created_at", "updated_at"),
                ),
            },
        ),
    )
    formfield_overrides = JSON_FIELD_OVERRIDES

    @admin.display(description="status", ordering="status")
    def status_badge(self, dag: Dag):
        return status_badge(dag.status)

    @admin.display(description="planning cost", ordering="planning_total_cost_usd")
    def planning_cost(self, dag: Dag) -> str:
        return usd(dag.planning_total_cost_usd)

    @admin.display(description="tasks")
    def task_count(self, dag: Dag) -> int:
        return len(plan_tasks(dag.result))

    @admin.display(description="tasks and dependencies")
    def plan_table(self, dag: Dag):
        return plan_table_html(dag.result)

    @admin.display(description="usage")
    def usage_details(self, dag: Dag):
        return json_details(dag.usage, "usage")

    @admin.display(description="generation stats")
    def generation_stats_details(self, dag: Dag):
        return json_details(dag.generation_stats, "generation stats")

    @admin.display(description="planning usage")
    def planning_usage_details(self, dag: Dag):
        return json_details(dag.planning_total_usage, "planning usage")

    @admin.display(description="planning attempts")
    def planning_attempts_details(self, dag: Dag):
        return json_details(dag.planning_attempts, "planning attempts")

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
    def execution_count(self, dag: WithAnnotations[Dag, _DagTotals]) -> int:
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
    """The execution's sub-steps as one compact table; each links to its own page, where the
    result, params and usage are shown in full."""

    model = SubStep
    template = READONLY_TABLE
    extra = 0
    can_delete = False
    fields = (
        "task_link",
        "status_badge",
        "action",
        "depends_on",
        "duration",
        "cost",
        "error_short",
    )
    readonly_fields = fields
    verbose_name_plural = "sub-steps"

    def get_queryset(self, request: HttpRequest) -> QuerySet[SubStep]:
        # The table shows none of the large columns: leave them in the database.
        return (
            super()
            .get_queryset(request)
            .defer(
                "result",
                "usage",
                "generation_stats",
                "tool_or_prompt_params",
                "thought",
                "description",
                "dependants",
            )
        )

    @admin.display(description="task")
    def task_link(self, sub_step: SubStep):
        return admin_link(sub_step, sub_step.task_id)

    @admin.display(description="status")
    def status_badge(self, sub_step: SubStep):
        return status_badge(sub_step.status)

    @admin.display(description="action")
    def action(self, sub_step: SubStep) -> str:
        return f"{sub_step.action_type}: {sub_step.tool_or_prompt_name}"

    @admin.display(description="depends on")
    def depends_on(self, sub_step: SubStep) -> str:
        return ", ".join(map(str, sub_step.dependencies or [])) or "-"

    @admin.display(description="duration")
    def duration(self, sub_step: SubStep) -> str:
        return human_duration(sub_step.duration_ms)

    @admin.display(description="cost")
    def cost(self, sub_step: SubStep) -> str:
        return usd(sub_step.cost_usd)

    @admin.display(description="error")
    def error_short(self, sub_step: SubStep) -> str:
        return shorten(sub_step.error, 80) or "-"


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
    readonly_fields = (
        "id",
        "title",
        "dag_link",
        "status_badge",
        "progress",
        "duration",
        "cost",
        "started_at",
        "completed_at",
        "retries",
        "suspension",
        "result",
        "synthesis",
        "request_text",
        "primary_intent",
        "usage",
        "plan_context_details",
        "events_link",
        "owner",
        "created_at",
        "updated_at",
    )
    inlines = (SubStepInline,)

    def get_fieldsets(self, request: HttpRequest, obj: DagExecution | None = None):
        summary: list[Any] = [
            ("status_badge", "title"),
            "id",
            ("progress", "duration", "cost"),
            ("started_at", "completed_at"),
        ]
        if obj is not None and obj.retry_count:
            summary.append("retries")
        if obj is not None and obj.suspended_reason:
            summary.append("suspension")
        result: list[str] = ["result"]
        if obj is not None and self._synthesis_differs(obj):
            result.append("synthesis")
        return (
            (None, {"fields": summary}),
            ("Result", {"fields": result}),
            (
                "Request and plan",
                {
                    "classes": ("collapse",),
                    "fields": ("request_text", "primary_intent", "plan_context_details"),
                },
            ),
            (
                "Usage, events and record",
                {
                    "classes": ("collapse",),
                    "fields": ("usage", "events_link", "owner", ("created_at", "updated_at")),
                },
            ),
        )

    @staticmethod
    def _synthesis_differs(execution: DagExecution) -> bool:
        # The synthesis is normally the final result itself: show it only when it is not.
        return bool(execution.synthesis_result) and (
            (execution.synthesis_result or "").strip() != (execution.final_result or "").strip()
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[DagExecution]:
        return super().get_queryset(request).select_related("dag")

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

    @admin.display(description="title")
    def title(self, execution: DagExecution):
        """The DAG's title, linking to the DAG; the request's intent when there is no DAG."""
        if execution.dag is not None:
            return admin_link(execution.dag, shorten(str(execution.dag), 120))
        return shorten(execution.primary_intent or execution.original_request, 120)

    @admin.display(description="tasks")
    def progress(self, execution: DagExecution) -> str:
        text = f"{execution.completed_tasks}/{execution.total_tasks}"
        if execution.failed_tasks:
            text += f" ({execution.failed_tasks} failed)"
        if execution.waiting_tasks:
            text += f" ({execution.waiting_tasks} waiting)"
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

    @admin.display(description="retries")
    def retries(self, execution: DagExecution) -> str:
        last = (
            f", last at {execution.last_retry_at:%Y-%m-%d %H:%M:%S}"
            if execution.last_retry_at
            else ""
        )
        return f"{execution.retry_count}{last}"

    @admin.display(description="suspended")
    def suspension(self, execution: DagExecution) -> str:
        when = f" (at {execution.suspended_at:%Y-%m-%d %H:%M:%S})" if execution.suspended_at else ""
        return f"{execution.suspended_reason}{when}"

    @admin.display(description="result")
    def result(self, execution: DagExecution):
        return markdown_block(execution.final_result or execution.synthesis_result)

    @admin.display(description="synthesis (differs from the result)")
    def synthesis(self, execution: DagExecution):
        return markdown_block(execution.synthesis_result)

    @admin.display(description="request")
    def request_text(self, execution: DagExecution):
        return plain_block(execution.original_request)

    @admin.display(description="events")
    def events_link(self, execution: DagExecution):
        return changelist_link(
            ExecutionEvent,
            f"{execution.last_event_seq} event(s)",
            execution__id__exact=execution.pk,
        )

    @admin.display(description="token usage")
    def usage(self, execution: DagExecution):
        return json_details(execution.total_usage, "token usage")

    @admin.display(description="plan context")
    def plan_context_details(self, execution: DagExecution):
        return json_details(execution.plan_context, "plan context (as the execution started)")

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
        "status_badge",
        "duration",
        "cost",
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
                    ("status_badge", "task_id"),
                    ("execution_link", "id"),
                    ("action_type", "tool_or_prompt_name"),
                    ("duration", "cost"),
                    ("started_at", "completed_at"),
                    "dependencies",
                    "description",
                    "error",
                )
            },
        ),
        ("Result", {"fields": ("result_rendered",)}),
        (
            "Input and usage",
            {
                "classes": ("collapse",),
                "fields": ("thought", "params_pretty", "usage_pretty", "generation_stats_pretty"),
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
                    ("created_at", "updated_at"),
                ),
            },
        ),
    )
    readonly_fields = (
        "id",
        "execution_link",
        "task_id",
        "status_badge",
        "description",
        "thought",
        "action_type",
        "tool_or_prompt_name",
        "params_pretty",
        "dependencies",
        "started_at",
        "completed_at",
        "duration",
        "result_rendered",
        "error",
        "cost",
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

    @admin.display(description="status", ordering="status")
    def status_badge(self, sub_step: SubStep):
        return status_badge(sub_step.status)

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, sub_step: SubStep) -> str:
        return human_duration(sub_step.duration_ms)

    @admin.display(description="cost", ordering="cost_usd")
    def cost(self, sub_step: SubStep) -> str:
        return usd(sub_step.cost_usd)

    @admin.display(description="result")
    def result_rendered(self, sub_step: SubStep):
        if isinstance(sub_step.result, str):
            return markdown_block(sub_step.result)
        return json_details(sub_step.result, "result (JSON)", open_=True)

    @admin.display(description="params")
    def params_pretty(self, sub_step: SubStep):
        return json_details(sub_step.tool_or_prompt_params, "params", open_=True)

    @admin.display(description="usage")
    def usage_pretty(self, sub_step: SubStep):
        return json_details(sub_step.usage, "token usage")

    @admin.display(description="generation stats")
    def generation_stats_pretty(self, sub_step: SubStep):
        return json_details(sub_step.generation_stats, "generation stats")


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
