"""Leases of running DAG nodes: a node whose lease lapsed lost its worker and is handed to
another one by the recovery sweep."""

from __future__ import annotations

from config.leases import LeaseKeeper


def _sub_step_model() -> type:
    from dags.models import SubStep

    return SubStep


_keeper = LeaseKeeper(
    name="node",
    model=_sub_step_model,
    lease_setting="NODE_LEASE_SECONDS",
    heartbeat_setting="NODE_HEARTBEAT_SECONDS",
)
lease_deadline = _keeper.lease_deadline
hold = _keeper.hold
release = _keeper.release
