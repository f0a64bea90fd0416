"""The admin index carries a dashboard (counts by status, spend today, failing schedules) above
the standard app list, in a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils.timezone import now

from config.admin_tools import admin_url
from dags.models import DagExecution
from goals.models import Schedule, ScheduleTick
from runs.models import Run
from tests.factories import (
    DagExecutionFactory,
    DagFactory,
    GoalFactory,
    RunFactory,
    ScheduleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</td>", start)]


def count_of(html: str, element_id: str, status: str) -> int:
    part = section(html, element_id)
    after = part[part.index(f">{status}</span>") :]
    return int(after.split('<span class="count">', 1)[1].split("<", 1)[0])


def populate(scale: int) -> None:
    yesterday = now() - timedelta(days=2)
    for _ in range(scale):
        DagExecutionFactory(
            status=DagExecution.Status.COMPLETED,
            completed_at=now(),
            total_cost_usd=Decimal("0.0100"),
            dag=DagFactory(planning_total_cost_usd=Decimal("0.0010")),
        )
    DagExecutionFactory(
        status=DagExecution.Status.FAILED, completed_at=yesterday, total_cost_usd=Decimal("5")
    )
    RunFactory(status=Run.Status.RUNNING)
    RunFactory(status=Run.Status.COMPLETED, ended_at=now(), cost_usd=Decimal("0.0020"))
    broken = ScheduleFactory(goal=GoalFactory(), cron_expr="0 9 * * *")
    Schedule.objects.filter(pk=broken.pk).update(error="no next time", error_at=now())
    DagFactory(schedule_error="bad zone", schedule_error_at=now(), planning_total_cost_usd=None)
    ScheduleTick.objects.create(schedule=broken, outcome=ScheduleTick.Outcome.FAILED, reason="x")


def test_the_dashboard_counts_and_sums_right(root):
    populate(3)

    html = root.get(admin_url(DagExecution, "changelist").split("dags/")[0]).content.decode()

    assert count_of(html, "execution-counts", "completed") == 3
    assert count_of(html, "execution-counts", "failed") == 1
    assert count_of(html, "run-counts", "running") == 1
    assert count_of(html, "run-counts", "completed") == 1
    assert count_of(html, "goal-counts", "active") == 3  # two runs' goals and the schedule's
    # Today: 3 executions of 0.01 and 3 (+1 unpriced) plannings of 0.001 plus one run of 0.002;
    # the failed execution finished two days ago.
    assert "0.0350 USD" in section(html, "spend-total")
    assert "1 goal schedule(s), 1 DAG schedule(s)" in html
    assert "no next time" in html and "bad zone" in html
    assert ">1 failed tick(s)</a>" in html
    # The standard app list is still there.
    assert "app-dags" in html and "app-goals" in html and "django_celery_beat" in html


def test_the_dashboard_query_count_does_not_grow(root):
    populate(2)
    root.get("/admin/")
    with CaptureQueriesContext(connection) as small:
        root.get("/admin/")
    populate(20)
    with CaptureQueriesContext(connection) as large:
        root.get("/admin/")
    assert len(small) == len(large), [q["sql"] for q in large]
