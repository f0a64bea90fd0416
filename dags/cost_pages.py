"""The costs page: spend per day, week or month (chart and table), planning against
execution, by planner agent and by model, the costliest executions, and a CSV download. The
figures come from the same selectors as `GET /api/v1/costs/summary`."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from config.api.formatting import iso
from dags import costs
from dags.costs_chart import ChartPoint, cost_chart_svg

DEFAULT_DAYS = 30
TOP_EXECUTIONS = 10
# Ranges longer than this are refused; day bars over more than a year would be unreadable.
MAX_RANGE_DAYS = 3660
MAX_DAY_BARS = 366
GROUPS = (("day", "Day"), ("week", "Week (from Sunday)"), ("month", "Month"))
# The CSV download may also group by the DAG's planner agent or requested model.
CSV_GROUPS = (*GROUPS, ("agent", "Agent"), ("model", "Model"))


class CostRangeForm(forms.Form):
    """The page's query: `from` and `to` dates (UTC days, both included) and `groupBy`."""

    groupBy = forms.ChoiceField(label="Group by", choices=GROUPS, required=False)

    def __init__(self, data: Any, *, today: date, groups: tuple = GROUPS) -> None:
        super().__init__(data)
        self.today = today
        cast(forms.ChoiceField, self.fields["groupBy"]).choices = groups
        # `from` is a Python keyword, so these two are added here, first.
        dates = {
            "from": forms.DateField(
                label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
            ),
            "to": forms.DateField(
                label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
            ),
        }
        self.fields = {**dates, **self.fields}

    def clean(self) -> dict[str, Any]:
        # Form.clean returns `cleaned_data`, which is set once validation has begun.
        data = cast(dict[str, Any], super().clean())
        end = data.get("to") or self.today
        start = data.get("from") or end - timedelta(days=DEFAULT_DAYS - 1)
        data["groupBy"] = data.get("groupBy") or "day"
        if "from" in self.errors or "to" in self.errors:
            return data
        if start > end:
            self.add_error("from", "The start must not be after the end.")
        elif (end - start).days + 1 > MAX_RANGE_DAYS:
            self.add_error("from", f"Choose at most {MAX_RANGE_DAYS} days.")
        elif data["groupBy"] == "day" and (end - start).days + 1 > MAX_DAY_BARS:
            self.add_error("groupBy", "For more than a year, group by week or month.")
        data["from"], data["to"] = start, end
        return data

    def moments(self) -> tuple[datetime, datetime]:
        """The range as the summary takes it: from the start of the first UTC day to the last
        millisecond of the last (the API's timestamps carry milliseconds)."""
        start = datetime.combine(self.cleaned_data["from"], time.min, tzinfo=UTC)
        end = datetime.combine(self.cleaned_data["to"], time(23, 59, 59, 999000), tzinfo=UTC)
        return start, end


def _form(request: HttpRequest, groups: tuple = GROUPS) -> CostRangeForm:
    """The checked query; with no query at all, the defaults (the last 30 days by day)."""
    today = timezone.now().astimezone(UTC).date()
    form = CostRangeForm(request.GET, today=today, groups=groups)
    form.is_valid()
    return form


def _csv_url(form: CostRangeForm, group_by: str) -> str:
    """The CSV download of the page's range (dates, as the form takes them)."""
    data = form.cleaned_data
    query = {"from": data["from"].isoformat(), "to": data["to"].isoformat(), "groupBy": group_by}
    return f"{reverse('dags:costs-csv')}?{urlencode(query)}"


def _chart_points(summary: dict[str, Any], periods: list[str]) -> list[ChartPoint]:
    rows = {row["date"]: row for row in summary["summary"]}
    points = []
    for key in periods:
        row = rows.get(key)
        points.append(
            ChartPoint(
                label=key,
                planning=Decimal(row["planningCostUsd"]) if row else Decimal(0),
                execution=Decimal(row["executionCostUsd"]) if row else Decimal(0),
            )
        )
    return points


def _share(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary's rows, costliest first, with their share of the total in percent."""
    total = Decimal(summary["totals"]["totalCostUsd"])
    rows = sorted(summary["summary"], key=lambda row: Decimal(row["totalCostUsd"]), reverse=True)
    return [
        {**row, "share": round(Decimal(row["totalCostUsd"]) * 100 / total, 1) if total else 0}
        for row in rows
    ]


@require_GET
@login_required
def costs_page(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    if form.errors:
        return render(request, "costs/index.html", {"form": form}, status=400)
    start, end = form.moments()
    group_by = form.cleaned_data["groupBy"]
    viewer = request.user
    summaries = costs.cost_summaries(
        start=start, end=end, group_bys=[group_by, "agent", "model"], viewer=viewer
    )
    summary = summaries[group_by]
    api_query = urlencode({"from": iso(start), "to": iso(end), "groupBy": group_by})
    periods = costs.cost_periods(start=start, end=end, group_by=group_by)
    label = dict(GROUPS)[group_by].split(" ")[0].lower()
    totals = summary["totals"]
    chart = cost_chart_svg(
        points=_chart_points(summary, periods),
        title=f"Spend per {label}, {form.cleaned_data['from']} to {form.cleaned_data['to']}",
        description=(
            f"Bars of execution and planning cost per {label} (UTC); in all, "
            f"${totals['totalCostUsd']} (planning ${totals['planningCostUsd']}, "
            f"execution ${totals['executionCostUsd']}). The table below lists the figures."
        ),
    )
    context = {
        "form": form,
        "summary": summary,
        "chart": chart,
        "period_label": label,
        "by_agent": _share(summaries["agent"]),
        "by_model": _share(summaries["model"]),
        "top_executions": costs.cost_top_executions(
            viewer=viewer, start=start, end=end, limit=TOP_EXECUTIONS
        ),
        "api_url": f"{reverse('cost-summary')}?{api_query}",
        "csv_url": _csv_url(form, group_by),
        "agent_csv_url": _csv_url(form, "agent"),
        "model_csv_url": _csv_url(form, "model"),
    }
    return render(request, "costs/index.html", context)


@require_GET
@login_required
def costs_csv(request: HttpRequest) -> HttpResponse:
    """The summary of the page's range and grouping (or `groupBy=agent|model`) as CSV."""
    form = _form(request, CSV_GROUPS)
    if form.errors:
        errors = "; ".join(
            f"{name}: {' '.join(cast(Iterable[str], texts))}" for name, texts in form.errors.items()
        )
        return HttpResponse(
            f"Invalid range: {errors}\n", status=400, content_type="text/plain; charset=utf-8"
        )
    start, end = form.moments()
    group_by = form.cleaned_data["groupBy"]
    summary = costs.cost_summary(start=start, end=end, group_by=group_by, viewer=request.user)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"costs-{form.cleaned_data['from']}-to-{form.cleaned_data['to']}-by-{group_by}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    csv.writer(response, lineterminator="\n").writerows(costs.cost_summary_rows(summary))
    return response
