"""Claims (`config.claims`): the ORM's own UPDATE with RETURNING. A claim changes only rows that
still match, returns them as the ORM would read them, and takes nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db.models import F

from config.claims import claim, claim_one
from dags.models import DagExecution, SubStep
from runs import leases
from runs.models import Run
from runs.services import run_claim
from tests.factories import GoalFactory, SubStepFactory

pytestmark = pytest.mark.django_db


def test_a_claim_returns_the_row_as_changed_converted_as_orm_reads_are():
    sub_step = SubStepFactory(status=SubStep.Status.PENDING, attempts=0)
    stamp = datetime(2026, 11, 29, 10, 11, 12, 345678, tzinfo=UTC)

    taken = claim_one(
        SubStep.objects.filter(pk=sub_step.pk, status=SubStep.Status.PENDING),
        changes={
            "status": SubStep.Status.RUNNING,  # a choices member, stored as its value
            "started_at": stamp,
            "attempts": F("attempts") + 1,
            "result": {"rows": [1, "two"], "ok": True},
            "cost_usd": Decimal("0.000123"),
        },
    )

    assert taken is not None
    orm = SubStep.objects.get(pk=sub_step.pk)
    for field in SubStep._meta.concrete_fields:
        assert getattr(taken, field.attname) == getattr(orm, field.attname), field.name
    assert taken.status == "running"
    assert taken.attempts == 1  # the value after the change
    assert taken.started_at == stamp
    assert taken.result == {"rows": [1, "two"], "ok": True}
    assert taken.cost_usd == Decimal("0.000123")


def test_a_row_that_no_longer_matches_is_not_taken_again():
    sub_step = SubStepFactory(status=SubStep.Status.PENDING)
    pending = SubStep.objects.filter(pk=sub_step.pk, status=SubStep.Status.PENDING)

    first = claim_one(pending, changes={"status": SubStep.Status.RUNNING})
    second = claim_one(pending, changes={"status": SubStep.Status.RUNNING})

    assert first is not None
    assert second is None
    assert claim(SubStep.objects.filter(pk="missing"), changes={"attempts": 1}) == []


def test_fields_not_returned_are_deferred():
    sub_step = SubStepFactory()
    execution = sub_step.execution
    execution.total_cost_usd = Decimal("1.25")
    execution.save()

    (counter,) = claim(
        DagExecution.objects.filter(pk=execution.pk),
        changes={"last_event_seq": F("last_event_seq") + 3},
        returning=["last_event_seq", "total_cost_usd", "id"],  # any order
    )

    assert counter.last_event_seq == execution.last_event_seq + 3
    assert counter.total_cost_usd == Decimal("1.25")
    assert counter.get_deferred_fields() >= {"plan_context", "final_result"}
    assert counter.plan_context == execution.plan_context  # loads on access
    with pytest.raises(ValueError, match="no fields"):
        claim(DagExecution.objects.filter(pk=execution.pk), changes={}, returning=["nope"])


def test_goal_runs_and_nodes_claim_the_same_way(user):
    run = Run.objects.create(goal=GoalFactory(owner=user), owner=user, step_budget=3)

    try:
        claimed = run_claim(run_id=run.id)
        assert claimed is not None and claimed.status == "running" and claimed.attempts == 1
        assert run_claim(run_id=run.id) is None  # a duplicate delivery takes nothing
    finally:
        leases.release(run.id)  # as the run's end does: its heartbeat stops with the test


def test_a_sliced_queryset_cannot_be_claimed():
    with pytest.raises(TypeError):
        claim(SubStep.objects.all()[:1], changes={"attempts": 1})
