from __future__ import annotations

from django.db import models
from django.utils.timezone import now

from config.api.ids import new_id


def new_goal_id() -> str:
    return new_id("goal")


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
    created_at = models.DateTimeField(default=now, db_index=True)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        db_table = "goals"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id}: {self.objective[:60]}"


class Schedule(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_schedule_id, editable=False)
    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="schedules")
    cron_expr = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC")
    active = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)

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
