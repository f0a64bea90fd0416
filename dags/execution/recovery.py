"""Finding work that a dead worker or a lost message left behind (SPEC D18).

Run by the periodic sweep (beat), when a worker starts, and by
`manage.py recover_executions`. Everything here is idempotent: re-queuing a node that is in
fact alive is harmless, because claiming is a conditional update.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.timezone import now

from dags.models import DagExecution, SubStep

logger = logging.getLogger(__name__)

NodeStatus = SubStep.Status


def executions_recover() -> dict[str, int]:
    """Re-queue nodes whose worker died or whose message was lost; push stuck executions on."""
    from dags.execution import services

    stamp = now()
    running_executions = DagExecution.objects.filter(status=DagExecution.Status.RUNNING)
    lapsed = list(
        SubStep.objects.filter(
            execution__in=running_executions,
            status=NodeStatus.RUNNING,
            lease_expires_at__lt=stamp,
        ).values_list("id", flat=True)
    )
    stale = list(
        SubStep.objects.filter(
            execution__in=running_executions,
            status=NodeStatus.PENDING,
            dispatched_at__lt=stamp - timedelta(seconds=settings.NODE_DISPATCH_STALE_SECONDS),
        ).values_list("id", flat=True)
    )
    exhausted = list(
        SubStep.objects.filter(pk__in=lapsed, attempts__gte=settings.NODE_MAX_ATTEMPTS).values_list(
            "id", flat=True
        )
    )
    for sub_step_id in exhausted:
        services.sub_step_give_up(sub_step_id=sub_step_id)
    lapsed = [sub_step_id for sub_step_id in lapsed if sub_step_id not in set(exhausted)]
    requeue = lapsed + stale
    if requeue:
        with transaction.atomic():
            services._hand_over(requeue, stamp)
    idle = list(
        running_executions.exclude(
            Q(sub_steps__status=NodeStatus.RUNNING)
            | Q(sub_steps__status=NodeStatus.PENDING, sub_steps__dispatched_at__isnull=False)
        ).values_list("id", flat=True)
    )
    advanced = 0
    for execution_id in idle:
        with transaction.atomic():
            execution = DagExecution.objects.select_for_update().get(pk=execution_id)
            before = SubStep.objects.filter(
                execution=execution, dispatched_at__isnull=False
            ).count()
            services._dispatch_ready(execution)
            after = SubStep.objects.filter(execution=execution, dispatched_at__isnull=False).count()
            advanced += after > before
    counts = {
        "lapsed": len(lapsed),
        "stale": len(stale),
        "given_up": len(exhausted),
        "advanced": advanced,
    }
    if any(counts.values()):
        logger.warning("recovered executions %s", counts)
    return counts


def next_lease_expiry_seconds() -> float | None:
    """Seconds until the earliest lease of a running node lapses (None if there is none)."""
    earliest = (
        SubStep.objects.filter(
            status=NodeStatus.RUNNING, execution__status=DagExecution.Status.RUNNING
        )
        .order_by("lease_expires_at")
        .values_list("lease_expires_at", flat=True)
        .first()
    )
    if earliest is None:
        return None
    return max(0.0, (earliest - now()).total_seconds())
