"""`manage.py cost_report`: planning and execution spend over a time range."""

from __future__ import annotations

import csv
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandParser
from django.utils.timezone import now
from rich.table import Table

from config.commands import UsageError, add_user_argument, command_user, console_for
from config.display import usd
from config.errors import DomainError
from dags.costs import BY_DAG, BY_TIME, cost_summary, cost_summary_rows, parse_moment


class Command(BaseCommand):
    help = (
        "Planning and execution costs (USD) between --from and --to, the same figures as "
        "GET /api/v1/costs/summary, grouped by day, week (from Sunday), month, agent (the DAG's "
        "planner) or model (the model the DAG's request named). --csv prints CSV for "
        "spreadsheets. Only what --user may see is counted (staff see all). Exit codes: 0 "
        "done, 2 bad usage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from",
            dest="start",
            metavar="WHEN",
            help="ISO date/date-time, or 7d, 2w, 3m back from now (default: 30 days before --to).",
        )
        parser.add_argument("--to", dest="end", metavar="WHEN", help="As --from (default: now).")
        parser.add_argument(
            "--group-by", choices=[*BY_TIME, *BY_DAG], default="day", help="Default: day."
        )
        parser.add_argument("--csv", action="store_true", help="CSV on standard output.")
        add_user_argument(parser)

    def handle(self, *args, **options) -> None:
        try:
            end = parse_moment(options["end"], default=now(), field="to")
            start = parse_moment(options["start"], default=end - timedelta(days=30), field="from")
        except DomainError as error:
            raise UsageError(error.message) from None
        if start > end:
            raise UsageError("--from must not be after --to.")
        user = command_user(options["user"])
        report = cost_summary(start=start, end=end, group_by=options["group_by"], viewer=user)
        group_by = options["group_by"]
        if options["csv"]:
            writer = csv.writer(self.stdout, lineterminator="\n")
            writer.writerows(cost_summary_rows(report))
            return
        table = Table(title=f"Costs {report['dateRange']['from']} to {report['dateRange']['to']}")
        table.add_column(group_by)
        for heading in ("planning", "execution", "total"):
            table.add_column(heading, justify="right")
        for row in report["summary"]:
            table.add_row(
                row["date"],
                usd(row["planningCostUsd"]),
                usd(row["executionCostUsd"]),
                usd(row["totalCostUsd"]),
            )
        totals = report["totals"]
        table.add_row(
            "total",
            usd(totals["planningCostUsd"]),
            usd(totals["executionCostUsd"]),
            usd(totals["totalCostUsd"]),
            style="bold",
        )
        console_for(self.stdout).print(table)
