"""Run lifecycle changes made from the API (the step loop lives in the orchestrator)."""

from __future__ import annotations

import logging

from django.db import transaction

from runs.models import Run

logger = logging.getLogger(__name__)


@transaction.atomic
def run_delete(*, run: Run) -> None:
    """Delete the run with its steps and outputs."""
    run_id = run.id
    run.delete()
    logger.info("run deleted id=%s", run_id)
