"""Who wrote each file of the artifacts folder (the files themselves live in ARTIFACTS_DIR)."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now

from config.access import owner_field


class Artifact(models.Model):
    """One file of the artifacts folder and its last writer.

    The folder is one namespace, as the tools' paths are; the file tools refuse to read or
    overwrite another user's file (artifacts.selectors.artifact_access_check). Files with no
    record (put there by hand, or written before records existed) are visible to staff only.
    """

    path = models.CharField(
        max_length=1024, unique=True, help_text="Relative to ARTIFACTS_DIR, with '/'."
    )
    owner = owner_field("owned_artifacts")
    execution = models.ForeignKey(
        "dags.DagExecution",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="artifacts",
        help_text="The execution that last wrote it.",
    )
    run = models.ForeignKey(
        "runs.Run",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="artifacts",
        help_text="The goal run that last wrote it.",
    )
    size = models.PositiveBigIntegerField(default=0, help_text="Bytes after the last write.")
    created_at = models.DateTimeField(default=now, db_index=True)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        db_table = "artifacts"
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path
