"""Leases of running goal runs, renewed by one heartbeat thread per worker process (SPEC D18).

A run's lease says a live worker is on it. If the worker dies, the lease lapses and the
recovery sweep (`runs.services.runs_recover`) marks the run failed, so it stops counting
against MAX_CONCURRENT_RUNS. The set of runs held here is the only in-process state; losing it
loses nothing: the leases simply lapse.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils.timezone import now

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_held: set[str] = set()
_thread: threading.Thread | None = None


def lease_deadline() -> datetime:
    return now() + timedelta(seconds=settings.RUN_LEASE_SECONDS)


def hold(run_id: str) -> None:
    """Keep renewing this run's lease until `release()`."""
    global _thread
    with _lock:
        _held.add(run_id)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_renew_forever, name="run-leases", daemon=True)
            _thread.start()


def release(run_id: str) -> None:
    with _lock:
        _held.discard(run_id)


def _renew_forever() -> None:
    from runs.models import Run

    stop = threading.Event()
    while not stop.wait(settings.RUN_HEARTBEAT_SECONDS):
        with _lock:
            ids = list(_held)
        if not ids:
            continue
        try:
            Run.objects.filter(pk__in=ids, status=Run.Status.RUNNING).update(
                lease_expires_at=lease_deadline()
            )
        except Exception:  # the next beat tries again; a lapsed lease only fails the run
            logger.warning("could not renew %d run leases", len(ids), exc_info=True)
        finally:
            close_old_connections()
