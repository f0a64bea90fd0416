"""The admin's change pages read well: a summary first, money with its currency, durations for
people, statuses as badges with text, results as sanitized Markdown shown once, machine JSON
folded, and a query count that does not grow with the number of sub-steps or steps."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils.timezone import now

from config.admin_tools import admin_url
from dags.models import Dag, DagExecution, SubStep
from runs.models import Run
from tests.factories import (
    DagExecutionFactory,
    DagFactory,
    GoalFactory,
    RunFactory,
    StepFactory,
    UserFactory,
    decomposer_job,
)

pytestmark = pytest.mark.django_db

REPORT = "# Weekly report\n\nThe **answer** is 42.\n\n<script>alert('x')</script>\n"


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def execution_with_steps(count: int) -> DagExecution:
    started = now() - timedelta(minutes=3)
    execution = DagExecutionFactory(
        dag=DagFactory(dag_title="Weekly research", result=decomposer_job(count)),
        status=DagExecution.Status.COMPLETED,
        total_tasks=count,
        completed_tasks=count,
        started_at=started,
        completed_at=started + timedelta(seconds=185),
        duration_ms=185_000,
        total_cost_usd=Decimal("0.0123456789"),
        total_usage={"promptTokens": 1200, "completionTokens": 300},
        plan_context={"synthesisPlan": "Combine the results."},
        final_result=REPORT,
        synthesis_result=REPORT,
    )
    SubStep.objects.bulk_create(
        SubStep(
            execution=execution,
            task_id=f"{index:03d}",
            action_type=SubStep.ActionType.INFERENCE,
            tool_or_prompt_name="InferenceAgent",
            status=SubStep.Status.COMPLETED,
            dependencies=[f"{index - 1:03d}"] if index > 1 else [],
            duration_ms=1500 + index,
            cost_usd=Decimal("0.0000421"),
            result=f"Step {index} says: " + "lorem ipsum " * 50,
        )
        for index in range(1, count + 1)
    )
    return execution


def page(client: Client, model, obj) -> str:
    response = client.get(admin_url(model, "change", obj.pk))
    assert response.status_code == 200
    return response.content.decode()


def test_execution_page_shows_the_summary_first_and_the_result_once(root):
    execution = execution_with_steps(20)

    html = page(root, DagExecution, execution)

    # Summary: badge with text, title, progress, a human duration, money with its currency.
    assert re.search(r"<span style=\"background: #[0-9a-f]+;[^>]*>completed</span>", html)
    assert "Weekly research" in html
    assert "20/20" in html
    assert "3 min 5 s" in html
    assert "0.0123 USD" in html and "0.0123456789" not in html
    assert html.index("20/20") < html.index("Weekly report</h1>")
    # The result is Markdown, rendered and sanitized, and shown once although the synthesis is
    # the same text.
    assert html.count("Weekly report</h1>") == 1
    assert "<strong>answer</strong>" in html
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    # Sub-steps: one row each with status, duration, cost and a link to the sub-step's page;
    # their full results stay on their own pages.
    sub_step = execution.sub_steps.get(task_id="007")
    assert admin_url(SubStep, "change", sub_step.pk) in html
    assert html.count("0.000042 USD") == 20
    assert "1.5 s" in html
    assert "lorem ipsum" not in html
    # Machine JSON is folded, not an edit widget.
    assert "<details><summary>token usage</summary>" in html
    assert "<textarea" not in html


def test_a_synthesis_that_differs_is_shown_separately(root):
    execution = execution_with_steps(2)
    execution.synthesis_result = "A different synthesis"
    execution.save()
    html = page(root, DagExecution, execution)
    assert html.count("Weekly report</h1>") == 1
    assert html.count("A different synthesis") == 1


def test_a_text_result_is_not_a_json_string(root):
    execution = execution_with_steps(1)
    sub_step = execution.sub_steps.get()
    sub_step.result = "line one\n\n- item"
    sub_step.save()
    html = page(root, SubStep, sub_step)
    assert "<li>item</li>" in html
    assert "\\n" not in html.split('id="content-main"')[1].split("<footer")[0]


def test_execution_page_queries_do_not_grow_with_the_sub_steps(root):
    small, large = execution_with_steps(20), execution_with_steps(200)
    page(root, DagExecution, small)  # warm caches (content types, session)

    with CaptureQueriesContext(connection) as twenty:
        html_small = page(root, DagExecution, small)
    with CaptureQueriesContext(connection) as two_hundred:
        html_large = page(root, DagExecution, large)

    assert len(twenty) == len(two_hundred), [q["sql"] for q in two_hundred]
    assert len(twenty) <= 12
    assert html_large.count("0.000042 USD") == 200
    # A 20-step page stays short: no sub-step result is inlined.
    assert len(html_small) < 60_000


def test_run_page_shows_steps_usage_cost_and_trigger(root):
    goal = GoalFactory(objective="Track the prices")
    run = RunFactory(
        goal=goal,
        status=Run.Status.COMPLETED,
        trigger=Run.Trigger.SCHEDULE,
        started_at=now() - timedelta(seconds=75),
        ended_at=now(),
        usage={"promptTokens": 900},
        cost_usd=Decimal("0.00123"),
        steps_executed=2,
    )
    StepFactory(run=run, step_no=1, tool_name="web_search", duration_ms=2300, cost_usd="0.0004")
    StepFactory(run=run, step_no=2, tool_name="write_file", duration_ms=90, error="disk full")

    html = page(root, Run, run)

    assert ">Schedule</div>" in html  # the trigger
    assert "0.001230 USD" in html and "0.000400 USD" in html
    assert "1 min 15 s" in html and "2.3 s" in html and "90 ms" in html
    assert "<details><summary>token usage</summary>" in html and "promptTokens" in html
    assert re.search(r">completed</span>", html) and re.search(r">failed</span>", html)
    assert "web_search" in html and "disk full" in html
    assert "Track the prices" in html


def test_run_page_queries_do_not_grow_with_the_steps(root):
    def run_with(count: int) -> Run:
        run = RunFactory(steps_executed=count, step_budget=count)
        for number in range(1, count + 1):
            StepFactory(run=run, step_no=number, tool_name="web_search", duration_ms=10)
        return run

    small, large = run_with(3), run_with(40)
    page(root, Run, small)
    with CaptureQueriesContext(connection) as few:
        page(root, Run, small)
    with CaptureQueriesContext(connection) as many:
        page(root, Run, large)
    assert len(few) == len(many), [q["sql"] for q in many]


def test_dag_page_shows_the_plan_as_a_table(root):
    job = decomposer_job(3)
    job["sub_tasks"][2]["dependencies"] = ["001", "002"]
    dag = DagFactory(result=job, planning_total_cost_usd=Decimal("0.0021"), usage={"t": 1})

    html = page(root, Dag, dag)

    table = html[html.index("<th>depends on</th>") :]
    assert re.search(r"<code>003</code></td><td>inference</td><td>InferenceAgent</td>", table)
    assert "<td>001, 002</td>" in table
    assert "Combine the results." in html
    assert "0.002100 USD" in html
    assert re.search(r">success</span>", html)
    # What the planner wrote is shown, not editable; the plan itself stays editable (folded).
    form = root.get(admin_url(Dag, "change", dag.pk)).context["adminform"].form
    assert "usage" not in form.fields and "planning_total_cost_usd" not in form.fields
    assert "result" in form.fields


def test_lists_show_badges_money_and_durations(root):
    execution_with_steps(2)
    RunFactory(status=Run.Status.FAILED, cost_usd=Decimal("0.5"))
    DagFactory(planning_total_cost_usd=Decimal("0.000042"))

    executions = root.get(admin_url(DagExecution, "changelist")).content.decode()
    runs = root.get(admin_url(Run, "changelist")).content.decode()
    dags = root.get(admin_url(Dag, "changelist")).content.decode()
    sub_steps = root.get(admin_url(SubStep, "changelist")).content.decode()
    goals = root.get("/admin/goals/goal/").content.decode()

    assert ">completed</span>" in executions and "0.0123 USD" in executions
    assert "3 min 5 s" in executions
    assert ">failed</span>" in runs and "0.5000 USD" in runs
    assert ">success</span>" in dags and "0.000042 USD" in dags
    assert ">completed</span>" in sub_steps and "1.5 s" in sub_steps
    assert ">active</span>" in goals
