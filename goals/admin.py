"""Admin for goals with their schedules and memories; pause/resume through the services."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Case, Count, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Substr
from django.http import HttpRequest
from django.utils.html import format_html

# Importing the package's admin registers its PeriodicTask admin, which is replaced below.
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from config.admin_tools import (
    JSON_FIELD_OVERRIDES,
    READONLY_TABLE,
    CascadeDeleteMixin,
    ObjectButtonsMixin,
    OwnedAdminMixin,
    ReadOnlyAdminMixin,
    admin_link,
    admin_url,
    changelist_link,
    clean_cron,
    clean_timezone,
    cron_description,
    shorten,
    status_badge,
)
from config.errors import DomainError
from dags.models import Dag
from dags.schedules import DAG_PREFIX, DAG_TICK_TASK
from goals import selectors as goal_selectors
from goals.models import Goal, Memory, Schedule, SchedulerHeartbeat, ScheduleTick
from goals.schedules import GOAL_PREFIX, GOAL_TICK_TASK, goal_schedule_sync
from goals.services import (
    goal_delete,
    goal_pause,
    goal_resume,
    goal_update,
    schedule_delete,
    schedule_update,
)
from runs.models import Run
from runs.services import run_trigger

SCHEDULE_FIELDS = ("cron_expr", "timezone", "active")

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class _GoalTotals(TypedDict):
        schedules_total: int
        runs_total: int


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = ("goal", "cron_expr", "timezone", "active")

    def clean_cron_expr(self) -> str:
        return clean_cron(self.cleaned_data["cron_expr"])

    def clean_timezone(self) -> str:
        return clean_timezone(self.cleaned_data["timezone"])


class ScheduleInline(admin.TabularInline):
    model = Schedule
    form = ScheduleForm
    extra = 0
    fields = (
        "cron_expr",
        "description",
        "timezone",
        "active",
        "last_run_at",
        "error",
        "created_at",
    )
    readonly_fields = ("description", "last_run_at", "error", "created_at")
    show_change_link = True

    @admin.display(description="runs")
    def description(self, schedule: Schedule) -> str:
        return cron_description(schedule.cron_expr)


class MemoryInline(admin.StackedInline):
    model = Memory
    extra = 0
    fields = ("type", "content", "metadata", "created_at")
    readonly_fields = ("created_at",)
    formfield_overrides = JSON_FIELD_OVERRIDES
    show_change_link = True


@admin.register(Goal)
class GoalAdmin(ObjectButtonsMixin, OwnedAdminMixin, CascadeDeleteMixin, admin.ModelAdmin):
    object_buttons = (("run", "Run now"), ("pause", "Pause"), ("resume", "Resume"))

    def buttons_for(self, goal: Goal) -> list[str]:
        if goal.status == Goal.Status.ACTIVE:
            return ["run", "pause"]
        if goal.status == Goal.Status.PAUSED:
            return ["resume"]
        return []

    # The same selector and services as the API: someone who may not see the goal gets a 404.
    def press_run(self, request: HttpRequest, goal: Goal) -> str:
        goal = goal_selectors.goal_get(goal_id=goal.pk, viewer=request.user)
        run = run_trigger(goal_id=goal.id)
        return f"Run {run.id} of goal {goal.id} started."

    def press_pause(self, request: HttpRequest, goal: Goal) -> str:
        goal = goal_pause(goal=goal_selectors.goal_get(goal_id=goal.pk, viewer=request.user))
        return f"Goal {goal.id} paused, with its schedules."

    def press_resume(self, request: HttpRequest, goal: Goal) -> str:
        goal = goal_resume(goal=goal_selectors.goal_get(goal_id=goal.pk, viewer=request.user))
        return f"Goal {goal.id} resumed, with its schedules."

    list_display = (
        "id",
        "objective_short",
        "status_badge",
        "agent_link",
        "schedule_count",
        "run_count",
        "created_at",
    )
    list_filter = ("status", "created_at")
    search_fields = ("id", "objective", "webhook_url")
    date_hierarchy = "created_at"
    list_select_related = ("agent",)
    readonly_fields = ("id", "status_badge", "runs_link", "created_at", "updated_at")
    fields = (
        ("id", "status_badge"),
        "objective",
        "agent",
        "webhook_url",
        "params",
        "runs_link",
        ("created_at", "updated_at"),
    )
    autocomplete_fields = ("agent",)
    formfield_overrides = {**JSON_FIELD_OVERRIDES, models.URLField: {"assume_scheme": "https"}}
    inlines = (ScheduleInline, MemoryInline)
    actions = ("run_selected", "pause_selected", "resume_selected")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Goal]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                schedules_total=Count("schedules", distinct=True),
                runs_total=Count("runs", distinct=True),
            )
        )

    @admin.display(description="objective", ordering="objective")
    def objective_short(self, goal: Goal) -> str:
        return shorten(goal.objective, 90)

    @admin.display(description="status", ordering="status")
    def status_badge(self, goal: Goal):
        return status_badge(goal.status)

    @admin.display(description="agent", ordering="agent__name")
    def agent_link(self, goal: Goal):
        return admin_link(goal.agent) if goal.agent_id else "-"

    @admin.display(description="schedules", ordering="schedules_total")
    def schedule_count(self, goal: WithAnnotations[Goal, _GoalTotals]) -> int:
        return goal.schedules_total

    @admin.display(description="runs", ordering="runs_total")
    def run_count(self, goal: WithAnnotations[Goal, _GoalTotals]) -> int:
        return goal.runs_total

    @admin.display(description="runs")
    def runs_link(self, goal: Goal):
        if goal._state.adding:
            return "-"
        total = getattr(goal, "runs_total", None)
        if total is None:
            total = goal.runs.count()
        return changelist_link(Run, f"{total} run(s)", goal__id__exact=goal.pk)

    @admin.action(description="Run the selected goals now")
    def run_selected(self, request: HttpRequest, queryset: QuerySet[Goal]) -> None:
        started, refused = [], []
        for goal_id in queryset.values_list("pk", flat=True):
            try:
                started.append(run_trigger(goal_id=goal_id).id)
            except DomainError as error:
                refused.append(f"{goal_id}: {error.message}")
        if started:
            self.message_user(
                request, f"Started {len(started)} run(s): {', '.join(started)}.", messages.SUCCESS
            )
        for reason in refused:
            self.message_user(request, f"Not started: {reason}", messages.WARNING)

    @admin.action(description="Pause the selected goals (and their schedules)")
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Goal]) -> None:
        goals = list(queryset)
        for goal in goals:
            goal_pause(goal=goal)
        self.message_user(request, f"Paused {len(goals)} goal(s).", messages.SUCCESS)

    @admin.action(description="Resume the selected goals (and their schedules)")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Goal]) -> None:
        goals = list(queryset)
        for goal in goals:
            goal_resume(goal=goal)
        self.message_user(request, f"Resumed {len(goals)} goal(s).", messages.SUCCESS)

    def save_model(self, request: HttpRequest, obj: Goal, form, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        stored = Goal.objects.get(pk=obj.pk)
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        goal_update(goal=stored, changes=changes)

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        if formset.model is not Schedule:
            super().save_formset(request, form, formset, change)
            return
        # Schedule rows go through the services so their beat rows follow.
        schedules = formset.save(commit=False)
        for schedule in formset.deleted_objects:
            schedule_delete(schedule=schedule)
        for schedule in schedules:
            _save_schedule(schedule)

    def delete_model(self, request: HttpRequest, obj: Goal) -> None:
        goal_delete(goal=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Goal]) -> None:
        for goal in queryset:
            goal_delete(goal=goal)


def _save_schedule(schedule: Schedule) -> None:
    if schedule._state.adding:
        schedule.save()
        goal_schedule_sync(schedule=schedule)
        return
    stored = Schedule.objects.get(pk=schedule.pk)
    changes = {
        field: getattr(schedule, field)
        for field in SCHEDULE_FIELDS
        if getattr(schedule, field) != getattr(stored, field)
    }
    schedule_update(schedule=stored, changes=changes)


class ScheduleTickInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ScheduleTick
    template = READONLY_TABLE
    fk_name = "schedule"
    extra = 0
    can_delete = False
    fields = ("created_at", "outcome_badge", "reason", "run_link")
    readonly_fields = fields
    ordering = ("-created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ScheduleTick]:
        return super().get_queryset(request).select_related("run")

    @admin.display(description="outcome")
    def outcome_badge(self, tick: ScheduleTick):
        return status_badge(tick.outcome)

    @admin.display(description="run")
    def run_link(self, tick: ScheduleTick):
        return admin_link(tick.run, tick.run_id) if tick.run_id else "-"


@admin.register(Schedule)
class ScheduleAdmin(CascadeDeleteMixin, admin.ModelAdmin):
    form = ScheduleForm
    list_display = (
        "id",
        "goal_link",
        "cron_expr",
        "description",
        "timezone",
        "active",
        "failed",
        "last_run_at",
        "created_at",
    )
    list_filter = ("active", "timezone")
    search_fields = ("id", "cron_expr", "goal__id", "goal__objective")
    list_select_related = ("goal",)
    autocomplete_fields = ("goal",)
    readonly_fields = ("id", "description", "last_run_at", "error", "error_at", "created_at")
    fields = (
        "id",
        "goal",
        "cron_expr",
        "description",
        "timezone",
        "active",
        "last_run_at",
        "error",
        "error_at",
        "created_at",
    )
    inlines = (ScheduleTickInline,)

    @admin.display(description="goal", ordering="goal__created_at")
    def goal_link(self, schedule: Schedule):
        return admin_link(schedule.goal, shorten(schedule.goal.objective, 60))

    @admin.display(description="failed", boolean=True)
    def failed(self, schedule: Schedule) -> bool:
        return bool(schedule.error)

    @admin.display(description="runs")
    def description(self, schedule: Schedule) -> str:
        return cron_description(schedule.cron_expr)

    def save_model(self, request: HttpRequest, obj: Schedule, form, change: bool) -> None:
        _save_schedule(obj)

    def delete_model(self, request: HttpRequest, obj: Schedule) -> None:
        schedule_delete(schedule=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset:
            schedule_delete(schedule=schedule)


@admin.register(ScheduleTick)
class ScheduleTickAdmin(admin.ModelAdmin):
    """What each cron tick did; written by the workers, so read-only."""

    list_display = ("created_at", "subject", "outcome_badge", "reason_short", "started")
    list_filter = ("outcome", "created_at")
    search_fields = ("id", "schedule__id", "schedule__goal__id", "dag__id", "reason")
    date_hierarchy = "created_at"
    list_select_related = ("schedule", "dag")
    fields = ("id", "schedule", "dag", "outcome", "reason", "run", "execution", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="schedule")
    def subject(self, tick: ScheduleTick):
        if tick.schedule_id:
            return admin_link(tick.schedule, f"goal schedule {tick.schedule_id}")
        if tick.dag_id:
            return admin_link(tick.dag, f"DAG {tick.dag_id}")
        return "-"

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, tick: ScheduleTick):
        return status_badge(tick.outcome)

    @admin.display(description="reason")
    def reason_short(self, tick: ScheduleTick) -> str:
        return shorten(tick.reason, 120) or "-"

    @admin.display(description="started")
    def started(self, tick: ScheduleTick) -> str:
        return tick.run_id or tick.execution_id or "-"


@admin.register(Memory)
class MemoryAdmin(admin.ModelAdmin):
    list_display = ("id", "goal_link", "type", "content_short", "created_at")
    list_filter = ("type",)
    search_fields = ("id", "content", "goal__id", "goal__objective")
    date_hierarchy = "created_at"
    list_select_related = ("goal",)
    autocomplete_fields = ("goal",)
    readonly_fields = ("id", "created_at")
    fields = ("id", "goal", "type", "content", "metadata", "created_at")
    formfield_overrides = JSON_FIELD_OVERRIDES

    @admin.display(description="goal", ordering="goal__created_at")
    def goal_link(self, memory: Memory):
        return admin_link(memory.goal, shorten(memory.goal.objective, 60))

    @admin.display(description="content")
    def content_short(self, memory: Memory) -> str:
        return shorten(memory.content, 100)


@admin.register(SchedulerHeartbeat)
class SchedulerHeartbeatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """When beat last ticked, and where it runs; written by beat itself."""

    list_display = ("name", "ticked_at", "started_at", "hostname", "pid")
    fields = list_display
    readonly_fields = list_display


# --- beat rows --------------------------------------------------------------------------------
def _managed_filter() -> Q:
    return (
        Q(name__startswith=GOAL_PREFIX)
        | Q(name__startswith=DAG_PREFIX)
        | Q(task__in=(GOAL_TICK_TASK, DAG_TICK_TASK))
    )


class AppPeriodicTaskAdmin(BeatPeriodicTaskAdmin):
    """django-celery-beat's admin, except for the rows goal and DAG schedules own.

    Those rows are rewritten from their goal schedule or DAG whenever it changes (and by
    `sync_schedules`), so an edit here would silently not last: they are read-only and link to
    what they are written from. Every other periodic task stays editable as the package has it.
    """

    list_display = (*BeatPeriodicTaskAdmin.list_display, "managed_by")
    readonly_fields = (*BeatPeriodicTaskAdmin.readonly_fields, "managed_by", "managed_note")
    managed_note_text = (
        "This row is written by the app from its goal schedule or DAG and is read-only here: "
        "a sync overwrites any change made to it. Change the schedule on the goal or the DAG."
    )

    @staticmethod
    def is_managed(task: PeriodicTask) -> bool:
        return task.name.startswith((GOAL_PREFIX, DAG_PREFIX)) or task.task in (
            GOAL_TICK_TASK,
            DAG_TICK_TASK,
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[PeriodicTask]:
        # The goal or DAG each managed row belongs to, in the same query as the rows.
        goal_of_schedule = Schedule.objects.filter(
            pk=Substr(OuterRef("name"), len(GOAL_PREFIX) + 1)
        ).values("goal_id")[:1]
        dag = Dag.objects.filter(pk=Substr(OuterRef("name"), len(DAG_PREFIX) + 1)).values("pk")[:1]
        return (
            super()
            .get_queryset(request)
            .annotate(
                managed_goal_id=Case(
                    When(name__startswith=GOAL_PREFIX, then=Subquery(goal_of_schedule)),
                    default=Value(None),
                ),
                managed_dag_id=Case(
                    When(name__startswith=DAG_PREFIX, then=Subquery(dag)), default=Value(None)
                ),
            )
        )

    @admin.display(description="managed by")
    def managed_by(self, task: PeriodicTask):
        goal_id = getattr(task, "managed_goal_id", None)
        dag_id = getattr(task, "managed_dag_id", None)
        if goal_id:
            return format_html(
                '<a href="{}">goal {}</a>', admin_url(Goal, "change", goal_id), goal_id
            )
        if dag_id:
            return format_html('<a href="{}">DAG {}</a>', admin_url(Dag, "change", dag_id), dag_id)
        if self.is_managed(task):
            return "the app (its goal schedule or DAG is gone; `sync_schedules` removes it)"
        return "-"

    @admin.display(description="note")
    def managed_note(self, task: PeriodicTask):
        return format_html("<strong>{}</strong>", self.managed_note_text)

    def get_fieldsets(self, request: HttpRequest, obj: PeriodicTask | None = None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and self.is_managed(obj):
            fieldsets.insert(0, ("Managed by the app", {"fields": ("managed_by", "managed_note")}))
        return fieldsets

    def has_change_permission(self, request: HttpRequest, obj: PeriodicTask | None = None) -> bool:
        if obj is not None and self.is_managed(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: PeriodicTask | None = None) -> bool:
        if obj is not None and self.is_managed(obj):
            return False
        return super().has_delete_permission(request, obj)

    def _unmanaged(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]):
        managed = queryset.filter(_managed_filter())
        if managed.exists():
            self.message_user(
                request,
                f"Left {managed.count()} app-managed row(s) alone: change their goal or DAG.",
                messages.WARNING,
            )
        return queryset.exclude(_managed_filter())

    # The bulk actions change rows too: they skip the managed ones.
    @admin.action(description="Enable selected tasks")
    def enable_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        super().enable_tasks(request, self._unmanaged(request, queryset))

    @admin.action(description="Disable selected tasks")
    def disable_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        super().disable_tasks(request, self._unmanaged(request, queryset))

    @admin.action(description="Toggle activity of selected tasks")
    def toggle_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        super().toggle_tasks(request, self._unmanaged(request, queryset))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        super().delete_queryset(request, self._unmanaged(request, queryset))


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, AppPeriodicTaskAdmin)
