"""The dashboard's spend figures are summed in the database and agree with the cost summary."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from dags.costs import cost_spent, cost_summary
from tests.factories import DagExecutionFactory, DagFactory, UserFactory

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
