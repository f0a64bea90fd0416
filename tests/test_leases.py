"""The lease heartbeat outlives its failures: a beat that raises (the database away, a broken
connection) is logged, and the next beat renews the leases held. With nothing held it stops."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils.timezone import now

from config.leases import LeaseKeeper
from dags.models import SubStep
from tests.factories import SubStepFactory
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_failed_beat_does_not_stop_the_renewals(settings, caplog):
    settings.TEST_LEASE_HEARTBEAT_SECONDS = 0.02
    settings.TEST_LEASE_SECONDS = 30
    failures = {"left": 2}

    def model() -> type:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("database away")
        return SubStep

    node = SubStepFactory(status="running", lease_expires_at=now() + timedelta(seconds=1))
    keeper = LeaseKeeper(
        name="flaky",
        model=model,
        lease_setting="TEST_LEASE_SECONDS",
        heartbeat_setting="TEST_LEASE_HEARTBEAT_SECONDS",
    )
    with caplog.at_level(logging.WARNING, logger="config.leases"):
        keeper.hold(node.id)
        try:
            wait_for(
                lambda: (
                    SubStep.objects.get(pk=node.pk).lease_expires_at > now() + timedelta(seconds=20)
                ),
                timeout=10,
                message="the lease renewed after two failed beats",
            )
        finally:
            keeper.release(node.id)
        wait_for(lambda: not keeper.renewing, timeout=10, message="the idle heartbeat stopping")
    assert failures["left"] == 0
    assert [r.getMessage() for r in caplog.records].count("could not renew 1 flaky leases") == 2


def test_a_row_held_after_the_heartbeat_stopped_is_renewed_again(settings):
    settings.TEST_LEASE_HEARTBEAT_SECONDS = 0.02
    settings.TEST_LEASE_SECONDS = 30
    first, second = (
        SubStepFactory(status="running", lease_expires_at=now() + timedelta(seconds=1))
        for _ in range(2)
    )
    keeper = LeaseKeeper(
        name="idle",
        model=lambda: SubStep,
        lease_setting="TEST_LEASE_SECONDS",
        heartbeat_setting="TEST_LEASE_HEARTBEAT_SECONDS",
    )

    def renewed(node: SubStep) -> bool:
        return SubStep.objects.get(pk=node.pk).lease_expires_at > now() + timedelta(seconds=20)

    for node in (first, second):
        keeper.hold(node.id)
        wait_for(lambda: renewed(node), timeout=10, message=f"{node.id} renewed")  # noqa: B023
        keeper.release(node.id)
        wait_for(lambda: not keeper.renewing, timeout=10, message="the idle heartbeat stopping")
