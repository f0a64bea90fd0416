"""The costs page through Django's test client: the figures equal the API's cost summary,
the chart and its table, breakdowns, the costliest executions, CSV, range checks, query
counts. The same in a real browser: tests/browser/test_data_pages.py."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dags.costs import cost_summary, cost_summary_rows
from tests.factories import DagExecutionFactory, DagFactory, UserFactory

pytestmark = pytest.mark.django_db

RANGE = "from=2026-02-01&to=2026-02-28"


@pytest.fixture
def owner(db):
    return UserFactory(username="spender")


@pytest.fixture
def client_in(client, owner):
    client.force_login(owner)
    return client


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 2, day, hour, tzinfo=UTC)


def make_spend(owner, *, executions: int = 6) -> list:
    planners = [("DecomposerV8", "gpt-4o-mini"), ("OtherPlanner", "llama3")]
    dags = [
        DagFactory(
            owner=owner,
            agent_name=agent,
            params={"goalText": "x", "model": model},
            planning_total_cost_usd=Decimal("0.0125") * (index + 1),
            created_at=at(2 + index),
            dag_title=f"Report {agent}",
        )
        for index, (agent, model) in enumerate(planners)
    ]
    made = []
    for index in range(executions):
        made.append(
            DagExecutionFactory(
                dag=dags[index % 2],
                owner=owner,
                status="completed",
                completed_at=at(1 + (index * 5) % 28, hour=index % 24),
                total_cost_usd=Decimal("0.0031") * (index + 1),
            )
        )
    return made


def api_summary(client, group_by: str, start: str, end: str) -> dict:
    response = client.get(f"/api/v1/costs/summary?from={start}&to={end}&groupBy={group_by}")
    assert response.status_code == 200
    return response.json()


def cells(body: str, testid: str) -> dict[str, list[str]]:
    """{row key: [usd values]} of a table marked with data-usd cells."""
    table = body.split(f'data-testid="{testid}"', 1)[1].split("</table>", 1)[0]
    rows = {}
    for row in re.findall(r"<tr data-(?:period|key)=\"([^\"]*)\">(.*?)</tr>", table, re.S):
        rows[html.unescape(row[0])] = re.findall(r'data-usd="([^"]+)"', row[1])
    return rows


# --- access --------------------------------------------------------------------------------------
def test_costs_need_a_login(client):
    for path in ("/costs", "/costs/export.csv"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login")


def test_only_the_viewers_costs_are_counted(client_in, owner):
    make_spend(owner)
    make_spend(UserFactory(username="other"))
    body = client_in.get(f"/costs?{RANGE}").content.decode()
    api = api_summary(client_in, "day", "2026-02-01", "2026-02-28T23:59:59.999Z")
    assert api["totals"]["totalCostUsd"] == "0.1026"
    assert 'data-testid="total-cost">$0.1026<' in body


# --- figures -------------------------------------------------------------------------------------
@pytest.mark.parametrize("group_by", ["day", "week", "month"])
def test_figures_equal_the_api_summary(client_in, owner, group_by):
    make_spend(owner, executions=12)
    body = client_in.get(f"/costs?{RANGE}&groupBy={group_by}").content.decode()
    api_url = html.unescape(re.search(r'href="([^"]+)" data-testid="api-link"', body).group(1))
    assert api_url.startswith("/api/v1/costs/summary?")
    api = client_in.get(api_url).json()
    assert api["dateRange"] == {
        "from": "2026-02-01T00:00:00.000Z",
        "to": "2026-02-28T23:59:59.999Z",
        "groupBy": group_by,
    }
    expected = {
        row["date"]: [row["planningCostUsd"], row["executionCostUsd"], row["totalCostUsd"]]
        for row in api["summary"]
    }
    assert cells(body, "period-table") == expected
    # The API groups by time only; the breakdowns come from the same selector and add up to
    # the API's total.
    start, end = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 28, 23, 59, 59, 999000, UTC)
    for testid, key in (("agent-table", "agent"), ("model-table", "model")):
        by = cost_summary(start=start, end=end, group_by=key, viewer=owner)
        shown = {k: v[0] for k, v in cells(body, testid).items()}
        assert shown == {row["date"]: row["totalCostUsd"] for row in by["summary"]}
        assert sum(map(Decimal, shown.values())) == Decimal(api["totals"]["totalCostUsd"])
    assert set(cells(body, "agent-table")) == {"DecomposerV8", "OtherPlanner"}
    assert set(cells(body, "model-table")) == {"gpt-4o-mini", "llama3"}


def test_chart_has_a_bar_per_period_a_title_and_a_description(client_in, owner):
    make_spend(owner)
    body = client_in.get(f"/costs?{RANGE}").content.decode()
    svg = body.split('<svg class="chart"', 1)[1].split("</svg>", 1)[0]
    assert 'role="img"' in svg and 'aria-labelledby="cost-chart-title cost-chart-desc"' in svg
    assert '<title id="cost-chart-title">Spend per day, 2026-02-01 to 2026-02-28</title>' in svg
    assert "in all, $0.1026" in svg
    assert svg.count('<g class="chart-bar">') == 28
    assert svg.count('class="chart-planning"') == 2
    week = client_in.get(f"/costs?{RANGE}&groupBy=week").content.decode()
    # 1 Feb 2026 is a Sunday: four weeks.
    assert week.count('<g class="chart-bar">') == 4


def test_costliest_executions_come_first(client_in, owner):
    made = make_spend(owner)
    body = client_in.get(f"/costs?{RANGE}").content.decode()
    table = body.split('data-testid="top-executions"', 1)[1]
    order = re.findall(r'data-execution-id="([^"]+)"', table)
    assert order == [execution.id for execution in reversed(made)]
    assert f'href="/executions/{made[-1].id}"' in table


def test_an_empty_range_says_so(client_in):
    body = client_in.get("/costs").content.decode()
    assert "Nothing was spent in this range." in body
    assert "No execution with a cost finished in this range." in body


def test_default_range_is_the_last_thirty_days(client_in, owner):
    DagExecutionFactory(
        owner=owner,
        status="completed",
        completed_at=timezone.now() - timedelta(days=2),
        total_cost_usd=Decimal("1.5"),
    )
    DagExecutionFactory(
        owner=owner,
        status="completed",
        completed_at=timezone.now() - timedelta(days=45),
        total_cost_usd=Decimal("7"),
    )
    body = client_in.get("/costs").content.decode()
    assert 'data-testid="total-cost">$1.5000<' in body


# --- CSV -----------------------------------------------------------------------------------------
def test_csv_download_has_the_summary_rows(client_in, owner):
    make_spend(owner)
    response = client_in.get(f"/costs/export.csv?{RANGE}&groupBy=week")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="costs-2026-02-01-to-2026-02-28-by-week.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    api = api_summary(client_in, "week", "2026-02-01", "2026-02-28T23:59:59.999Z")
    assert rows == cost_summary_rows(api)
    assert rows[0] == ["week", "planning_usd", "execution_usd", "total_usd"]
    assert rows[-1][0] == "total" and rows[-1][3] == "0.1026"

    by_agent = client_in.get(f"/costs/export.csv?{RANGE}&groupBy=agent").content.decode()
    assert [row[0] for row in csv.reader(io.StringIO(by_agent))] == [
        "agent",
        "DecomposerV8",
        "OtherPlanner",
        "total",
    ]


def test_csv_refuses_a_bad_range_in_words(client_in):
    response = client_in.get("/costs/export.csv?from=2026-03-01&to=2026-02-01")
    assert response.status_code == 400
    assert "The start must not be after the end." in response.content.decode()


# --- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-03-01&to=2026-02-01", "The start must not be after the end."),
        ("from=2026-02-30", "Enter a valid date."),
        ("from=yesterday", "Enter a valid date."),
        ("from=2020-01-01&to=2026-01-01&groupBy=day", "For more than a year, group by week"),
        ("from=2000-01-01&to=2026-01-01&groupBy=month", "Choose at most 3660 days."),
        ("groupBy=fortnight", "Select a valid choice."),
    ],
)
def test_bad_ranges_are_explained_beside_the_field(client_in, query, message):
    response = client_in.get(f"/costs?{query}")
    assert response.status_code == 400
    body = response.content.decode()
    assert html.escape(message) in body or message in body
    assert 'role="alert"' in body
    value = re.search(r"from=([^&]*)", query)
    if value:
        assert f'value="{value.group(1)}"' in body  # what the user typed is kept


# --- queries -------------------------------------------------------------------------------------
def test_query_count_does_not_grow_with_rows(client_in, owner):
    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client_in.get(f"/costs?{RANGE}").status_code == 200
        return len(captured)

    make_spend(owner, executions=5)
    small = count()
    make_spend(owner, executions=60)
    assert count() == small


def test_staff_see_everyones_costs(owner):
    make_spend(owner)
    make_spend(UserFactory(username="other"))
    staff = Client()
    staff.force_login(UserFactory(username="boss", is_staff=True))
    body = staff.get(f"/costs?{RANGE}").content.decode()
    assert 'data-testid="total-cost">$0.2052<' in body
