"""Celery tasks of the DAG app: thin wrappers around the execution services."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

from config.dispatcher import dispatcher_register
from dags.execution import recovery, services
from dags.planning.experiments import experiment_run

logger = logging.getLogger(__name__)

dispatcher_register(name="nodes", redispatch=recovery.executions_dispatch)


@shared_task(
    name="dags.run_sub_step",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_sub_step(sub_step_id: str) -> None:
    """Run one node (tool, inference or synthesis). Safe to deliver more than once."""
    services.node_run(sub_step_id=sub_step_id)


@shared_task(
    name="dags.run_sub_steps",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_sub_steps(self, execution_id: str, sub_step_ids: list[str]) -> None:
    """Run several nodes of one execution at once (see services.nodes_run). Safe to deliver
    more than once."""
    services.nodes_run(
        execution_id=execution_id, sub_step_ids=sub_step_ids, task_id=self.request.id
    )


@shared_task(name="dags.sweep_stalled_nodes", ignore_result=True)
def sweep_stalled_nodes(follow_up: bool = False) -> dict[str, int]:
    """Re-queue nodes whose worker died; when `follow_up`, check again once the next lease
    lapses (used at worker start, so a crash is recovered without waiting for beat)."""
    counts = recovery.executions_recover()
    if follow_up:
        wait = recovery.next_lease_expiry_seconds()
        if wait is not None:
            sweep_stalled_nodes.apply_async(kwargs={"follow_up": True}, countdown=wait + 1)
    return counts


@worker_ready.connect
def _recover_on_worker_start(sender=None, **kwargs) -> None:
    try:
        sweep_stalled_nodes.apply_async(kwargs={"follow_up": True})
    except Exception:  # the periodic sweep will do it
        logger.warning("could not schedule the start-up recovery sweep", exc_info=True)


@shared_task(name="dags.plan_experiment", ignore_result=False)
def plan_experiment(request: dict, owner_id: int | None = None) -> dict:
    """One dag-experiments run: plan and store a DAG; returns its outcome for the waiting API
    call (the only task whose result is kept, see CELERY_RESULT_BACKEND)."""
    return experiment_run(request=request, owner_id=owner_id)
