"""Leases of running nodes, renewed by one heartbeat thread per worker process.

A node's lease is its promise that a live worker is on it. If the worker dies (SIGKILL, OOM,
machine loss) the lease lapses and the recovery sweep hands the node to another worker. The
set of nodes this process runs is the only in-process state, and losing it loses nothing: the
leases simply lapse.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils.timezone import now

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_running: set[str] = set()
_thread: threading.Thread | None = None
_wake = threading.Event()


def lease_deadline():
    return now() + timedelta(seconds=settings.NODE_LEASE_SECONDS)


def hold(sub_step_id: str) -> None:
    """Keep renewing this node's lease until `release()`."""
    global _thread
    with _lock:
        _running.add(sub_step_id)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_renew_forever, name="node-leases", daemon=True)
            _thread.start()


def release(sub_step_id: str) -> None:
    with _lock:
        _running.discard(sub_step_id)


def _renew_forever() -> None:
    from dags.models import SubStep

    while True:
        _wake.wait(settings.NODE_HEARTBEAT_SECONDS)
        _wake.clear()
        with _lock:
            ids = list(_running)
        if not ids:
            continue
        try:
            SubStep.objects.filter(pk__in=ids, status=SubStep.Status.RUNNING).update(
                lease_expires_at=lease_deadline()
            )
        except Exception:  # the next beat tries again; a lapsed lease only means a re-run
            logger.warning("could not renew %d node leases", len(ids), exc_info=True)
        finally:
            close_old_connections()
