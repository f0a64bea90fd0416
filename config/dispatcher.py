"""The dispatcher: each worker process checks, every DISPATCH_INTERVAL_SECONDS, that the work
the database says is ready has a message on its way to a worker.

The database is the source of truth and the broker only transport, so a message can be lost
without losing work: the publish failed (broker down), the broker restarted without its data,
or the worker holding the work died (its lease lapsed). Each app registers one function that
finds such work in its own tables and sends it again; this module only runs them, with
`broker_lost=True` on the one pass (across all workers) that first sees the broker's data gone.
Sending twice is harmless everywhere: claiming work is a conditional update.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from config.broker import broker_lost_messages

logger = logging.getLogger(__name__)

Redispatch = Callable[..., Any]  # called as fn(broker_lost=bool)

_registered: dict[str, Redispatch] = {}
_lock = threading.Lock()
_thread: threading.Thread | None = None


def dispatcher_register(*, name: str, redispatch: Redispatch) -> None:
    """Have `redispatch(broker_lost=...)` called on every pass."""
    _registered[name] = redispatch


def dispatcher_pass(*, broker_url: str) -> dict[str, Any] | None:
    """One pass over every registered function; None when the broker cannot be reached (no
    message could be sent, so there is nothing to do until it is back)."""
    try:
        lost = broker_lost_messages(broker_url)
    except Exception as error:  # redis errors and OSErrors alike: the broker is away
        logger.info("dispatcher: broker unreachable (%s); waiting for it", error)
        return None
    outcome: dict[str, Any] = {"broker_lost": lost}
    for name, redispatch in list(_registered.items()):
        try:
            outcome[name] = redispatch(broker_lost=lost)
        except Exception:  # the next pass tries again; one app's failure must not stop others
            logger.exception("dispatcher: %s failed", name)
    if lost:
        _report_lost_broker(outcome)
    return outcome


def _report_lost_broker(outcome: dict[str, Any]) -> None:
    """A broker without our epoch key is new or lost its data (restarted without persistence);
    the two look the same. Only work that had to be sent again shows that messages were lost:
    a first start, with nothing in flight, is not worth a warning."""
    resent = {
        name: counts
        for name, counts in outcome.items()
        if isinstance(counts, dict) and any(counts.values())
    }
    if resent:
        logger.warning(
            "dispatcher: the broker lost its queued messages; work sent again: %s", resent
        )
    else:
        logger.info("dispatcher: a new or emptied broker; no queued work had to be sent again")


def dispatcher_start(*, broker_url: str) -> None:
    """Start this process's dispatcher thread (once)."""
    global _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return
        _thread = threading.Thread(
            target=_run_forever, args=(broker_url,), name="dispatcher", daemon=True
        )
        _thread.start()


def _run_forever(broker_url: str) -> None:
    stop = threading.Event()
    while not stop.wait(settings.DISPATCH_INTERVAL_SECONDS):
        try:
            dispatcher_pass(broker_url=broker_url)
        finally:
            close_old_connections()
