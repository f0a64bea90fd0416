"""TUNED VARIANT (not the default deployment): DAG execution on a Celery worker of its own,
printed as JSON.

    uv run python bench/dag_execution.py [--skip-large] [--repeat N] [--concurrency 24]

This is not what users run: it starts its own worker with --concurrency sized to the DAGs,
LOG_LEVEL=WARNING and EXECUTION_MAX_PARALLEL_NODES=32, and launches executions in-process rather
than over HTTP. Its figures are labelled "tuned" and are not comparable with the original's; the
default deployment (`./scripts/start`, every setting at its default, over HTTP) is measured by
bench/run.py (see docs/benchmarks.md). It remains useful to look at one part in isolation.

Scenarios (as the TypeScript server's published figures define them):
  chain50_instant   50 inference nodes in a chain, instant replies: per-node overhead
  chain20_200ms     20-node chain at 200 ms per call, the synthesis call included
                    (TypeScript server: 4.29-4.38 s)
  parallel20_200ms  20 independent nodes at 200 ms per call, the synthesis call included
                    (TypeScript server: 435-451 ms; target <= 1.2 x (200 ms + synthesis call)); the
                    node phase alone is reported against 1.2 x 200 ms too
  asymmetric        A 50 ms -> B 1 s and C 1 s -> D 50 ms, instant synthesis: ~1.05 s + synthesis
                    (waves: 2 s)
  independent1000   1000 independent tool nodes; worker peak RSS (target < 300 MB)

"At 200 ms per call" covers the synthesis call: that is how the TypeScript server's figures add up
(20 x 200 ms + 200 ms + its overhead = 4.29-4.38 s; 200 + 200 ms + overhead = 435-451 ms).
The worker is warmed up first (its pool threads and their connections, as in a worker that has
been running), and each scenario runs --repeat times; medians are reported with every run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _support import ROOT, isolated_environment, setup_django


def start_worker(env: dict[str, str], llm_url: str, concurrency: int) -> subprocess.Popen:
    worker_env = {
        **os.environ,
        **env,
        "OPENAI_BASE_URL": llm_url,
        "OPENAI_API_KEY": "sk-bench",
        "LLM_PROVIDER": "openai",
        "LLM_MODEL": "gpt-4o-mini",
        "CELERY_WORKER_CONCURRENCY": str(concurrency),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
            "-n",
            "bench@%h",
        ],
        cwd=ROOT,
        env=worker_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def task(task_id: str, deps: list[str], *, tool: dict | None = None, prompt: str = "") -> dict:
    return {
        "id": task_id,
        "description": f"step {task_id}",
        "thought": "bench",
        "action_type": "tool" if tool else "inference",
        "tool_or_prompt": tool or {"name": "InferenceAgent", "params": {"prompt": prompt}},
        "expected_output": "text",
        "dependencies": deps or ["none"],
    }


def job(tasks: list[dict]) -> dict:
    return {
        "original_request": "bench",
        "intent": {"primary": "bench", "sub_intents": []},
        "entities": [],
        "sub_tasks": tasks,
        "synthesis_plan": "SYNTHESIS",
        "validation": {"coverage": "high", "gaps": [], "iteration_triggers": []},
        "clarification_needed": False,
    }


def run(tasks: list[dict], timeout: float = 600.0):
    from dags.execution.services import execution_launch
    from dags.models import Dag, DagExecution

    dag = Dag.objects.create(result=job(tasks), params={"goalText": "bench"})
    started = time.perf_counter()
    execution = execution_launch(dag=dag)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = DagExecution.objects.get(pk=execution.pk)
        if execution.status in ("completed", "suspended", "failed", "cancelled"):
            break
        time.sleep(0.005)
    wall = time.perf_counter() - started
    if execution.status != "completed":
        raise RuntimeError(f"execution ended {execution.status}: {execution.suspended_reason}")
    return execution, wall


def node_rows(execution):
    from dags.models import SubStep

    return list(SubStep.objects.filter(execution=execution).order_by("task_id"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    env, services = isolated_environment()
    # The cap applies where nodes are dispatched: in this process (the first wave) and in the
    # worker (what finishing nodes unblock), so both get it through the environment.
    os.environ.update({"LOG_LEVEL": "WARNING", "EXECUTION_MAX_PARALLEL_NODES": "32"})
    setup_django()
    sys.path.insert(0, str(ROOT))
    from agents.models import Agent
    from tests.fakes.openai_server import ChatReply, FakeChatCompletions

    Agent.objects.create(name="InferenceAgent", version="1", prompt_template="Bench.", active=True)
    from dags.execution.prompts import SYNTHESIS_SYSTEM_PROMPT

    delays: dict[str, float] = {}
    synthesis_delay = {"seconds": 0.0}

    def responder(request: dict) -> ChatReply:
        if request["messages"][0]["content"] == SYNTHESIS_SYSTEM_PROMPT:
            return ChatReply(content="ok", delay=synthesis_delay["seconds"])
        text = request["messages"][-1]["content"]
        for marker, delay in delays.items():
            if marker in text:
                return ChatReply(content="ok", delay=delay)
        return ChatReply(content="ok")

    llm = FakeChatCompletions().start()
    llm.responder = responder
    worker = start_worker(env, llm.base_url, args.concurrency)
    results: dict[str, dict] = {}

    def repeated(scenario) -> list[dict]:
        return [scenario() for _ in range(args.repeat)]

    def median_of(runs: list[dict], key: str) -> float:
        return round(statistics.median(run[key] for run in runs), 1)

    try:
        # Warm-up: the worker is up, every code path is imported, and twenty pool threads have
        # run a node (threads and their connections are made on first use).
        run([task("001", [], prompt="warm")], timeout=120)
        run([task(f"{i:03d}", [], prompt="warm") for i in range(1, 21)], timeout=120)

        def chain50() -> dict:
            execution, wall = run(
                [
                    task(f"{i:03d}", [f"{i - 1:03d}"] if i > 1 else [], prompt=f"c{i}")
                    for i in range(1, 51)
                ]
            )
            rows = [r for r in node_rows(execution) if r.task_id != "__SYNTHESIS__"]
            gaps = [
                (b.started_at - a.started_at).total_seconds() * 1000
                for a, b in itertools.pairwise(rows)
            ]
            return {
                "wall_ms": round(wall * 1000, 1),
                "median_ms": round(statistics.median(gaps), 2),
                "p95_ms": round(sorted(gaps)[int(len(gaps) * 0.95)], 2),
            }

        runs = repeated(chain50)
        results["chain50_instant"] = {
            "per_node_overhead_median_ms": median_of(runs, "median_ms"),
            "per_node_overhead_p95_ms": median_of(runs, "p95_ms"),
            "wall_ms": median_of(runs, "wall_ms"),
            "runs": runs,
            "target_median_ms": 5,
            "original_total_ms": "121-144",
        }

        synthesis_delay["seconds"] = 0.2
        for i in range(1, 21):
            delays[f"slowchain{i}|"] = 0.2

        def chain20() -> dict:
            _execution, wall = run(
                [
                    task(f"{i:03d}", [f"{i - 1:03d}"] if i > 1 else [], prompt=f"slowchain{i}|")
                    for i in range(1, 21)
                ]
            )
            return {"wall_ms": round(wall * 1000, 1)}

        runs = repeated(chain20)
        results["chain20_200ms"] = {
            "wall_ms": median_of(runs, "wall_ms"),
            "runs": [run["wall_ms"] for run in runs],
            "original_ms": "4290-4380",
        }

        delays["par|"] = 0.2

        def parallel20() -> dict:
            execution, wall = run([task(f"{i:03d}", [], prompt="par|") for i in range(1, 21)])
            rows = node_rows(execution)
            plan_rows = [r for r in rows if r.task_id != "__SYNTHESIS__"]
            synthesis = next(r for r in rows if r.task_id == "__SYNTHESIS__")

            def since_start(moment) -> float:
                return round((moment - execution.started_at).total_seconds() * 1000, 1)

            return {
                "wall_ms": round(wall * 1000, 1),
                "first_node_start_ms": since_start(min(r.started_at for r in plan_rows)),
                "last_node_start_ms": since_start(max(r.started_at for r in plan_rows)),
                "last_node_end_ms": since_start(max(r.completed_at for r in plan_rows)),
                "synthesis_end_ms": since_start(synthesis.completed_at),
            }

        runs = repeated(parallel20)
        results["parallel20_200ms"] = {
            "wall_ms": median_of(runs, "wall_ms"),
            "target_ms": round(1.2 * (200 + 200), 1),
            "original_ms": "435-451",
            "node_phase_ms": median_of(runs, "last_node_end_ms"),
            "node_phase_target_ms": round(1.2 * 200, 1),
            "last_node_start_ms": median_of(runs, "last_node_start_ms"),
            "runs": runs,
        }

        synthesis_delay["seconds"] = 0.0
        delays.update({"asymA|": 0.05, "asymB|": 1.0, "asymC|": 1.0, "asymD|": 0.05})

        def asymmetric() -> dict:
            _execution, wall = run(
                [
                    task("001", [], prompt="asymA|"),
                    task("002", ["001"], prompt="asymB|"),
                    task("003", [], prompt="asymC|"),
                    task("004", ["003"], prompt="asymD|"),
                ]
            )
            return {"wall_ms": round(wall * 1000, 1)}

        runs = repeated(asymmetric)
        results["asymmetric"] = {
            "wall_ms": median_of(runs, "wall_ms"),
            "runs": [run["wall_ms"] for run in runs],
            "ideal_ms": 1050,
            "wave_scheduling_ms": 2000,
        }

        if not args.skip_large:
            tasks = [
                task(
                    f"{i:04d}",
                    [],
                    tool={
                        "name": "writeFile",
                        "params": {"path": f"bench/{i}.txt", "content": "x"},
                    },
                )
                for i in range(1, 1001)
            ]
            execution, wall = run(tasks, timeout=900)
            results["independent1000"] = {
                "wall_ms": round(wall * 1000, 1),
                "nodes_completed": execution.completed_tasks,
                "worker_peak_rss_mb": peak_rss_mb(worker.pid),
                "target_rss_mb": 300,
            }
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        llm.stop()
        for process in services:
            process.terminate()
    print(
        json.dumps(
            {
                "benchmark": "dag_execution",
                "deployment": "tuned: own worker (threads, --concurrency as given), LOG_LEVEL="
                "WARNING, EXECUTION_MAX_PARALLEL_NODES=32, executions launched in-process; not "
                "the default deployment (see bench/run.py)",
                "worker_concurrency": args.concurrency,
                "cpus": os.cpu_count(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
