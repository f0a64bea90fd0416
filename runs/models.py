from __future__ import annotations

from django.db import models
from django.utils.timezone import now

from config.api.ids import new_id


def new_run_id() -> str:
    return new_id("run")


def new_step_id() -> str:
    return new_id("step")


def new_output_id() -> str:
    return new_id("out")


class Run(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=40, default=new_run_id, editable=False)
    goal = models.ForeignKey("goals.Goal", on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    working_memory = models.JSONField(default=dict, blank=True)
    step_budget = models.PositiveIntegerField()
    steps_executed = models.PositiveIntegerField(default=0)
    error = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, db_index=True)

    class Meta:
        db_table = "runs"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"], name="runs_status_idx")]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class Step(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_step_id, editable=False)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    step_no = models.PositiveIntegerField()
    thought = models.TextField(blank=True, default="")
    tool_name = models.CharField(max_length=100, null=True, blank=True)
    tool_input = models.JSONField(null=True, blank=True)
    observation = models.TextField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        db_table = "steps"
        ordering = ["step_no"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step_no"], name="steps_run_step_no_uniq")
        ]

    def __str__(self) -> str:
        return f"step {self.step_no} of {self.run_id}"


class Output(models.Model):
    class Kind(models.TextChoices):
        SUMMARY = "summary"
        FILE = "file"
        WEBHOOK = "webhook"
        EMAIL = "email"

    id = models.CharField(primary_key=True, max_length=40, default=new_output_id, editable=False)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="outputs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    path_or_payload = models.TextField()
    created_at = models.DateTimeField(default=now)

    class Meta:
        db_table = "outputs"
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.kind} of {self.run_id}"
