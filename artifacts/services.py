"""Recording who wrote a file of the artifacts folder."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils.timezone import now

from artifacts.models import Artifact

logger = logging.getLogger(__name__)


@transaction.atomic
def artifact_record_write(
    *,
    path: str,
    size: int,
    owner_id: int | None,
    execution_id: str | None = None,
    run_id: str | None = None,
) -> Artifact:
    """Record that user `owner_id` (through an execution or a run) wrote the file at `path`
    (relative to the artifacts folder, as the writeFile tool reports it). A file written again
    belongs to its latest writer."""
    stamp = now()
    fields = {
        "owner_id": owner_id,
        "execution_id": execution_id,
        "run_id": run_id,
        "size": size,
        "updated_at": stamp,
    }
    artifact, created = Artifact.objects.update_or_create(
        path=path, defaults=fields, create_defaults={**fields, "created_at": stamp}
    )
    logger.debug("artifact %s path=%s", "recorded" if created else "rewritten", path)
    return artifact


def artifact_record_tool_write(
    *,
    result: Any,
    owner_id: int | None,
    execution_id: str | None = None,
    run_id: str | None = None,
) -> Artifact | None:
    """Record a writeFile result (`{"path", "size", ...}`) for the execution or run that made
    the call; a result without a path records nothing."""
    if not isinstance(result, dict) or not isinstance(result.get("path"), str):
        return None
    size = result.get("size")
    return artifact_record_write(
        path=result["path"],
        size=size if isinstance(size, int) and size >= 0 else 0,
        owner_id=owner_id,
        execution_id=execution_id,
        run_id=run_id,
    )
