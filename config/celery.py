"""The Celery application: `celery -A config worker` and `celery -A config beat`."""

import logging
import os
from typing import Any

from celery import Celery
from celery.app.amqp import AMQP
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_ready,
)
from kombu import Connection

from config.heap import skip_collection_at_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Every process of the system imports this module (config/__init__.py): each exits promptly.
skip_collection_at_exit()


class QuickReconnection(Connection):
    """A broker connection that, when lost, is tried again every second or two.

    kombu waits 2, 4, 6 ... up to 30 s between attempts, so a worker could stay away for half a
    minute after the broker is back (measured: 5.5-6.4 s after a 14 or 25 s outage, against
    0.7-1.4 s with this); work the dispatcher sends again would wait for it. The worker asks for
    its connection without intervals, so `broker_transport_options` cannot set them; Celery
    takes the connection class from its `amqp` class (`AMQP.Connection`).
    """

    def ensure_connection(
        self,
        errback=None,
        max_retries=None,
        interval_start: float = 1,
        interval_step: float = 1,
        interval_max: float = 2,
        **kwargs,
    ):
        return super().ensure_connection(
            errback, max_retries, interval_start, interval_step, interval_max, **kwargs
        )


class AsyncAgentAMQP(AMQP):
    Connection = QuickReconnection


# `amqp`: broker connections that come back quickly (QuickReconnection).
app = Celery("async_agent", amqp="config.celery:AsyncAgentAMQP")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_database_connections(**kwargs) -> None:
    """Keep each worker thread's database connection between tasks, as Django keeps a web
    thread's between requests: closed only when older than CONN_MAX_AGE or broken.

    Celery's own Django fixup closes it before and after every task unless
    CELERY_DB_REUSE_MAX is set (it is, in settings), and opening a SQLite or PostgreSQL
    connection per DAG node was a noticeable share of each node's cost.
    """
    from django.db import close_old_connections

    close_old_connections()


@worker_ready.connect
@worker_process_init.connect
def _freeze_startup_objects(**kwargs) -> None:
    """Once the worker (or, with the prefork pool, each child) has loaded its tasks, keep
    start-up objects out of the collector's full passes: one would stall every node running in
    the process (see config.heap)."""
    from config.heap import freeze_startup_objects

    freeze_startup_objects()


# The shutdown flag and heartbeats (config.workers) connect to the worker's signals.
import config.workers  # noqa: E402, F401


@worker_ready.connect
def _start_dispatcher(**kwargs) -> None:
    """Each worker re-sends ready work whose message was lost (see config.dispatcher)."""
    from config.dispatcher import dispatcher_start

    dispatcher_start(broker_url=app.conf.broker_url)


@setup_logging.connect
def _log_as_django_does(loglevel: int | str | None = None, **kwargs: Any) -> None:
    """Workers and beat keep the handlers of the LOGGING setting (same format, `LOG_FORMAT=json`
    and the request id on every line), which django.setup() installed, instead of Celery's own;
    `--loglevel` still sets the level."""
    if loglevel:
        logging.getLogger().setLevel(loglevel)


@before_task_publish.connect
def _send_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """A task sent while handling a request (or running a task) carries that request's id."""
    from config.logs import TASK_HEADER, request_id_get

    value = request_id_get()
    if value and headers is not None:
        headers.setdefault(TASK_HEADER, value)


@task_prerun.connect
def _adopt_request_id(task: Any = None, task_id: str | None = None, **kwargs: Any) -> None:
    """The worker thread logs under the id the task was sent with, or the task's own id.

    Kept until the thread's next task, so Celery's own line on the task's outcome has it too.
    A task run eagerly in the caller's thread keeps the caller's id."""
    from config.logs import TASK_HEADER, request_id_set

    request = getattr(task, "request", None)
    if request is None or request.is_eager:
        return
    request_id_set(getattr(request, TASK_HEADER, None) or task_id)
