import logging
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils.timezone import now

from dags.execution import dispatch, services, statements
from dags.execution.recovery import executions_recover
from dags.models import SYNTHESIS_TASK_ID, DagExecution, SubStep
from tests.factories import DagFactory, decomposer_job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def enqueued(monkeypatch):
    """Record what would be handed to the queue instead of sending it."""
    sent: list[str] = []
    monkeypatch.setattr(
        dispatch,
        "nodes_send",
        lambda execution_id, messages: sent.extend(i for _task_id, ids in messages for i in ids),
    )
    return sent


def started_execution(tasks: int = 2) -> DagExecution:
    execution = services.execution_create(dag=DagFactory(result=decomposer_job(tasks)))
    services.execution_start(execution_id=execution.id)
    return DagExecution.objects.get(pk=execution.pk)


def test_node_with_lapsed_lease_is_requeued_and_live_one_left_alone(enqueued):
    execution = started_execution()
    node = SubStep.objects.get(execution=execution, task_id="001")
    assert enqueued == [node.id]
    claimed = services.sub_step_claim(sub_step_id=node.id)
    assert claimed is not None
    enqueued.clear()

    assert executions_recover()["lapsed"] == 0  # the lease is fresh: a live worker has it
    assert services.sub_step_claim(sub_step_id=node.id) is None  # not stolen either

    SubStep.objects.filter(pk=node.id).update(lease_expires_at=now() - timedelta(seconds=1))
    counts = executions_recover()

    assert counts["lapsed"] == 1
    assert enqueued == [node.id]
    reclaimed = services.sub_step_claim(sub_step_id=node.id)
    assert reclaimed is not None and reclaimed.attempts == 2


def test_lapsed_nodes_go_back_in_messages_of_their_own_execution(monkeypatch):
    """A message of several nodes belongs to one execution (its worker claims them together
    and numbers their events on that execution's row)."""
    messages_by_execution: list[tuple[str, list[list[str]]]] = []
    monkeypatch.setattr(
        dispatch,
        "nodes_send",
        lambda execution_id, messages: messages_by_execution.append(
            (execution_id, [list(ids) for _task_id, ids in messages])
        ),
    )
    executions = []
    for _ in range(2):
        job = decomposer_job(2)
        job["sub_tasks"][1]["dependencies"] = ["none"]
        execution = services.execution_create(dag=DagFactory(result=job))
        services.execution_start(execution_id=execution.id)
        ids = list(SubStep.objects.filter(execution=execution).values_list("id", flat=True))
        assert services.sub_steps_claim(execution_id=execution.id, sub_step_ids=ids)
        executions.append((execution.id, sorted(ids)))
    SubStep.objects.update(lease_expires_at=now() - timedelta(seconds=1))
    messages_by_execution.clear()

    assert executions_recover()["lapsed"] == 4

    assert sorted(
        (execution_id, sorted(node for ids in messages for node in ids))
        for execution_id, messages in messages_by_execution
    ) == sorted(executions)
    for execution_id, messages in messages_by_execution:
        assert len(messages) == 1  # both its nodes, in one message
        assert services.sub_steps_claim(execution_id=execution_id, sub_step_ids=messages[0])


def test_node_whose_workers_keep_dying_is_failed(enqueued, settings):
    settings.NODE_MAX_ATTEMPTS = 1
    execution = started_execution()
    node = SubStep.objects.get(execution=execution, task_id="001")
    services.sub_step_claim(sub_step_id=node.id)
    SubStep.objects.filter(pk=node.id).update(lease_expires_at=now() - timedelta(seconds=1))

    assert executions_recover()["given_up"] == 1

    node.refresh_from_db()
    execution.refresh_from_db()
    assert node.status == "failed"
    assert execution.status == "suspended"
    assert "stopped" in execution.suspended_reason


def test_lost_message_is_requeued_after_the_stale_delay(enqueued, settings):
    settings.NODE_DISPATCH_STALE_SECONDS = 60
    execution = started_execution()
    node = SubStep.objects.get(execution=execution, task_id="001")
    enqueued.clear()
    assert executions_recover()["stale"] == 0
    SubStep.objects.filter(pk=node.id).update(dispatched_at=now() - timedelta(minutes=5))

    assert executions_recover()["stale"] == 1
    assert enqueued == [node.id]


def test_execution_whose_dispatch_was_lost_is_advanced(enqueued):
    execution = started_execution(tasks=1)
    SubStep.objects.filter(execution=execution).update(dispatched_at=None)  # as if never sent
    enqueued.clear()

    call_command("recover_executions")

    assert enqueued == [SubStep.objects.get(execution=execution, task_id="001").id]


def warnings_of(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "dags.execution.recovery" and record.levelno >= logging.WARNING
    ]


def test_sending_nodes_stored_unsent_is_routine_and_no_warning(enqueued, caplog):
    # As a burst of starts leaves them: committed ready, handed over after the answer.
    execution = started_execution(tasks=2)
    SubStep.objects.filter(execution=execution).update(dispatched_at=None, queue_task_id=None)
    enqueued.clear()
    caplog.set_level(logging.INFO, logger="dags.execution.recovery")

    assert executions_recover()["advanced"] == 1

    ready = SubStep.objects.filter(execution=execution, remaining_dependencies=0)
    assert sorted(enqueued) == sorted(ready.values_list("id", flat=True))
    assert warnings_of(caplog) == []
    assert "sent the waiting nodes of 1 execution(s)" in caplog.messages


def test_an_execution_left_with_nothing_to_run_is_pushed_on_with_a_warning(enqueued, caplog):
    # Its one node is done but the synthesis was never created or sent (a lost hand-over).
    execution = started_execution(tasks=1)
    SubStep.objects.filter(execution=execution).update(status=SubStep.Status.COMPLETED)
    DagExecution.objects.filter(pk=execution.pk).update(completed_tasks=1)
    enqueued.clear()
    caplog.set_level(logging.INFO, logger="dags.execution.recovery")

    assert executions_recover()["advanced"] == 1

    synthesis = SubStep.objects.get(execution=execution, task_id=SYNTHESIS_TASK_ID)
    assert enqueued == [synthesis.id]
    assert warnings_of(caplog) == [
        "recovered executions " + str({"lapsed": 0, "stale": 0, "given_up": 0, "advanced": 1})
    ]


def test_dispatch_says_what_it_handed_over_and_keeps_one_for_the_caller(enqueued):
    execution = services.execution_create(dag=DagFactory(result=decomposer_job(2)))
    DagExecution.objects.filter(pk=execution.pk).update(status="running")
    execution.refresh_from_db()
    first = SubStep.objects.get(execution=execution, task_id="001")

    kept = dispatch.execution_dispatch_ready(execution=execution, keep_one=True)
    assert (kept.queued, kept.kept) == ([], first.id)  # for the caller to claim, not queued
    stamp = now()
    taken = statements.claim_node(
        {"pk": first.id}, stamp=stamp, lease_until=stamp, max_attempts=3, kept=True
    )
    assert taken is not None and taken.status == "running"
    assert SubStep.objects.get(pk=first.id).dispatched_at == stamp  # marked by the claim
    assert not dispatch.execution_dispatch_ready(execution=execution)  # nothing else is ready

    SubStep.objects.filter(pk=first.id).update(status="pending", dispatched_at=None)
    queued = dispatch.execution_dispatch_ready(execution=execution)
    assert (queued.queued, queued.kept) == ([first.id], None)
    assert enqueued == [first.id]  # sent once the transaction committed
