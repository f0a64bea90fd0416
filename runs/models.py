from __future__ import annotations

from django.db import models
from django.utils.timezone import now

from config.access import owner_field
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

    class Trigger(models.TextChoices):
        MANUAL = "manual"
        SCHEDULE = "schedule"

    id = models.CharField(primary_key=True, max_length=40, default=new_run_id, editable=False)
    goal = models.ForeignKey("goals.Goal", on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    working_memory = models.JSONField(default=dict, blank=True)
    step_budget = models.PositiveIntegerField()
    steps_executed = models.PositiveIntegerField(default=0)
    error = models.TextField(null=True, blank=True)
    # Sequence number of the last stored run event; bumped under a row lock (runs/events.py).
    last_event_seq = models.PositiveBigIntegerField(default=0)
    trigger = models.CharField(
        max_length=16, choices=Trigger.choices, default=Trigger.MANUAL, db_index=True
    )
    # Token usage and USD cost of every LLM call of the run, summed as the run goes.
    usage = models.JSONField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    # Scheduling state (not part of the API): a running run whose lease lapsed lost its worker.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker started it.")
    owner = owner_field("owned_runs")
    created_at = models.DateTimeField(default=now, db_index=True)

    class Meta:
        db_table = "runs"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status"], name="runs_status_idx"),
            models.Index(fields=["status", "lease_expires_at"], name="runs_lease_idx"),
        ]

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
    # Every tool call of the step: [{id, name, arguments, status, error, durationMs}], where
    # status is ok, error or refused (a tool the goal does not allow).
    tool_calls = models.JSONField(default=list, blank=True)
    usage = models.JSONField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
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


class RunEvent(models.Model):
    """A stored run event: replayable by sequence number after a reconnect, like ExecutionEvent."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=now, db_index=True)

    class Meta:
        db_table = "run_events"
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="run_events_seq_uniq")]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.seq} {self.type}"
