"""The operator commands for DAGs: through call_command against real services, a real worker
and the scripted chat server, and as processes for their exit codes."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils.timezone import now

from dags.execution.services import execution_create
from dags.models import DagExecution, ExecutionEvent, SubStep
from tests.factories import (
    AgentFactory,
    DagExecutionFactory,
    DagFactory,
    SubStepFactory,
    UserFactory,
    decomposer_job,
)
from tests.fakes.openai_server import ChatReply


@pytest.fixture
def operator(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def scripted(fake_llm) -> None:
    def reply(request: dict) -> ChatReply:
        text = "\n".join(m.get("content") or "" for m in request["messages"])
        if "## Synthesis plan" in text:
            return ChatReply(content="# Final report", cost=0.002)
        return ChatReply(content="a node result", cost=0.001)

    fake_llm.responder = reply


@pytest.mark.django_db(transaction=True)
def test_execute_dag_watches_every_node_until_completed(operator, fake_llm, celery_worker_thread):
    AgentFactory(name="InferenceAgent", prompt_template="You are careful.", active=True)
    scripted(fake_llm)
    dag = DagFactory(result=decomposer_job(3))

    output = run("execute_dag", dag.id)

    execution = DagExecution.objects.get(dag=dag)
    assert execution.status == "completed"
    assert execution.owner == operator
    assert "execution.completed" in output
    assert f"{execution.id} completed: 3/3 task(s)" in output
    assert "USD" in output and "# Final report" in output
    # the final table lists each node as completed
    for task_id in ("001", "002", "003"):
        assert any(task_id in line and "completed" in line for line in output.splitlines()), output


@pytest.mark.django_db(transaction=True)
def test_resume_execution_reruns_the_failed_node_and_watches(
    operator, fake_llm, celery_worker_thread
):
    AgentFactory(name="InferenceAgent", prompt_template="You are careful.", active=True)
    scripted(fake_llm)
    execution = execution_create(dag=DagFactory(result=decomposer_job(2)), owner=operator)
    SubStep.objects.filter(execution=execution, task_id="001").update(
        status="completed", result="kept"
    )
    SubStep.objects.filter(execution=execution, task_id="002").update(status="failed")
    DagExecution.objects.filter(pk=execution.pk).update(status="failed", completed_tasks=1)

    output = run("resume_execution", execution.id, "--watch")

    execution.refresh_from_db()
    assert execution.status == "completed"
    assert execution.retry_count == 1
    assert f"Resumed {execution.id}" in output
    assert SubStep.objects.get(execution=execution, task_id="001").result == "kept"


def test_cancel_execution_cancels_then_refuses_with_exit_code_1(operator):
    execution = DagExecutionFactory(status="running")
    SubStepFactory(execution=execution, task_id="001", status="pending")

    assert f"Cancelled {execution.id}." in run("cancel_execution", execution.id)

    execution.refresh_from_db()
    assert execution.status == "cancelled"
    with pytest.raises(CommandError) as refused:
        run("cancel_execution", execution.id)
    assert refused.value.returncode == 1
    assert "Cannot cancel execution with status 'cancelled'" in str(refused.value)


def test_commands_act_as_the_given_user_and_hide_other_owners_rows(operator):
    bob = UserFactory(username="bob")
    execution = DagExecutionFactory(status="running")  # alice's

    with pytest.raises(CommandError) as hidden:
        run("cancel_execution", execution.id, "--user", "bob")
    assert hidden.value.returncode == 1
    assert "not found" in str(hidden.value)
    with pytest.raises(CommandError) as unknown:
        run("cancel_execution", execution.id, "--user", "nobody")
    assert unknown.value.returncode == 2
    assert bob.pk and DagExecution.objects.get(pk=execution.pk).status == "running"


def _execution_with_history(*, status: str, age: timedelta, steps: int = 2) -> DagExecution:
    execution = DagExecutionFactory(status=status)
    for index in range(steps):
        SubStepFactory(execution=execution, task_id=f"{index + 1:03d}")
    for seq in range(1, 4):
        ExecutionEvent.objects.create(
            execution=execution, seq=seq, type="execution.updated", payload={}
        )
    DagExecution.objects.filter(pk=execution.pk).update(updated_at=now() - age)
    return execution


def test_prune_executions_dry_run_counts_and_the_real_run_deletes_only_old_settled(operator):
    old = _execution_with_history(status="completed", age=timedelta(days=40), steps=2)
    old_failed = _execution_with_history(status="failed", age=timedelta(days=31), steps=1)
    old_running = _execution_with_history(status="running", age=timedelta(days=90))
    recent = _execution_with_history(status="completed", age=timedelta(days=2))

    dry = run("prune_executions", "--older-than", "30d", "--dry-run")

    assert "Would delete 2 execution(s)" in dry and "3 sub-step(s) and 6 event(s)" in dry
    assert DagExecution.objects.count() == 4

    done = run("prune_executions", "--older-than", "30d")

    assert "Deleted 2 execution(s)" in done and "3 sub-step(s) and 6 event(s)" in done
    remaining = set(DagExecution.objects.values_list("pk", flat=True))
    assert remaining == {old_running.pk, recent.pk}
    assert not SubStep.objects.filter(execution_id__in=[old.pk, old_failed.pk]).exists()
    assert not ExecutionEvent.objects.filter(execution_id__in=[old.pk, old_failed.pk]).exists()


@pytest.mark.parametrize("group_by", ["day", "month"])
def test_cost_report_totals_equal_the_cost_summary_endpoint(operator, api, group_by):
    DagFactory(planning_total_cost_usd=Decimal("0.0125"))
    DagFactory(planning_total_cost_usd=Decimal("0.000042"), agent_name="OtherPlanner")
    for cost in ("0.25", "0.0031"):
        DagExecutionFactory(
            status="completed", completed_at=now() - timedelta(days=1), total_cost_usd=cost
        )

    text = run("cost_report", "--from", "7d", "--group-by", group_by, "--csv")
    rows = list(csv.reader(io.StringIO(text)))
    api_totals = api.get(f"/api/v1/costs/summary?from=7d&groupBy={group_by}").json()["totals"]

    assert rows[0] == [group_by, "planning_usd", "execution_usd", "total_usd"]
    total = rows[-1]
    assert total[0] == "total"
    assert [Decimal(v) for v in total[1:]] == [
        Decimal(api_totals["planningCostUsd"]),
        Decimal(api_totals["executionCostUsd"]),
        Decimal(api_totals["totalCostUsd"]),
    ]
    assert Decimal(total[3]) == Decimal("0.265642")


def test_cost_report_by_agent_keeps_the_same_total(operator):
    DagFactory(planning_total_cost_usd=Decimal("0.01"))
    DagFactory(planning_total_cost_usd=Decimal("0.02"), agent_name="OtherPlanner")

    rows = list(csv.reader(io.StringIO(run("cost_report", "--group-by", "agent", "--csv"))))

    by_agent = {row[0]: Decimal(row[3]) for row in rows[1:-1]}
    assert by_agent == {"DecomposerV8": Decimal("0.01"), "OtherPlanner": Decimal("0.02")}
    assert Decimal(rows[-1][3]) == Decimal("0.03")
    table = run("cost_report", "--group-by", "agent")
    assert "0.0300 USD" in table


def manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_commands_as_processes_give_help_and_exit_2_on_bad_usage():
    helped = manage("cost_report", "--help")
    assert helped.returncode == 0
    assert "--group-by {day,week,month,agent,model}" in helped.stdout

    bad_choice = manage("cost_report", "--group-by", "year")
    assert bad_choice.returncode == 2
    assert "invalid choice: 'year'" in bad_choice.stderr

    bad_age = manage("prune_executions", "--older-than", "banana")
    assert bad_age.returncode == 2
    assert "Invalid time value 'banana'" in bad_age.stderr
