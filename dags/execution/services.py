"""The execution lifecycle: create, start, resume and cancel executions; claim, complete and
fail their nodes.

Every state change happens in one database transaction that also stores its event; newly
runnable nodes are handed to the queue only after that transaction commits. A node is claimed
with a conditional update, so a duplicate delivery or a second worker changes nothing, and a
node whose worker died is found by its lapsed lease (see `recovery`).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import F
from django.utils.timezone import now

from agents.templating import current_date_text
from config.combining import Combiner
from config.db import is_transient_conflict, write_transaction
from config.errors import Conflict, InvalidInput
from config.workers import worker_stopping
from dags import events
from dags.execution import dispatch, leases, statements
from dags.execution.node_threads import (
    node_threads_release,
    node_threads_reserve,
    node_threads_submit,
)
from dags.execution.prompts import plan_context
from dags.execution.work import NodeFailure, NodeOutcome, run_node_work
from dags.models import SYNTHESIS_TASK_ID, Dag, DagExecution, SubStep
from dags.plan import DecomposerJob, PlanError, graph_issues, job_dict, parse_job, real_dependencies

logger = logging.getLogger(__name__)

Status = DagExecution.Status
NodeStatus = SubStep.Status
RESUMABLE = (Status.SUSPENDED, Status.FAILED, Status.CANCELLED)
CANCELLABLE = (Status.PENDING, Status.RUNNING, Status.SUSPENDED, Status.WAITING)
_DATE_PLACEHOLDER = re.compile(r"\{\{\s*(?:currentDate|today)\s*\}\}", re.IGNORECASE)


class ClarificationNeeded(Exception):
    """The stored plan asks the user a question instead of being executable."""

    def __init__(self, job: DecomposerJob) -> None:
        super().__init__(job.clarification_query or "")
        self.job = job


# --- creation ------------------------------------------------------------------------------------
def _with_dates(value: Any, stamp: str) -> Any:
    """`{{currentDate}}` / `{{Today}}` filled in everywhere in the plan (one behaviour for all
    ways of starting: by hand, dag-run, schedules)."""
    if isinstance(value, str):
        return _DATE_PLACEHOLDER.sub(lambda _m: stamp, value)
    if isinstance(value, dict):
        return {key: _with_dates(item, stamp) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_dates(item, stamp) for item in value]
    return value


def executable_job(dag: Dag) -> DecomposerJob:
    """The DAG's plan, checked as a DecomposerJob and as a graph (PlanError otherwise)."""
    job = parse_job(_with_dates(dag.result, current_date_text()))
    issues = graph_issues(job.sub_tasks)
    if issues:
        raise PlanError(issues)
    return job


def _execution_insert(
    *, dag: Dag, owner: Any, original_request: str | None, started: datetime | None
) -> tuple[DagExecution, list[SubStep]]:
    """Insert the execution (pending, or running since `started` with its `execution.started`
    event's number taken) and one pending sub-step per task: two INSERTs."""
    job = executable_job(dag)
    if job.clarification_needed:
        raise ClarificationNeeded(job)
    params = dag.params if isinstance(dag.params, dict) else {}
    fields: dict[str, Any] = {}
    if started is not None:
        fields = {
            "status": Status.RUNNING,
            "started_at": started,
            "created_at": started,
            "updated_at": started,
            "last_event_seq": 1,
        }
    execution = DagExecution.objects.create(
        dag=dag,
        owner=owner if owner is not None else dag.owner,
        original_request=original_request
        or params.get("goalText")
        or params.get("goal-text")
        or job.original_request,
        primary_intent=job.intent.primary,
        total_tasks=len(job.sub_tasks),
        plan_context=plan_context(job_dict(job)),
        **fields,
    )
    dependants: dict[str, list[str]] = {task.id: [] for task in job.sub_tasks}
    for task in job.sub_tasks:
        for dep in real_dependencies(task.dependencies):
            dependants[dep].append(task.id)
    sub_steps = SubStep.objects.bulk_create(
        [
            SubStep(
                execution=execution,
                task_id=task.id,
                description=task.description,
                thought=task.thought,
                action_type=task.action_type,
                tool_or_prompt_name=task.tool_or_prompt.name,
                tool_or_prompt_params=task.tool_or_prompt.params or {},
                dependencies=task.dependencies,
                remaining_dependencies=len(set(real_dependencies(task.dependencies))),
                dependants=dependants[task.id],
            )
            for task in job.sub_tasks
        ]
    )
    logger.info(
        "execution created id=%s dag=%s tasks=%d", execution.id, dag.id, execution.total_tasks
    )
    return execution, sub_steps


@transaction.atomic
def execution_create(
    *, dag: Dag, owner: Any = None, original_request: str | None = None
) -> DagExecution:
    """A pending execution of the DAG with one pending sub-step per task.

    It belongs to `owner` when given (a staff user running someone else's DAG), else to the
    DAG's owner (schedules, and owners running their own DAGs).
    """
    execution, _sub_steps = _execution_insert(
        dag=dag, owner=owner, original_request=original_request, started=None
    )
    return execution


def execution_start(*, execution_id: str) -> None:
    """Move a pending execution to running and hand its first nodes to the workers."""
    with transaction.atomic():
        execution = DagExecution.objects.select_for_update().get(pk=execution_id)
        if execution.status != Status.PENDING:
            return
        stamp = now()
        execution.status = Status.RUNNING
        execution.started_at = stamp
        execution.updated_at = stamp
        execution.save(update_fields=["status", "started_at", "updated_at"])
        events.emit_execution_event(
            execution_id=execution.id,
            type=events.EXECUTION_STARTED,
            payload=_started_payload(execution),
        )
        dispatch.execution_dispatch_ready(execution=execution)


def _started_payload(execution: DagExecution) -> dict[str, Any]:
    return {"totalTasks": execution.total_tasks, "originalRequest": execution.original_request}


def execution_launch(
    *,
    dag: Dag,
    owner: Any = None,
    original_request: str | None = None,
    send_after_response: bool = False,
) -> DagExecution:
    """Create and start an execution of a stored DAG (owner as in `execution_create`).

    One transaction stores it already running, with its `execution.started` event and its
    sub-steps. Its first nodes (those without dependencies, within the per-execution cap) are
    sent once it commits; with `send_after_response` (a view), only once the response is on its
    way (`dispatch.nodes_dispatch_after_response`). Either way they are committed as ready and
    unsent first, so if this process dies before sending them, the dispatcher of any worker
    sends them (recovery.executions_dispatch).
    """
    with write_transaction():
        stamp = now()
        execution, sub_steps = _execution_insert(
            dag=dag, owner=owner, original_request=original_request, started=stamp
        )
        events.emit_execution_events(
            execution_id=execution.id,
            events=[(events.EXECUTION_STARTED, _started_payload(execution))],
            last_seq=1,
        )
        ready = [
            sub_step.id
            for sub_step in sorted(sub_steps, key=lambda sub_step: sub_step.task_id)
            if sub_step.remaining_dependencies == 0
        ][: settings.EXECUTION_MAX_PARALLEL_NODES]
        if not sub_steps:  # nothing to run: the synthesis is due at once
            dispatch.execution_dispatch_ready(execution=execution)
        elif not send_after_response:
            dispatch.nodes_hand_over(execution_id=execution.id, sub_step_ids=ready, stamp=stamp)
    if send_after_response and ready:
        dispatch.nodes_dispatch_after_response(execution.id, ready)
    return execution


# --- nodes ---------------------------------------------------------------------------------------
def _duration_ms(start: datetime | None, end: datetime) -> int | None:
    return None if start is None else max(0, int((end - start).total_seconds() * 1000))


def sub_step_claim(*, sub_step_id: str) -> SubStep | None:
    """Take a node for this worker: pending, or running whose lease lapsed (its worker died).

    None when there is nothing to do: already done, alive elsewhere, given up after too many
    lost workers (the sweep fails those), or the execution is not running (suspended,
    cancelled, deleted). This is what makes redelivery harmless.
    """
    with write_transaction():
        stamp = now()
        # The node first, unconditionally on its execution; then the execution's row, which
        # says whether it runs and gives the event its number in one statement (and locks the
        # row, as a completion does). Taking a node of an execution that is not running is
        # undone by rolling the transaction back: cheaper than checking the execution inside
        # the claim and then taking a number in a statement of its own.
        sub_step = statements.claim_node(
            {"pk": sub_step_id},
            stamp=stamp,
            lease_until=leases.lease_deadline(),
            max_attempts=settings.NODE_MAX_ATTEMPTS,
        )
        if sub_step is None or not _claims_started(sub_step.execution_id, [sub_step], stamp):
            return None
        return sub_step


def sub_steps_claim(*, execution_id: str, sub_step_ids: Sequence[str]) -> list[SubStep]:
    """Take those of the execution's nodes named that are free, in one transaction of three
    statements whatever their number (the nodes, the execution's row, their `substep.started`
    events); in task order. None are taken unless the execution is running (see
    `sub_step_claim`, which does the same for one node)."""
    with write_transaction():
        stamp = now()
        nodes = statements.claim_nodes(
            execution_id,
            sub_step_ids,
            stamp=stamp,
            lease_until=leases.lease_deadline(),
            max_attempts=settings.NODE_MAX_ATTEMPTS,
        )
        if not nodes or not _claims_started(execution_id, nodes, stamp):
            return []
    return nodes


def _claims_started(execution_id: str, nodes: Sequence[SubStep], stamp: datetime) -> bool:
    """In the claiming transaction: number and store the claimed nodes' `substep.started`
    events if their execution runs, else roll the claims back (see `sub_step_claim`)."""
    try:
        execution = statements.execution_progress(execution_id, stamp=stamp, events=len(nodes))
    except DagExecution.DoesNotExist:
        execution = None
    if execution is None or execution.status != Status.RUNNING:
        transaction.set_rollback(True)
        return False
    events.emit_execution_events(
        execution_id=execution.id,
        events=[(events.SUBSTEP_STARTED, _started(node)) for node in nodes],
        last_seq=execution.last_event_seq,
    )
    return True


def _claim_kept(sub_step_id: str) -> SubStep | None:
    """Claim a node the caller's transaction found ready, holding its running execution's row
    (see statements.claim_node, `kept`)."""
    sub_step = statements.claim_node(
        {"pk": sub_step_id},
        stamp=now(),
        lease_until=leases.lease_deadline(),
        max_attempts=settings.NODE_MAX_ATTEMPTS,
        kept=True,
    )
    if sub_step is not None:
        events.emit_execution_event(
            execution_id=sub_step.execution_id,
            type=events.SUBSTEP_STARTED,
            payload=_started(sub_step),
        )
    return sub_step


def _started(sub_step: SubStep) -> dict[str, Any]:
    return {"subStepId": sub_step.task_id, "description": sub_step.description}


def sub_step_give_up(*, sub_step_id: str) -> None:
    """Fail a node whose workers kept dying (its lease lapsed NODE_MAX_ATTEMPTS times)."""
    with write_transaction():
        sub_step = SubStep.objects.filter(pk=sub_step_id).first()
        if sub_step is None:
            return
        _record_failure(
            sub_step, f"The worker running this task stopped {sub_step.attempts} times; giving up."
        )


def sub_step_complete(
    *, sub_step: SubStep, outcome: NodeOutcome, keep_next: bool = True
) -> SubStep | None:
    """Record a node's result, unblock its dependants and dispatch what became ready.

    With `keep_next`, when exactly one node became ready, it is claimed for this worker in the
    same transaction and returned, to run next without a round trip through the queue (its
    state is in the database, so a crash loses nothing: the lease lapses and the sweep
    re-queues it). Without it (a worker that is stopping), every ready node goes to the queue.

    A node whose one dependant waited only on it hands its slot straight to that dependant:
    the claim of the dependant consumes the dependency, and no ready nodes are looked for. A
    node that no task waits on is recorded by `leaf_nodes_complete`, together with those of
    other threads of this process that arrive while one such transaction runs.
    """
    if not sub_step.dependants and sub_step.task_id != SYNTHESIS_TASK_ID:
        return LEAF_RESULTS.submit(NodeResult(sub_step, outcome, keep_next))
    with write_transaction():
        stamp = now()
        completed = _result_store(sub_step, outcome, stamp)
        if completed is None:  # another worker took it over after our lease lapsed
            return None
        if sub_step.task_id == SYNTHESIS_TASK_ID:
            _finish(sub_step, outcome, stamp, completed)
            return None
        dependants = sorted(set(sub_step.dependants or []))
        hand_over = keep_next and len(dependants) == 1
        # Numbers for this node's event and, when its slot goes to its dependant, that one's.
        execution = statements.execution_progress(
            sub_step.execution_id, stamp=stamp, events=2 if hand_over else 1, completed=1
        )
        running = execution.status == Status.RUNNING
        following = None
        if hand_over and running:
            following = statements.claim_node(
                {"execution_id": sub_step.execution_id, "task_id": dependants[0]},
                stamp=stamp,
                lease_until=leases.lease_deadline(),
                max_attempts=settings.NODE_MAX_ATTEMPTS,
                kept=True,
                last_dependency=True,
            )
        if following is not None:
            events.emit_execution_events(
                execution_id=execution.id,
                events=[completed, (events.SUBSTEP_STARTED, _started(following))],
                last_seq=execution.last_event_seq,
            )
            return following
        last_seq = execution.last_event_seq
        if hand_over:  # the dependant waits on other nodes too, or the execution stopped
            statements.return_event_seqs(execution.id, 1)
            last_seq -= 1
        events.emit_execution_events(
            execution_id=execution.id, events=[completed], last_seq=last_seq
        )
        statements.unblock(execution.id, dependants)
        if not running:  # completed after a cancel or a suspension: its spend still counts
            _record_spend(execution.id)
            return None
        kept = dispatch.execution_dispatch_ready(execution=execution, keep_one=keep_next).kept
        return _claim_kept(kept) if kept else None


def _result_store(
    sub_step: SubStep, outcome: NodeOutcome, stamp: datetime
) -> tuple[str, dict[str, Any]] | None:
    """Store a node's result if the node is still ours; returns its `substep.completed` event
    (type and payload), or None if another worker took the node over after our lease lapsed."""
    duration = _duration_ms(sub_step.started_at, stamp)
    stored = statements.still_ours(sub_step).update(
        status=NodeStatus.COMPLETED,
        result=outcome.result,
        completed_at=stamp,
        duration_ms=duration,
        usage=outcome.usage,
        cost_usd=outcome.cost_usd,
        generation_stats=outcome.generation_stats,
        lease_expires_at=None,
        updated_at=stamp,
    )
    if not stored:
        return None
    return (
        events.SUBSTEP_COMPLETED,
        {"subStepId": sub_step.task_id, "durationMs": duration, "result": outcome.result},
    )


@dataclass(frozen=True)
class NodeResult:
    """A node's outcome, to be recorded (`keep_next` as in `sub_step_complete`)."""

    sub_step: SubStep
    outcome: NodeOutcome
    keep_next: bool = True


def leaf_nodes_complete(leaves: Sequence[NodeResult]) -> list[SubStep | None]:
    """Record the results of nodes that no task waits on (a fan-out's), all in one transaction:
    an UPDATE per node, then per execution one claim of its row (counts and event numbers) and
    one INSERT of their `substep.completed` events. A node no longer ours (another worker took
    it over) is left out. When the last task of an execution is among them, its synthesis is
    claimed for the thread of one such node (or sent, without `keep_next`); the answer is one
    entry per node, in order: the node that thread runs next, or None.

    Every batch locks its rows in one order (nodes by execution and id, then executions by id),
    so that two workers' batches never wait on each other in a cycle; a transaction the
    database ends anyway to break a deadlock (PostgreSQL) is run again, since the results are
    still at hand."""
    ordered = sorted(leaves, key=lambda leaf: (leaf.sub_step.execution_id, leaf.sub_step.id))
    arrival = {leaf.sub_step.id: index for index, leaf in enumerate(leaves)}
    attempt = 1
    while True:
        try:
            answers = _leaf_results_record(ordered, arrival)
            break
        except OperationalError as error:
            if attempt >= CONFLICT_ATTEMPTS or not is_transient_conflict(error):
                raise
            attempt += 1
            logger.info("recording %d results again after a conflict: %s", len(leaves), error)
    return [answers.get(leaf.sub_step.id) for leaf in leaves]


# How many times a batch of results is recorded before a conflict is given up on.
CONFLICT_ATTEMPTS = 3


def _leaf_results_record(
    leaves: Sequence[NodeResult], arrival: Mapping[str, int]
) -> dict[str, SubStep | None]:
    """`leaf_nodes_complete`'s transaction, for results in locking order (`arrival`: the
    order they came in, which their events and the choice of the synthesis's thread keep)."""
    answers: dict[str, SubStep | None] = {}
    with write_transaction():
        stamp = now()
        recorded: dict[str, list[tuple[NodeResult, tuple[str, dict[str, Any]]]]] = {}
        for leaf in leaves:
            completed = _result_store(leaf.sub_step, leaf.outcome, stamp)
            if completed is not None:
                recorded.setdefault(leaf.sub_step.execution_id, []).append((leaf, completed))
        for execution_id, done in recorded.items():
            # Their events in the order the results came.
            done.sort(key=lambda entry: arrival[entry[0].sub_step.id])
            execution = statements.execution_progress(
                execution_id, stamp=stamp, events=len(done), completed=len(done)
            )
            events.emit_execution_events(
                execution_id=execution.id,
                events=[completed for _leaf, completed in done],
                last_seq=execution.last_event_seq,
            )
            if execution.status != Status.RUNNING:
                _record_spend(execution.id)
                continue
            if (
                execution.completed_tasks < execution.total_tasks
                and execution.total_tasks <= settings.EXECUTION_MAX_PARALLEL_NODES
            ):
                # Nothing can have become ready: no node waited on these, none was held back
                # by the cap (the whole execution fits under it), and the synthesis is not due
                # yet. (Nodes left unsent for any other reason are the dispatcher's.)
                continue
            last, _completed = done[-1]
            kept = dispatch.execution_dispatch_ready(
                execution=execution, keep_one=last.keep_next
            ).kept
            answers[last.sub_step.id] = _claim_kept(kept) if kept else None
    return answers


# Results of fan-out nodes that arrive while one is being recorded are recorded together (public
# so that tests can see how many wait).
LEAF_RESULTS: Combiner[NodeResult, SubStep | None] = Combiner(leaf_nodes_complete)


def _record_spend(execution_id: str, **changes: Any) -> None:
    """Store the execution's usage and cost totals (summed over its nodes) with `changes`."""
    spend = statements.execution_spend(execution_id)
    DagExecution.objects.filter(pk=execution_id).update(
        total_usage=spend.usage_dict(), total_cost_usd=spend.cost_usd, **changes
    )


def _finish(
    sub_step: SubStep, outcome: NodeOutcome, stamp: datetime, completed: tuple[str, dict[str, Any]]
) -> None:
    """Record the synthesis's result as the execution's, and complete a running execution:
    the execution's row (both events' numbers), the spend, the completion, and the two events
    (`substep.completed`, `execution.completed`) in one INSERT."""
    execution = statements.execution_progress(sub_step.execution_id, stamp=stamp, events=2)
    last_seq = execution.last_event_seq
    if execution.status != Status.RUNNING:  # cancelled or suspended meanwhile: no completion
        statements.return_event_seqs(execution.id, 1)
        events.emit_execution_events(
            execution_id=execution.id, events=[completed], last_seq=last_seq - 1
        )
        _record_spend(execution.id)
        return
    duration = _duration_ms(execution.started_at, stamp)
    _record_spend(
        execution.id,
        status=Status.COMPLETED,
        final_result=outcome.result,
        synthesis_result=outcome.result,
        completed_at=stamp,
        duration_ms=duration,
    )
    events.emit_execution_events(
        execution_id=execution.id,
        events=[
            completed,
            (
                events.EXECUTION_COMPLETED,
                {
                    "status": Status.COMPLETED,
                    "completedTasks": execution.completed_tasks,
                    "failedTasks": execution.failed_tasks,
                    "durationMs": duration,
                    "finalResult": outcome.result,
                },
            ),
        ],
        last_seq=last_seq,
    )
    logger.info("execution completed id=%s duration_ms=%s", execution.id, duration)


def _record_failure(sub_step: SubStep, message: str) -> bool:
    """Mark the node failed and suspend the execution (inside the caller's transaction)."""
    stamp = now()
    failed = statements.still_ours(sub_step).update(
        status=NodeStatus.FAILED,
        error=message,
        completed_at=stamp,
        duration_ms=_duration_ms(sub_step.started_at, stamp),
        lease_expires_at=None,
        updated_at=stamp,
    )
    if not failed:
        return False
    execution = statements.execution_progress(
        sub_step.execution_id,
        stamp=stamp,
        events=1,
        failed=0 if sub_step.task_id == SYNTHESIS_TASK_ID else 1,
    )
    events.emit_execution_events(
        execution_id=execution.id,
        events=[(events.SUBSTEP_FAILED, {"subStepId": sub_step.task_id, "error": message})],
        last_seq=execution.last_event_seq,
    )
    if execution.status == Status.RUNNING:
        label = "Synthesis" if sub_step.task_id == SYNTHESIS_TASK_ID else f"Task {sub_step.task_id}"
        reason = f"{label} failed: {message}"
        _record_spend(
            execution.id, status=Status.SUSPENDED, suspended_reason=reason, suspended_at=stamp
        )
        events.emit_execution_event(
            execution_id=execution.id,
            type=events.EXECUTION_SUSPENDED,
            payload={"reason": reason},
        )
        logger.info("execution suspended id=%s task=%s", execution.id, sub_step.task_id)
    return True


def sub_step_hand_back(*, sub_step: SubStep) -> bool:
    """Give a node claimed for this worker, and not started, back to the queue: the worker is
    stopping. The claim does not count as an attempt. False when it is no longer ours."""
    with write_transaction():
        stamp = now()
        returned = statements.still_ours(sub_step).update(
            status=NodeStatus.PENDING,
            started_at=None,
            lease_expires_at=None,
            attempts=max(0, sub_step.attempts - 1),
            updated_at=stamp,
        )
        if returned:
            dispatch.nodes_hand_over(
                execution_id=sub_step.execution_id, sub_step_ids=[sub_step.id], stamp=stamp
            )
    if returned:
        logger.info(
            "node %s of %s handed back to the queue", sub_step.task_id, sub_step.execution_id
        )
    return bool(returned)


def sub_step_fail(*, sub_step: SubStep, message: str) -> None:
    with write_transaction():
        _record_failure(sub_step, message[: settings.NODE_ERROR_MAX_CHARS])


def node_run(*, sub_step_id: str) -> None:
    """Run a node (and any single successor it unblocks) to completion or failure.

    Once the worker's shutdown began, the node in hand is finished and the rest of the chain
    goes back to the queue, for the next worker."""
    _chain_run(sub_step_claim(sub_step_id=sub_step_id))


def nodes_run(*, execution_id: str, sub_step_ids: Sequence[str], task_id: str) -> None:
    """Run the execution's nodes that the message `task_id` carries, all at once: the first on
    this thread, the others on node threads (`node_threads`); each with any single successor
    it unblocks, as `node_run`. Returns when all are done.

    The nodes are claimed together, and only as many as there are threads for now; the rest
    are sent again, each in a message of its own, for this worker's next free thread or another
    worker. A node that fails unexpectedly is recorded as failed, as in `node_run`; an error
    outside a node (the database gone) is raised once the others are done."""
    ids = list(dict.fromkeys(sub_step_ids))
    if not ids:
        return
    extra = node_threads_reserve(len(ids) - 1)
    try:
        nodes = sub_steps_claim(execution_id=execution_id, sub_step_ids=ids[: 1 + extra])
    except BaseException:
        node_threads_release(extra)
        raise
    node_threads_release(extra - max(0, len(nodes) - 1))
    # Each node's lease is held from the moment its run starts; one that never starts (a node
    # thread refused it, or something below failed first) lapses, and recovery sends it again.
    others: list[Future[None]] = []
    try:
        for node in nodes[1:]:
            others.append(
                node_threads_submit(
                    functools.partial(_chain_run, node), name=dispatch.RUN_SUB_STEPS_TASK
                )
            )
        if len(ids) > 1 + extra:
            dispatch.nodes_send_apart(
                execution_id=execution_id, sub_step_ids=ids[1 + extra :], task_id=task_id
            )
        if nodes:
            _chain_run(nodes[0])
    finally:
        node_threads_release(max(0, len(nodes) - 1 - len(others)))
        errors = [error for error in (other.exception() for other in others) if error]
    if errors:
        raise errors[0]


def _chain_run(sub_step: SubStep | None) -> None:
    """Run a claimed node and then, for as long as each hands its slot on, its successor."""
    known: dict[str, str] = {}  # the result of the node just run, which its successor reads
    while sub_step is not None:
        leases.hold(sub_step.id)
        started = time.perf_counter()
        following: SubStep | None = None
        try:
            try:
                outcome = run_node_work(sub_step, known_results=known)
            except NodeFailure as failure:
                sub_step_fail(sub_step=sub_step, message=str(failure))
                return
            except Exception as error:  # a bug or an unexpected library error: record it
                logger.exception("node %s of %s crashed", sub_step.task_id, sub_step.execution_id)
                sub_step_fail(
                    sub_step=sub_step, message=f"Unexpected error: {type(error).__name__}: {error}"
                )
                return
            following = sub_step_complete(
                sub_step=sub_step, outcome=outcome, keep_next=not worker_stopping()
            )
            if following is not None:
                leases.hold(following.id)  # before this node's lease goes
        finally:
            leases.release(sub_step.id)
            logger.debug(
                "node %s took %.1f ms", sub_step.task_id, (time.perf_counter() - started) * 1000
            )
        if following is not None and worker_stopping():  # the shutdown began meanwhile
            leases.release(following.id)
            sub_step_hand_back(sub_step=following)
            return
        known = {sub_step.task_id: outcome.result}
        sub_step = following


# --- resume and cancel ---------------------------------------------------------------------------
def execution_resume(*, execution_id: str) -> DagExecution:
    """Run again what did not complete: failed, cancelled and pending nodes; completed
    results are kept and reused."""
    with transaction.atomic():
        execution = DagExecution.objects.select_for_update().get(pk=execution_id)
        if execution.status not in RESUMABLE:
            raise InvalidInput(
                f"Cannot resume execution with status '{execution.status}'. Only 'suspended', "
                "'failed' or 'cancelled' executions can be resumed.",
                currentStatus=execution.status,
            )
        if execution.dag_id is None:
            raise InvalidInput("Execution has no associated DAG. Cannot resume.")
        stamp = now()
        SubStep.objects.filter(
            execution=execution,
            status__in=[NodeStatus.FAILED, NodeStatus.CANCELLED, NodeStatus.PENDING],
        ).update(
            status=NodeStatus.PENDING,
            dispatched_at=None,
            queue_task_id=None,
            lease_expires_at=None,
            started_at=None,
            completed_at=None,
            duration_ms=None,
            error=None,
            updated_at=stamp,
        )
        completed = set(
            SubStep.objects.filter(execution=execution, status=NodeStatus.COMPLETED).values_list(
                "task_id", flat=True
            )
        )
        pending = list(
            SubStep.objects.filter(execution=execution, status=NodeStatus.PENDING)
            .exclude(task_id=SYNTHESIS_TASK_ID)
            .only("id", "dependencies")
        )
        for row in pending:
            row.remaining_dependencies = len(
                {dep for dep in real_dependencies(row.dependencies or []) if dep not in completed}
            )
        SubStep.objects.bulk_update(pending, ["remaining_dependencies"])
        execution.status = Status.RUNNING
        execution.started_at = stamp
        execution.completed_at = None
        execution.failed_tasks = 0
        execution.completed_tasks = len(completed - {SYNTHESIS_TASK_ID})
        execution.retry_count = F("retry_count") + 1
        execution.last_retry_at = stamp
        execution.updated_at = stamp
        execution.save(
            update_fields=[
                "status",
                "started_at",
                "completed_at",
                "failed_tasks",
                "completed_tasks",
                "retry_count",
                "last_retry_at",
                "updated_at",
            ]
        )
        execution.refresh_from_db()
        events.emit_execution_event(
            execution_id=execution.id,
            type=events.EXECUTION_RESUMED,
            payload={"totalTasks": execution.total_tasks},
        )
        dispatch.execution_dispatch_ready(execution=execution)
    logger.info("execution resumed id=%s retry=%d", execution.id, execution.retry_count)
    return execution


def execution_cancel(*, execution_id: str, reason: str = "Cancelled by request") -> DagExecution:
    """Stop scheduling: nothing new starts, queued nodes are revoked; running ones finish and
    are recorded."""
    with transaction.atomic():
        execution = DagExecution.objects.select_for_update().get(pk=execution_id)
        if execution.status not in CANCELLABLE:
            raise Conflict(
                f"Cannot cancel execution with status '{execution.status}'.",
                currentStatus=execution.status,
            )
        stamp = now()
        queued = [
            task_id
            for task_id in SubStep.objects.filter(
                execution=execution, status=NodeStatus.PENDING, queue_task_id__isnull=False
            ).values_list("queue_task_id", flat=True)
            if task_id
        ]
        SubStep.objects.filter(execution=execution, status=NodeStatus.PENDING).update(
            status=NodeStatus.CANCELLED, dispatched_at=None, queue_task_id=None, updated_at=stamp
        )
        execution.status = Status.CANCELLED
        execution.completed_at = stamp
        execution.updated_at = stamp
        execution.save(update_fields=["status", "completed_at", "updated_at"])
        _record_spend(execution.id)
        events.emit_execution_event(
            execution_id=execution.id,
            type=events.EXECUTION_CANCELLED,
            payload={"reason": reason},
        )
        if queued:
            transaction.on_commit(lambda: _revoke(queued), robust=True)
    logger.info("execution cancelled id=%s queued_revoked=%d", execution.id, len(queued))
    return execution


def _revoke(task_ids: list[str]) -> None:
    from config.celery import app

    app.control.revoke(task_ids)
