"""The cost pages find executions by when they completed through an index, not by reading
every execution (SQLite's query plans, as the default deployment runs them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dags import costs
from tests.factories import DagExecutionFactory, DagFactory, UserFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's EXPLAIN QUERY PLAN"),
]

END = datetime(2026, 12, 1, tzinfo=UTC)
START = END - timedelta(days=30)


def execution_plans(viewer: Any) -> dict[str, list[str]]:
    """Each statement the cost pages run on executions, with its query plan's steps."""
    with CaptureQueriesContext(connection) as queries:
        costs.cost_summaries(start=START, end=END, group_bys=["day", "agent"], viewer=viewer)
        costs.cost_top_executions(viewer=viewer, start=START, end=END)
        costs.cost_spent(viewer=viewer, since=START, until=END)
    plans = {}
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            if 'FROM "dag_executions"' in query["sql"]:
                cursor.execute(f"EXPLAIN QUERY PLAN {query['sql']}")
                plans[query["sql"]] = [row[3] for row in cursor.fetchall()]
    return plans


@pytest.mark.parametrize(
    ("is_staff", "index"),
    [
        (True, "dag_exec_completed_idx (completed_at>? AND completed_at<?)"),
        (False, "dag_exec_owner_completed_idx (owner_id=? AND completed_at>? AND completed_at<?)"),
    ],
)
def test_executions_are_found_by_completion_time_through_an_index(is_staff, index):
    viewer = UserFactory(username="viewer", is_staff=is_staff)
    dag = DagFactory(owner=viewer)
    for day in range(60):
        DagExecutionFactory(
            dag=dag,
            status="completed",
            completed_at=END - timedelta(days=day),
            total_cost_usd=Decimal("0.01"),
        )
    DagExecutionFactory(dag=dag, status="running")

    plans = execution_plans(viewer)

    assert len(plans) == 4  # per day, per DAG, the costliest, the total spent
    for sql, steps in plans.items():
        assert f"SEARCH dag_executions USING INDEX {index}" in steps, (sql, steps)
