"""The tool registry is code, not data. The one table here records side effects already done,
so that a retried or re-claimed DAG task does not do them twice."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now


class ToolEffect(models.Model):
    """One side effect of one DAG task (`key`: the task's idempotency key), with its result."""

    class Status(models.TextChoices):
        STARTED = "started"  # under way, or its worker died while doing it
        DONE = "done"

    key = models.CharField(max_length=128, unique=True)
    tool = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STARTED)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, db_index=True)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        db_table = "tool_effects"

    def __str__(self) -> str:
        return f"{self.tool} {self.key} ({self.status})"
