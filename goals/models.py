from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.timezone import now

from config.access import owner_field
from config.api.ids import new_id


def new_goal_id() -> str:
    return new_id("goal")


TOOL_NAME_SEPARATOR = ","


def allowed_tool_names_text(params: Any) -> str | None:
    """`Goal.allowed_tool_names` for these params: None when the goal allows every tool (no
    `allowedTools` list, or an empty one), else the listed names as ",name,name,".

    Every string is kept, known to the registry or not: the reader asks only for the tools that
    exist when it reads, so unknown names are ignored then, and a tool added later counts for
    the goals that already named it. Names holding the separator are dropped: no tool has one.
    """
    allowed = params.get("allowedTools") if isinstance(params, dict) else None
    if not isinstance(allowed, list) or not allowed:
        return None
    names = dict.fromkeys(
        name for name in allowed if isinstance(name, str) and TOOL_NAME_SEPARATOR not in name
    )
    return TOOL_NAME_SEPARATOR + "".join(f"{name}{TOOL_NAME_SEPARATOR}" for name in names)


def new_schedule_id() -> str:
    return new_id("sched")


def new_memory_id() -> str:
    return new_id("mem")


class Goal(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"
        ARCHIVED = "archived"

    id = models.CharField(primary_key=True, max_length=40, default=new_goal_id, editable=False)
    objective = models.TextField()
    params = models.JSONField(default=dict, blank=True)
    webhook_url = models.URLField(max_length=2048, null=True, blank=True)
    # Not a database constraint: deleting an agent leaves goals pointing at its id, as the
    # original does; `select_related("agent")` then yields None.
    agent = models.ForeignKey(
        "agents.Agent",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    owner = owner_field("owned_goals")
    created_at = models.DateTimeField(default=now, db_index=True)
    updated_at = models.DateTimeField(default=now)
    # Derived from params on every save (see allowed_tool_names_text): the tools page counts
    # goals per tool in the database with it instead of reading every goal's params.
    allowed_tool_names = models.TextField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "goals"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id}: {self.objective[:60]}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.allowed_tool_names = allowed_tool_names_text(self.params)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "params" in update_fields:
            kwargs["update_fields"] = {*update_fields, "allowed_tool_names"}
        super().save(*args, **kwargs)


class Schedule(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_schedule_id, editable=False)
    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="schedules")
    cron_expr = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC")
    active = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    # Set when beat could not compute the schedule's next time and disabled it; cleared when
    # the cron or time zone changes.
    error = models.TextField(null=True, blank=True)
    error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "schedules"
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.cron_expr} ({self.timezone})"


class Memory(models.Model):
    class Type(models.TextChoices):
        NOTE = "note"
        FACT = "fact"
        ARTIFACT = "artifact"

    id = models.CharField(primary_key=True, max_length=40, default=new_memory_id, editable=False)
    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="memories")
    type = models.CharField(max_length=16, choices=Type.choices)
    content = models.TextField()
    metadata = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, db_index=True)

    class Meta:
        db_table = "memories"
        ordering = ["-created_at"]
        verbose_name_plural = "memories"

    def __str__(self) -> str:
        return f"{self.type}: {self.content[:60]}"


def new_tick_id() -> str:
    return new_id("tick")


class ScheduleTick(models.Model):
    """What one cron tick of a goal schedule or a DAG schedule did: started, skipped or failed.

    Skips (the previous scheduled run still going, the run limit reached) and failures (a plan
    that cannot run) are otherwise invisible; a few recent ticks per schedule are kept.
    """

    class Outcome(models.TextChoices):
        STARTED = "started"
        SKIPPED = "skipped"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=40, default=new_tick_id, editable=False)
    schedule = models.ForeignKey(
        Schedule, null=True, blank=True, on_delete=models.CASCADE, related_name="ticks"
    )
    dag = models.ForeignKey(
        "dags.Dag", null=True, blank=True, on_delete=models.CASCADE, related_name="schedule_ticks"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.TextField(blank=True, default="")
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    execution = models.ForeignKey(
        "dags.DagExecution", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=now, db_index=True)

    class Meta:
        db_table = "schedule_ticks"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["schedule", "-created_at"], name="ticks_schedule_idx"),
            models.Index(fields=["dag", "-created_at"], name="ticks_dag_idx"),
        ]

    def __str__(self) -> str:
        subject = self.schedule_id or self.dag_id
        return f"{subject} {self.outcome} at {self.created_at:%Y-%m-%d %H:%M}"


class SchedulerHeartbeat(models.Model):
    """The scheduler's (beat's) last tick, written by beat itself: readiness reads it from the
    database, wherever beat runs. One row per scheduler name."""

    name = models.CharField(primary_key=True, max_length=64)
    ticked_at = models.DateTimeField()
    started_at = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True, default="")
    pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        db_table = "scheduler_heartbeats"

    def __str__(self) -> str:
        return f"{self.name} ticked at {self.ticked_at:%Y-%m-%d %H:%M:%S}"
