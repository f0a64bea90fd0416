"""Leases of running goal runs: a run whose lease lapsed lost its worker and is failed by the
recovery sweep (`runs.services.runs_recover`), so it stops counting against
MAX_CONCURRENT_RUNS."""

from __future__ import annotations

from config.leases import LeaseKeeper


def _run_model() -> type:
    from runs.models import Run

    return Run


_keeper = LeaseKeeper(
    name="run",
    model=_run_model,
    lease_setting="RUN_LEASE_SECONDS",
    heartbeat_setting="RUN_HEARTBEAT_SECONDS",
)
lease_deadline = _keeper.lease_deadline
hold = _keeper.hold
release = _keeper.release
