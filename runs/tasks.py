"""Celery tasks of goal runs: thin wrappers around the run services."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

from config.dispatcher import dispatcher_register
from runs import loop, notify, services

logger = logging.getLogger(__name__)

dispatcher_register(name="runs", redispatch=services.runs_dispatch)


@shared_task(name="runs.run_goal", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_goal(run_id: str) -> None:
    """Run one goal run through the step loop. Safe to deliver more than once: only a pending
    run is claimed."""
    loop.run_execute(run_id=run_id)


@shared_task(name="runs.deliver_run_webhook", acks_late=True, ignore_result=True)
def deliver_run_webhook(run_id: str) -> None:
    """POST a finished run to its goal's webhook (used for runs failed by the recovery sweep)."""
    notify.run_webhook_deliver(run_id=run_id)


@shared_task(name="runs.sweep_stalled_runs", ignore_result=True)
def sweep_stalled_runs() -> dict[str, int]:
    """Fail runs whose worker died; queue again runs whose message was lost."""
    return services.runs_recover()


@worker_ready.connect
def _recover_runs_on_worker_start(sender=None, **kwargs) -> None:
    try:
        sweep_stalled_runs.apply_async()
    except Exception:  # the periodic sweep will do it
        logger.warning("could not schedule the start-up run recovery sweep", exc_info=True)
