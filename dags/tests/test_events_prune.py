"""`manage.py prune_events`."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils.timezone import now

from dags.events import emit_execution_event
from dags.models import DagExecution, ExecutionEvent, SubStep
from ops.management.commands.prune_events import parse_age
from runs.events import emit_run_event
from runs.models import RunEvent
from tests.factories import DagExecutionFactory, RunFactory, SubStepFactory

pytestmark = pytest.mark.django_db


def prune(*args: str) -> str:
    out = StringIO()
    call_command("prune_events", *args, stdout=out)
    return out.getvalue()


def age(queryset, days: int) -> None:
    queryset.update(created_at=now() - timedelta(days=days))


def test_parse_age():
    assert parse_age("30d") == timedelta(days=30)
    assert parse_age("12h") == timedelta(hours=12)
    assert parse_age("2w") == timedelta(weeks=2)
    assert parse_age("45") == timedelta(days=45)
    with pytest.raises(ValueError):
        parse_age("soon")


def test_old_events_are_deleted_new_ones_kept():
    execution = DagExecutionFactory(status="running")
    for task in ("001", "002", "003"):
        emit_execution_event(
            execution_id=execution.id, type="substep.started", payload={"subStepId": task}
        )
    age(ExecutionEvent.objects.filter(seq__lte=2), 40)
    run = RunFactory()
    emit_run_event(run_id=run.id, type="run.started", payload={"stepBudget": 3})
    emit_run_event(run_id=run.id, type="run.step", payload={"stepNo": 1})
    age(RunEvent.objects.filter(seq=1), 31)

    dry = prune("--older-than", "30d", "--dry-run")
    assert "Would delete 2 execution events and 1 run events" in dry
    assert ExecutionEvent.objects.count() == 3

    output = prune("--older-than", "30d")
    assert "Deleted 2 execution events and 1 run events" in output
    assert list(ExecutionEvent.objects.values_list("seq", flat=True)) == [3]
    assert list(RunEvent.objects.values_list("seq", flat=True)) == [2]
    execution.refresh_from_db()
    assert execution.last_event_seq == 3  # numbering continues after a prune


def test_finished_executions_go_with_their_sub_steps_and_events():
    old_done = DagExecutionFactory(status="completed", completed_at=now() - timedelta(days=60))
    old_suspended = DagExecutionFactory(status="suspended", updated_at=now() - timedelta(days=60))
    old_running = DagExecutionFactory(status="running", updated_at=now() - timedelta(days=60))
    recent_done = DagExecutionFactory(status="failed", completed_at=now() - timedelta(days=1))
    for execution in (old_done, old_suspended, old_running, recent_done):
        SubStepFactory(execution=execution)
        emit_execution_event(execution_id=execution.id, type="execution.resumed")

    dry = prune("--older-than", "30d", "--finished-executions", "--dry-run")
    assert "Would delete 1 finished executions with 1 sub-steps and 1 events." in dry
    assert DagExecution.objects.count() == 4

    output = prune("--older-than", "30d", "--finished-executions")
    assert "Deleted 1 finished executions with 1 sub-steps and 1 events." in output
    remaining = set(DagExecution.objects.values_list("pk", flat=True))
    assert remaining == {old_suspended.id, old_running.id, recent_done.id}
    assert not SubStep.objects.filter(execution_id=old_done.id).exists()
    assert not ExecutionEvent.objects.filter(execution_id=old_done.id).exists()
    assert ExecutionEvent.objects.count() == 3


def test_bad_age_is_a_command_error():
    with pytest.raises(CommandError):
        prune("--older-than", "a while")
