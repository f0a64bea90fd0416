"""`config.db.update_row`, the ORM-free single-row UPDATE of the node hot path: values are
stored exactly as the ORM stores them, and the extra conditions decide whether a row changes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from config.db import update_row
from dags.models import SubStep
from tests.factories import SubStepFactory

pytestmark = pytest.mark.django_db


def test_values_read_back_as_the_orm_wrote_them():
    sub_step = SubStepFactory(status=SubStep.Status.RUNNING)
    stamp = datetime(2026, 11, 29, 10, 11, 12, 345678, tzinfo=UTC)
    changed = update_row(
        SubStep,
        sub_step.pk,
        {
            "status": SubStep.Status.COMPLETED,  # a choices member, stored as its value
            "result": {"rows": [1, "two"], "ok": True},
            "usage": None,
            "cost_usd": Decimal("0.000123"),
            "completed_at": stamp,
            "duration_ms": 42,
        },
    )
    assert changed == 1
    stored = SubStep.objects.get(pk=sub_step.pk)
    assert stored.status == "completed"
    assert stored.result == {"rows": [1, "two"], "ok": True}
    assert stored.usage is None
    assert stored.cost_usd == Decimal("0.000123")
    assert stored.completed_at == stamp
    assert stored.duration_ms == 42
    # The ORM finds the row by the values update_row wrote.
    assert SubStep.objects.filter(completed_at=stamp, status="completed").count() == 1


def test_extra_conditions_leave_a_row_that_does_not_match_unchanged():
    sub_step = SubStepFactory(status=SubStep.Status.RUNNING, attempts=2)
    stale = update_row(
        SubStep,
        sub_step.pk,
        {"status": SubStep.Status.FAILED},
        where="status = %s AND attempts = %s",
        params=["running", 1],  # another worker took the node over meanwhile
    )
    assert stale == 0
    assert SubStep.objects.get(pk=sub_step.pk).status == "running"
    current = update_row(
        SubStep,
        sub_step.pk,
        {"status": SubStep.Status.FAILED},
        where="status = %s AND attempts = %s",
        params=["running", 2],
    )
    assert current == 1
    assert SubStep.objects.get(pk=sub_step.pk).status == "failed"
