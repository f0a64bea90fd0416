"""The cost summary is summed in the database and equals a row-by-row sum in exact decimals,
for every grouping, the viewer's rows only, with a constant number of queries."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.access import visible_to
from config.api.formatting import money
from dags.costs import BY_DAG, cost_summaries, cost_summary
from dags.models import Dag, DagExecution
from tests.factories import DagExecutionFactory, DagFactory, UserFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 25, tzinfo=UTC)
END = datetime(2026, 3, 3, 23, 59, tzinfo=UTC)
GROUPS = ("day", "week", "month", "agent", "model")


def expected_summary(group_by: str, viewer: Any) -> dict[str, Any]:
    """The summary computed the slow, obvious way: every row read, decimals added in Python."""

    def key(moment: datetime, dag: Dag | None) -> str:
        if group_by == "agent":
            return (dag.agent_name if dag else None) or "(unknown)"
        if group_by == "model":
            params = dag.params if dag else None
            return (params.get("model") if isinstance(params, dict) else None) or "default"
        day = moment.astimezone(UTC).date()
        if group_by == "week":
            return (day - timedelta(days=(day.weekday() + 1) % 7)).isoformat()
        return day.strftime("%Y-%m") if group_by == "month" else day.isoformat()

    planning: dict[str, Decimal] = defaultdict(Decimal)
    execution: dict[str, Decimal] = defaultdict(Decimal)
    for dag in visible_to(Dag.objects.all(), viewer):
        if dag.planning_total_cost_usd is not None and START <= dag.created_at <= END:
            planning[key(dag.created_at, dag)] += dag.planning_total_cost_usd
    for run in visible_to(DagExecution.objects.select_related("dag"), viewer):
        if run.total_cost_usd is not None and run.completed_at and START <= run.completed_at <= END:
            execution[key(run.completed_at, run.dag)] += run.total_cost_usd
    keys = sorted(set(planning) | set(execution))
    return {
        "dateRange": {
            "from": "2026-01-25T00:00:00.000Z",
            "to": "2026-03-03T23:59:00.000Z",
            "groupBy": group_by,
        },
        "summary": [
            {
                "date": k,
                "planningCostUsd": money(planning[k]),
                "executionCostUsd": money(execution[k]),
                "totalCostUsd": money(planning[k] + execution[k]),
            }
            for k in keys
        ],
        "totals": {
            "planningCostUsd": money(sum(planning.values(), Decimal(0))),
            "executionCostUsd": money(sum(execution.values(), Decimal(0))),
            "totalCostUsd": money(
                sum(planning.values(), Decimal(0)) + sum(execution.values(), Decimal(0))
            ),
        },
    }


def make_rows(owner, count: int, seed: int = 7) -> None:
    chance = random.Random(seed)
    agents = ["DecomposerV8", "OtherPlanner", None]
    models = ["gpt-4o-mini", "", None, "llama3"]
    dags = []
    for index in range(max(3, count // 4)):
        params: Any = {"goalText": f"job {index}"}
        model = models[index % len(models)]
        if model is not None:
            params["model"] = model
        cost = None if index % 5 == 4 else Decimal(chance.randint(0, 10**9)).scaleb(-10)
        dags.append(
            DagFactory(
                owner=owner,
                agent_name=agents[index % len(agents)],
                params=params if index % 7 else None,
                planning_total_cost_usd=cost,
                created_at=START + timedelta(hours=chance.randint(-48, 24 * 40)),
            )
        )
    for index in range(count):
        dag = dags[index % len(dags)] if index % 9 else None
        DagExecutionFactory(
            dag=dag,
            owner=owner,
            status="completed",
            completed_at=START + timedelta(minutes=chance.randint(-600, 60 * 24 * 40)),
            total_cost_usd=(
                None if index % 11 == 10 else Decimal(chance.randint(0, 10**11)).scaleb(-10)
            ),
        )


@pytest.mark.parametrize("group_by", GROUPS)
def test_summary_equals_an_exact_row_by_row_sum(group_by):
    owner = UserFactory(username="spender")
    other = UserFactory(username="other")
    make_rows(owner, 120)
    make_rows(other, 20, seed=3)

    assert cost_summary(start=START, end=END, group_by=group_by, viewer=owner) == (
        expected_summary(group_by, owner)
    )
    staff = UserFactory(username="boss", is_staff=True)
    assert cost_summary(start=START, end=END, group_by=group_by, viewer=staff) == (
        expected_summary(group_by, staff)
    )


def test_many_small_costs_add_up_exactly():
    owner = UserFactory(username="spender")
    dag = DagFactory(owner=owner, planning_total_cost_usd=None, created_at=START)
    DagExecution.objects.bulk_create(
        [
            DagExecution(
                dag=dag,
                owner=owner,
                status="completed",
                completed_at=START + timedelta(hours=1),
                total_cost_usd=Decimal("0.0000000001") if index % 2 else Decimal("0.1"),
            )
            for index in range(2000)
        ]
    )
    totals = cost_summary(start=START, end=END, group_by="day", viewer=owner)["totals"]
    assert totals["executionCostUsd"] == "100.0000001"


@pytest.mark.parametrize("group_by", GROUPS)
def test_query_count_does_not_grow_with_rows(group_by):
    owner = UserFactory(username="spender")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            cost_summary(start=START, end=END, group_by=group_by, viewer=owner)
        return len(captured)

    make_rows(owner, 10)
    small = queries()
    make_rows(owner, 80, seed=11)
    # Per day: planning and execution sums; per DAG: those two and the DAGs' names.
    assert queries() == small == (3 if group_by in BY_DAG else 2)


def test_several_groupings_at_once_share_their_queries():
    owner = UserFactory(username="spender")
    make_rows(owner, 40)
    with CaptureQueriesContext(connection) as captured:
        together = cost_summaries(start=START, end=END, group_bys=GROUPS, viewer=owner)
    assert len(captured) == 5  # per day: 2; per DAG: 2, and the DAGs named in one chunk
    for group_by in GROUPS:
        assert together[group_by] == expected_summary(group_by, owner)
