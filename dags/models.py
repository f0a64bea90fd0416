from __future__ import annotations

from django.db import models
from django.utils.timezone import now

from config.access import owner_field
from config.api.ids import new_id


def new_dag_id() -> str:
    """DAGs planned by create-dag have a bare 16-character id, as clients expect."""
    return new_id()


def new_execution_id() -> str:
    return new_id("dag-exec")


def new_sub_step_id() -> str:
    return new_id("sub-step")


SYNTHESIS_TASK_ID = "__SYNTHESIS__"


class Dag(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_dag_id, editable=False)
    status = models.CharField(max_length=64, default="success")
    result = models.JSONField(null=True, blank=True, help_text="The DecomposerJob (snake_case).")
    usage = models.JSONField(null=True, blank=True)
    generation_stats = models.JSONField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    params = models.JSONField(null=True, blank=True)
    agent_name = models.CharField(max_length=200, null=True, blank=True)
    dag_title = models.CharField(max_length=500, null=True, blank=True)
    cron_schedule = models.CharField(max_length=200, null=True, blank=True)
    schedule_active = models.BooleanField(default=False)
    last_run_at = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    # Set when beat could not compute the cron's next time and disabled it; cleared when the
    # cron or time zone changes.
    schedule_error = models.TextField(null=True, blank=True)
    schedule_error_at = models.DateTimeField(null=True, blank=True)
    owner = owner_field("owned_dags")
    created_at = models.DateTimeField(default=now, db_index=True)
    updated_at = models.DateTimeField(default=now, db_index=True)
    planning_total_usage = models.JSONField(null=True, blank=True)
    planning_total_cost_usd = models.DecimalField(
        max_digits=20, decimal_places=10, null=True, blank=True
    )
    planning_attempts = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "dags"
        ordering = ["-created_at"]
        verbose_name = "DAG"

    def __str__(self) -> str:
        return self.dag_title or self.id


class DagExecution(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        WAITING = "waiting"
        COMPLETED = "completed"
        FAILED = "failed"
        PARTIAL = "partial"
        SUSPENDED = "suspended"
        CANCELLED = "cancelled"

    id = models.CharField(primary_key=True, max_length=40, default=new_execution_id, editable=False)
    dag = models.ForeignKey(
        Dag, null=True, blank=True, on_delete=models.PROTECT, related_name="executions"
    )
    original_request = models.TextField()
    primary_intent = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    total_tasks = models.PositiveIntegerField(default=0)
    completed_tasks = models.PositiveIntegerField(default=0)
    failed_tasks = models.PositiveIntegerField(default=0)
    waiting_tasks = models.PositiveIntegerField(default=0)
    final_result = models.TextField(null=True, blank=True)
    synthesis_result = models.TextField(null=True, blank=True)
    suspended_reason = models.TextField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    retry_count = models.PositiveIntegerField(default=0)
    last_retry_at = models.DateTimeField(null=True, blank=True)
    total_usage = models.JSONField(null=True, blank=True)
    total_cost_usd = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    # The plan's global context (request, intents, entities, synthesis plan) as it was when
    # the execution was created, so later edits of the DAG do not change a running execution.
    plan_context = models.JSONField(default=dict, blank=True)
    # Sequence number of the last stored event; bumped under a row lock.
    last_event_seq = models.PositiveBigIntegerField(default=0)
    owner = owner_field("owned_dag_executions")
    created_at = models.DateTimeField(default=now, db_index=True)
    updated_at = models.DateTimeField(default=now, db_index=True)

    class Meta:
        db_table = "dag_executions"
        ordering = ["-updated_at"]
        verbose_name = "DAG execution"
        indexes = [
            models.Index(fields=["dag", "-created_at"], name="dag_exec_dag_created_idx"),
            models.Index(fields=["status"], name="dag_exec_status_idx"),
            # The cost pages count an execution by when it completed: staff over every
            # execution, everyone else over their own.
            models.Index(fields=["completed_at"], name="dag_exec_completed_idx"),
            models.Index(fields=["owner", "completed_at"], name="dag_exec_owner_completed_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class SubStep(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        WAITING = "waiting"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class ActionType(models.TextChoices):
        TOOL = "tool"
        INFERENCE = "inference"

    id = models.CharField(primary_key=True, max_length=40, default=new_sub_step_id, editable=False)
    execution = models.ForeignKey(DagExecution, on_delete=models.CASCADE, related_name="sub_steps")
    task_id = models.CharField(max_length=64)
    description = models.TextField(blank=True, default="")
    thought = models.TextField(blank=True, default="")
    action_type = models.CharField(max_length=16, choices=ActionType.choices)
    tool_or_prompt_name = models.CharField(max_length=200)
    tool_or_prompt_params = models.JSONField(null=True, blank=True)
    dependencies = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(null=True, blank=True)
    usage = models.JSONField(null=True, blank=True)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=10, null=True, blank=True)
    generation_stats = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)
    # Scheduling state (not part of the API): the database, not the queue, decides what runs.
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When the node was handed to the queue."
    )
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="A running node whose lease lapsed lost its worker."
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker started it.")
    remaining_dependencies = models.PositiveIntegerField(default=0)
    dependants = models.JSONField(default=list, blank=True, help_text="Task ids waiting on it.")
    queue_task_id = models.CharField(max_length=100, null=True, blank=True)

    class Meta:
        db_table = "sub_steps"
        ordering = ["task_id"]
        verbose_name = "sub-step"
        indexes = [
            models.Index(fields=["execution", "status"], name="sub_steps_exec_status_idx"),
            models.Index(fields=["status", "lease_expires_at"], name="sub_steps_lease_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "task_id"], name="sub_steps_execution_task_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.task_id} of {self.execution_id}"


class ExecutionEvent(models.Model):
    """A stored execution event: replayable by sequence number after a reconnect."""

    execution = models.ForeignKey(DagExecution, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=now, db_index=True)

    class Meta:
        db_table = "execution_events"
        ordering = ["execution", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "seq"], name="execution_events_seq_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.execution_id}#{self.seq} {self.type}"
