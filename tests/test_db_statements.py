"""The ORM-free statements of the node hot path (`config.db`): `update_row` stores values as
the ORM stores them, and its extra conditions decide whether a row changes; `read_instances`
reads rows back as the ORM reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from config.db import read_instances, update_row
from dags.models import DagExecution, SubStep
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


def test_read_instances_converts_like_the_orm_and_defers_what_it_does_not_read():
    sub_step = SubStepFactory(
        status=SubStep.Status.COMPLETED,
        result={"answer": [1, 2]},
        cost_usd=Decimal("0.5"),
        completed_at=datetime(2026, 11, 29, 9, 0, 1, 250000, tzinfo=UTC),
        dependencies=["001"],
    )
    sub_step.execution.total_cost_usd = Decimal("1.25")
    sub_step.execution.save()

    (read,) = read_instances(
        SubStep, "SELECT {columns} FROM sub_steps WHERE id = %s", [sub_step.pk]
    )
    orm = SubStep.objects.get(pk=sub_step.pk)
    for field in SubStep._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(orm, field.attname), field.name

    (partial,) = read_instances(
        DagExecution,
        "SELECT {columns} FROM dag_executions WHERE id = %s",
        [sub_step.execution_id],
        fields=["total_cost_usd", "id", "status"],  # any order: read in the model's order
    )
    assert partial.total_cost_usd == Decimal("1.25")
    assert partial.get_deferred_fields() >= {"plan_context", "final_result"}
    assert partial.plan_context == sub_step.execution.plan_context  # loads on access

    assert read_instances(SubStep, "SELECT {columns} FROM sub_steps WHERE id = %s", ["no"]) == []
