"""COMPONENT BENCHMARK (not the default deployment): the CPU one DAG node costs the process that
runs it, measured in-process without Celery, printed as JSON.

    uv run python bench/node_cpu.py [--rounds 5] [--chain 50] [--fanout 20] [--profile FILE]

A chain of `--chain` inference nodes runs in place on one thread (`services.node_run` on its
first node claims each successor itself, as a worker does); a fan-out of `--fanout` independent
nodes runs as a worker runs it: in messages of several nodes (`services.nodes_run`), each on a
thread of its own that starts the others on node threads. The LLM is the scripted server
(`bench/fake_llm.py`, instant replies) in its own process, SQLite and a private Redis as in the
default deployment. Reported per node: the process's CPU time (every thread: the node's own, the
event publisher's), and for the chain the database statements (transaction control apart) and
Python calls. Wall time is reported too but is only meaningful on a quiet machine. The Celery
worker's own share (receiving and acknowledging a message) is not here: `bench/run.py` measures
the whole worker.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from _support import ROOT, isolated_environment, setup_django

# As the worker's thread pool: threads (and their database connections) outlive a node.
POOL = ThreadPoolExecutor(max_workers=int(os.environ.get("BENCH_THREADS", "32")))
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def start_llm() -> tuple[subprocess.Popen, int]:
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fake_llm.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline().split()
    return server, int(line[1])


def plan(tasks: int, chain: bool) -> dict:
    sub_tasks = [
        {
            "id": f"{index:03d}",
            "description": f"Task {index}",
            "thought": f"Why task {index}",
            "action_type": "inference",
            "tool_or_prompt": {"name": "InferenceAgent", "params": {"prompt": f"Do {index}"}},
            "expected_output": "text",
            "dependencies": [f"{index - 1:03d}"] if chain and index > 1 else ["none"],
        }
        for index in range(1, tasks + 1)
    ]
    return {
        "original_request": "bench",
        "intent": {"primary": "report", "sub_intents": []},
        "entities": [],
        "sub_tasks": sub_tasks,
        "synthesis_plan": "Combine the results.",
        "validation": {"coverage": "high", "gaps": [], "iteration_triggers": []},
        "clarification_needed": False,
    }


def run_round(
    dag,
    roots_in_threads: bool,
    profiles: list[cProfile.Profile] | None = None,
    count: bool = False,
    cpu_clock: bool = False,
) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from dags.execution import dispatch, services
    from dags.models import DagExecution, SubStep

    execution = services.execution_create(dag=dag)
    DagExecution.objects.filter(pk=execution.pk).update(status="running")
    roots = list(
        SubStep.objects.filter(execution=execution, remaining_dependencies=0)
        .order_by("task_id")
        .values_list("id", flat=True)
    )
    counts: list[int] = []
    calls: list[int] = []

    def run(message: tuple[str, list[str]]) -> None:
        task_id, ids = message
        if len(ids) == 1:
            services.node_run(sub_step_id=ids[0])
        else:
            services.nodes_run(execution_id=execution.id, sub_step_ids=ids, task_id=task_id)

    def work(message: tuple[str, list[str]]) -> None:
        profile = None
        if profiles is not None:
            # The thread's own CPU time, so that waits on the LLM, Redis and SQLite's lock do
            # not count (cProfile's default clock is wall time).
            profile = cProfile.Profile(time.thread_time) if cpu_clock else cProfile.Profile()
            profiles.append(profile)
            profile.enable()
        if count:
            # Python function calls: a measure of interpreter work that other processes on the
            # machine do not disturb, unlike CPU time.
            counter = cProfile.Profile()
            with CaptureQueriesContext(connection) as queries:
                counter.enable()
                run(message)
                counter.disable()
            counts.append(
                sum(
                    1
                    for q in queries.captured_queries
                    if not q["sql"].startswith(TRANSACTION_CONTROL)
                )
            )
            calls.append(pstats.Stats(counter).total_calls)  # type: ignore[attr-defined]
        else:
            run(message)
        if profile is not None:
            profile.disable()

    times, wall = os.times(), time.perf_counter()
    if roots_in_threads:
        # The roots as a worker gets them (several in a message, see dispatch.node_messages),
        # each message on a long-lived thread with its own connection, as the worker's pool.
        messages = dispatch.node_messages(execution.id, roots, "bench")
        for future in [POOL.submit(work, message) for message in messages]:
            future.result()
    else:
        POOL.submit(work, (f"{roots[0]}:bench", roots[:1])).result()
    after, wall = os.times(), time.perf_counter() - wall
    user, system = after.user - times.user, after.system - times.system
    nodes = execution.total_tasks + 1  # the synthesis runs in place too
    done = SubStep.objects.filter(execution=execution, status="completed").count()
    assert done == nodes, f"{done} of {nodes} nodes completed"
    if count:
        return {
            "statements_per_node": round(sum(counts) / nodes, 2),
            "python_calls_per_node": round(sum(calls) / nodes),
        }
    return {
        "cpu_ms_per_node": round((user + system) * 1000 / nodes, 3),
        "system_cpu_ms_per_node": round(system * 1000 / nodes, 3),
        "wall_ms_per_node": round(wall * 1000 / nodes, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chain", type=int, default=50)
    parser.add_argument("--fanout", type=int, default=20)
    parser.add_argument("--profile", help="write a cProfile of the chain rounds here")
    parser.add_argument(
        "--profile-fanout", action="store_true", help="profile the fan-out rounds instead"
    )
    parser.add_argument(
        "--profile-clock",
        choices=("wall", "cpu"),
        default="wall",
        help="what the profile times: wall time (cProfile's default) or the thread's CPU time",
    )
    args = parser.parse_args()

    _env, processes = isolated_environment()
    server, port = start_llm()
    processes.append(server)
    os.environ.update(
        {
            "LLM_PROVIDER": "openai",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
            "OPENAI_API_KEY": "sk-bench",
        }
    )
    try:
        setup_django()
        from django.conf import settings
        from django.core.management import call_command

        from dags.models import Dag

        settings.DEBUG = False
        call_command("seed_agents", verbosity=0)
        chain_dag = Dag.objects.create(status="completed", result=plan(args.chain, chain=True))
        fanout_dag = Dag.objects.create(status="completed", result=plan(args.fanout, chain=False))
        run_round(chain_dag, False)  # warm: connections, caches, imports
        run_round(fanout_dag, True)
        chain = [run_round(chain_dag, False) for _ in range(args.rounds)]
        fanout = [run_round(fanout_dag, True) for _ in range(args.rounds)]
        # Counted on the chain only: a fan-out's nodes run on several threads (the message's
        # and node threads), and statements and calls are counted on the calling thread. Its
        # claim's statements are pinned by dags/tests/test_node_statements.py instead.
        counted = {"chain": run_round(chain_dag, False, count=True)}
        if args.profile:
            profiles: list[cProfile.Profile] = []
            dag = fanout_dag if args.profile_fanout else chain_dag
            for _ in range(args.rounds):
                run_round(dag, args.profile_fanout, profiles, cpu_clock=args.profile_clock == "cpu")
            stats = pstats.Stats(profiles[0])
            for profile in profiles[1:]:
                stats.add(profile)
            stats.dump_stats(args.profile)

        def summary(rows: list[dict]) -> dict:
            # The median, and the least CPU of any round: on a busy machine the least is the
            # figure other processes disturbed least.
            return (
                {key: statistics.median(row[key] for row in rows) for key in rows[0]}
                | {"least_cpu_ms_per_node": min(row["cpu_ms_per_node"] for row in rows)}
                | {"rounds": rows}
            )

        print(
            json.dumps(
                {
                    "benchmark": "bench/node_cpu.py (component, in-process, no Celery)",
                    "chain": {"nodes": args.chain, **counted["chain"], **summary(chain)},
                    "fanout": {"nodes": args.fanout, **summary(fanout)},
                },
                indent=1,
            )
        )
    finally:
        for process in processes:
            process.terminate()


if __name__ == "__main__":
    main()
