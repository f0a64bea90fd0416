from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from config.api.ids import new_id


def new_agent_id() -> str:
    return new_id("agent")


class Provider(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    OPENROUTER = "openrouter", "OpenRouter"
    OPENROUTER_FETCH = "openrouter-fetch", "OpenRouter (alias)"
    OLLAMA = "ollama", "Ollama"


class Agent(models.Model):
    """A named, versioned prompt template bound to a provider and model; one active per name."""

    id = models.CharField(primary_key=True, max_length=40, default=new_agent_id, editable=False)
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=100)
    prompt_template = models.TextField()
    provider = models.CharField(max_length=32, choices=Provider.choices, null=True, blank=True)
    model = models.CharField(max_length=200, null=True, blank=True)
    active = models.BooleanField(default=False)
    metadata = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, db_index=True)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        db_table = "agents"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="idx_name_version"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(active=True), name="idx_active_agent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class LlmCheck(models.Model):
    """The last readiness check of one provider/model (`manage.py check_llm`).

    Kept in the database so that every web process reports the same result on /health/ready.
    """

    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=200)
    configured = models.BooleanField(default=False)
    ok = models.BooleanField(default=False)
    tool_calling = models.BooleanField(default=False)
    latency_ms = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    # What asked for this pair: "default" and/or the agent names that use it.
    used_by = models.JSONField(default=list, blank=True)
    checked_at = models.DateTimeField(default=now)

    class Meta:
        db_table = "llm_checks"
        ordering = ["-checked_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "model"], name="uniq_llm_check_target")
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}: {'ok' if self.ok else 'failed'}"
