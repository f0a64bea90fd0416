"""The dashboard's spend figures are summed in the database and agree with the cost summary;
an execution's cost read-out adds up its nodes."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from dags.costs import cost_spent, cost_summary, execution_costs
from tests.factories import DagExecutionFactory, DagFactory, SubStepFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_spend_equals_the_summary_totals_and_counts_only_the_viewers_rows():
    owner = UserFactory(username="spender")
    dag = DagFactory(owner=owner, planning_total_cost_usd="0.0021")
    moment = timezone.now()
    for days, cost in ((0, "0.0100001"), (2, "0.3"), (9, "7")):
        DagExecutionFactory(
            dag=dag, owner=owner, completed_at=moment - timedelta(days=days), total_cost_usd=cost
        )
    DagExecutionFactory(
        owner=UserFactory(username="other"), completed_at=moment, total_cost_usd="1"
    )
    since = moment - timedelta(days=6)

    spent = cost_spent(viewer=owner, since=since, until=moment)

    summary = cost_summary(start=since, end=moment, group_by="day", viewer=owner)
    assert spent == Decimal(summary["totals"]["totalCostUsd"]) == Decimal("0.3121001")


def test_a_running_executions_costs_add_up_its_nodes_so_far():
    # Its stored totals are summed only when it stops; the read-out must not lag behind.
    execution = DagExecutionFactory(status="running", total_cost_usd=None, total_usage=None)
    usage = {"promptTokens": 10, "completionTokens": 5, "totalTokens": 15}
    SubStepFactory(execution=execution, status="completed", usage=usage, cost_usd="0.25")
    SubStepFactory(execution=execution, status="completed", usage=usage, cost_usd="0.5")
    SubStepFactory(execution=execution, status="pending")

    costs = execution_costs(execution=execution)

    assert Decimal(costs["execution"]["totalCostUsd"]) == Decimal("0.75")
    assert costs["execution"]["totalUsage"]["totalTokens"] == 30
    assert Decimal(costs["totals"]["executionCostUsd"]) == Decimal("0.75")
