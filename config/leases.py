"""Leases of work in progress, renewed by one heartbeat thread per worker process.

A lease says a live worker is on a row (a DAG node, a goal run). If the worker dies, the lease
lapses and a recovery sweep deals with the row. The set of ids held here is the only in-process
state, and losing it loses nothing: the leases simply lapse.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import Subquery
from django.utils.timezone import now

from config.db import write_transaction

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews `lease_expires_at` of held rows of one model while they are `running`."""

    def __init__(
        self, *, name: str, model: Callable[[], type], lease_setting: str, heartbeat_setting: str
    ) -> None:
        self.name = name
        self._model = model  # resolved lazily: apps are not loaded at import time
        self._lease_setting = lease_setting
        self._heartbeat_setting = heartbeat_setting
        self._lock = threading.Lock()
        self._held: set[str] = set()
        self._thread: threading.Thread | None = None

    def lease_deadline(self) -> datetime:
        return now() + timedelta(seconds=getattr(settings, self._lease_setting))

    def hold(self, row_id: str) -> None:
        """Keep renewing this row's lease until `release()`."""
        with self._lock:
            self._held.add(row_id)
            # (not alive: ended some other way, or left behind by a fork)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._renew_forever, name=f"{self.name}-leases", daemon=True
                )
                self._thread.start()

    def release(self, row_id: str) -> None:
        with self._lock:
            self._held.discard(row_id)

    def _renew(self, model: Any, ids: list[str]) -> None:
        """Renew the running rows among `ids`, except those another transaction holds: they
        are being finished right now (by this worker), and waiting for them would let this
        one statement lock its rows in an order of the database's choosing while a finishing
        transaction locks some of the same rows in its own, which PostgreSQL ends as a deadlock."""
        # Every model given here is a run or a node row with its default manager.
        free = (
            model.objects.filter(pk__in=ids, status="running")
            .select_for_update(skip_locked=True)
            .values("pk")
        )
        with write_transaction():
            model.objects.filter(pk__in=Subquery(free)).update(
                lease_expires_at=self.lease_deadline()
            )

    @property
    def renewing(self) -> bool:
        """Whether a heartbeat thread runs (it stops at the first beat that finds nothing held,
        and `hold()` starts another)."""
        with self._lock:
            return self._thread is not None

    def _renew_forever(self) -> None:
        heartbeat = getattr(settings, self._heartbeat_setting)
        while True:
            time.sleep(heartbeat)
            with self._lock:
                ids = list(self._held)
                if not ids:  # decided under the lock `hold()` takes: no row is left unrenewed
                    self._thread = None
            if not ids:
                connections.close_all()  # this thread's own, not left to the garbage collector
                return
            # Nothing a beat raises may end the thread: rows held now would lose their leases,
            # and the sweep would hand work still running here to another worker.
            try:
                self._beat(ids)
            except Exception:  # the next beat tries again; a lapsed lease means a sweep
                logger.warning("could not renew %d %s leases", len(ids), self.name, exc_info=True)

    def _beat(self, ids: list[str]) -> None:
        try:
            self._renew(self._model(), ids)
        finally:
            close_old_connections()
