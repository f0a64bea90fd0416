"""The benchmark of the system as users run it, against the original server's figures. JSON out.

    uv run --frozen python bench/run.py [--rounds 3]
                                        [--variant default|scale-out|two-workers-sqlite|all]
                                        [--only ROW,ROW] [--out FILE]
                                        [--external-url URL --external-pid PID --fake-url URL]

The default variant starts `python manage.py start_all` exactly as `./scripts/start` does (web:
WEB_PROCESSES daphne processes, one Celery worker at its default concurrency, beat, the embedded
Redis that start_all starts; every setting at its default, LOG_LEVEL INFO included) and drives
it only over HTTP. The environment it sets: a throwaway VAR_DIR / SQLITE_PATH / ARTIFACTS_DIR, a
free port, SECRET_KEY, ASYNC_AGENT_SKIP_DOTENV=1, the OpenAI provider pointed at a scripted local
chat server (bench/fake_llm.py) with a dummy key, and API_THROTTLE_RATE (the one deviation: the
default would answer the goals load with 429s). The scale-out variant runs the same system on
PostgreSQL and adds a second worker process started as start_all starts its own; the tuned
two-workers-sqlite variant does the same on the default deployment's SQLite. With
--external-url, another server of the same API, started by hand with its LLM at --fake-url, is
measured in the same run on the rows that need only the API, and `side_by_side` sets the two
against each other.

docs/benchmarks.md says what each row measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from client import Api, Stream, follow_sse, load, percentile, summary_ms
from system import PYTHON, ROOT, ExternalServer, PgCluster, System, git_commit, wait_for

THROTTLE_RATE = "100000000/min"
# The synthesis call's length in the rows that wait for every execution's end (see
# chain50_instant).
SETTLE_MS = 50
PLANNER = "DecomposerV8"  # the planner the README uses; seeded by start_all
NODE_AGENT = "InferenceAgent"  # seeded by start_all

ROWS = (
    "chain20_200ms",
    "fanout20_200ms",
    "chain50_instant",
    "execute_dag_answer",
    "create_dag_answer",
    "event_to_sse",
    "concurrent100x10",
    "dag1000",
    "goals_list",
)
SCALE_OUT_ROWS = ("fanout20_200ms", "chain50_instant", "concurrent100x10", "dag1000")
# What a server started by hand (--external-url) is measured on: the rows that need nothing but
# the API. event_to_sse stores events through our own services; the two heavy rows are ours only.
EXTERNAL_ROWS = (
    "chain20_200ms",
    "fanout20_200ms",
    "chain50_instant",
    "execute_dag_answer",
    "create_dag_answer",
    "goals_list",
)
# The agents the rows name, created on a server that does not seed them (--external-url): a
# planner whose prompt mentions `sub_tasks` (the scripted LLM server answers such a call with
# the plan asked for), the agent of the nodes, and the title agent create-dag calls.
EXTERNAL_AGENTS = {
    PLANNER: "Break the request into sub_tasks and answer with the plan as JSON. {{tools}}",
    NODE_AGENT: "Carry out the task and answer briefly.",
    "TitleMaster": "Give the request a short title.",
}

# The original server's figures as the issue quotes them (one Node process, measured on another
# machine of this kind), and our targets; --external-url measures it beside ours in one run.
ORIGINAL: dict[str, dict[str, Any]] = {
    "chain20_200ms": {"value": 4.275, "unit": "s", "target": 4.275, "better": "lower"},
    "fanout20_200ms": {
        "value": 0.438,
        "unit": "s",
        "target": 0.44,
        "better": "lower",
        "target_text": "<= 1.1 x (200 ms node + 200 ms synthesis call) = 0.44 s",
    },
    "chain50_instant": {"value": 2.3, "unit": "ms per node", "target": 2.3, "better": "lower"},
    "goals_list": {"value": 520.0, "unit": "requests/s", "target": 520.0, "better": "higher"},
    "goals_list_p50": {"value": 13.5, "unit": "ms", "target": 13.5, "better": "lower"},
    "execute_dag_answer": {
        "value": 3.5,
        "unit": "ms",
        "target": 3.5,
        "better": "lower",
        "original_text": "3-4 ms (ratio and target against the midpoint, 3.5 ms)",
    },
    "create_dag_answer": {"value": 8.6, "unit": "ms", "target": 8.6, "better": "lower"},
    "event_to_sse": {"value": 1.9, "unit": "ms (median)", "target": 1.9, "better": "lower"},
}


def log(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def med(values: list[float], digits: int = 3) -> float | None:
    return round(statistics.median(values), digits) if values else None


def compare(key: str, ours: float | None, **extra: Any) -> dict[str, Any]:
    """A row: ours against the original's figure, and whether the target is met."""
    original = ORIGINAL[key]
    row: dict[str, Any] = {"ours": ours, "unit": original["unit"], "original": original["value"]}
    if "original_text" in original:
        row["original_text"] = original["original_text"]
    if ours is None:
        row.update(ratio=None, target_met=False)
    else:
        row["ratio"] = round(ours / original["value"], 3) if original["value"] else None
        if original["better"] == "lower":
            row["target_met"] = ours <= original["target"]
        else:
            row["target_met"] = ours >= original["target"]
    row["target"] = original.get(
        "target_text",
        f"{'<=' if original['better'] == 'lower' else '>='} {original['target']} "
        f"{original['unit']}",
    )
    row.update(extra)
    return row


def fan_out_timeline(
    arrivals: dict[str, Any], sent: float, stream: Stream, answered: float
) -> dict[str, float]:
    """Where a fan-out's time went, in ms after the request was sent: when the answer was read,
    when the scripted LLM server received the first and the last node's call and the synthesis
    call, and when the SSE client received the nodes' first and last `substep.started` (their
    claims committed) and `substep.completed` (their results recorded) events, the synthesis's
    `substep.started` (it was claimed: the last node's result was recorded) and the completion."""
    nodes = sorted(at for kind, at in arrivals["arrivals"] if kind == "node")
    synthesis = min(at for kind, at in arrivals["arrivals"] if kind == "synthesis")
    started = sorted(at for _seq, kind, at in stream.events if kind == "substep.started")
    completed = sorted(at for _seq, kind, at in stream.events if kind == "substep.completed")
    # The synthesis starts only once every node has completed: the last `started` is its own,
    # and the last `completed` too.
    *node_starts, synthesis_start = started
    node_completions = completed[: len(node_starts)]
    assert stream.terminal_at is not None

    def ms(at: float) -> float:
        return (at - sent) * 1000

    return {
        "answer_read": answered * 1000,
        "first_node_started_event": ms(node_starts[0]),
        "first_node_call": ms(nodes[0]),
        "last_node_started_event": ms(node_starts[-1]),
        "last_node_call": ms(nodes[-1]),
        "first_node_completed_event": ms(node_completions[0]),
        "last_node_completed_event": ms(node_completions[-1]),
        "synthesis_started_event": ms(synthesis_start),
        "synthesis_call": ms(synthesis),
        "completed_event": ms(stream.terminal_at),
    }


# --- plans ---------------------------------------------------------------------------------------
def node(task_id: str, deps: list[str], *, ms: float | str = 0) -> dict[str, Any]:
    marker = f"[bench-node hold={ms}]" if isinstance(ms, str) else f"[bench-node ms={ms:g}]"
    return {
        "id": task_id,
        "description": f"Bench step {task_id}",
        "thought": "bench",
        "action_type": "inference",
        "tool_or_prompt": {"name": NODE_AGENT, "params": {"prompt": f"Say ok. {marker}"}},
        "expected_output": "ok",
        "dependencies": deps or ["none"],
    }


def job(tasks: list[dict[str, Any]], *, synthesis_ms: float = 0) -> dict[str, Any]:
    return {
        "original_request": "bench",
        "intent": {"primary": "bench", "sub_intents": []},
        "entities": [],
        "sub_tasks": tasks,
        "synthesis_plan": f"Summarise the results. [bench-synth ms={synthesis_ms:g}]",
        "validation": {"coverage": "high", "gaps": [], "iteration_triggers": []},
        "clarification_needed": False,
    }


def chain(count: int, ms: float) -> list[dict[str, Any]]:
    width = max(3, len(str(count)))
    ids = [f"{i:0{width}d}" for i in range(1, count + 1)]
    return [node(ids[i], [ids[i - 1]] if i else [], ms=ms) for i in range(count)]


def fanout(count: int, ms: float) -> list[dict[str, Any]]:
    width = max(3, len(str(count)))
    return [node(f"{i:0{width}d}", [], ms=ms) for i in range(1, count + 1)]


def two_levels(count: int, ms: float) -> list[dict[str, Any]]:
    """`count` nodes: the first half independent, each of the rest needing one of them."""
    half = count // 2
    first = [node(f"{i:03d}", [], ms=ms) for i in range(1, half + 1)]
    rest = [node(f"{i + half:03d}", [f"{i:03d}"], ms=ms) for i in range(1, count - half + 1)]
    return first + rest


# --- measuring -----------------------------------------------------------------------------------
class RssSampler:
    """Peak resident memory of the worker processes (and their children, found once at the
    start: a thread-pool worker has none), sampled every 100 ms. Sampling reads only those
    processes' /proc entries, so the harness takes next to no CPU from the system."""

    def __init__(self, processes: list[psutil.Process]) -> None:
        self.processes: list[psutil.Process] = []
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                self.processes += [process, *process.children(recursive=True)]
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for process in self.processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += process.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(0.1)

    def __enter__(self) -> RssSampler:
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def high_water_mb(processes: list[psutil.Process]) -> float | None:
    """VmHWM (peak RSS since the process started) summed over the worker processes."""
    total = 0
    for process in processes:
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            return None
    return round(total / 2**20, 1)


class Cpu:
    """CPU seconds (user + system) used by each role's processes over a block of work: a
    figure that survives a busy machine better than wall-clock time."""

    def __init__(self, system: System | ExternalServer) -> None:
        self.system = system
        self.before = self._now()
        self.seconds: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        # The harness itself (its clients and load generator, wrk excluded): if it nears the
        # wall time of a row, the client, not the system, was the limit.
        totals: dict[str, float] = {"harness": time.process_time()}
        for role, processes in self.system.children().items():
            for process in processes:
                try:
                    times = process.cpu_times()
                    totals[role] = totals.get(role, 0.0) + times.user + times.system
                except psutil.NoSuchProcess:
                    pass
        return totals

    def __enter__(self) -> Cpu:
        self.before = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        after = self._now()
        self.seconds = {
            role: round(after[role] - self.before.get(role, 0.0), 3) for role in sorted(after)
        }


async def http_post(port: int, token: str, path: str, body: Any) -> tuple[int, Any]:
    """One POST on its own connection (HTTP/1.0: the server closes after the answer)."""
    data = json.dumps(body).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            (
                f"POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data
        )
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, content = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(content) if content else None


class Bench:
    def __init__(
        self, system: System | ExternalServer, fake_url: str, rounds: int, heavy_rounds: int
    ) -> None:
        self.system = system
        self.external = isinstance(system, ExternalServer)
        self.fake_url = fake_url
        self.rounds = rounds
        self.heavy_rounds = heavy_rounds
        self.api = Api(system.port, system.token)
        self.dags: dict[str, str] = {}

    # --- helpers -------------------------------------------------------------------------------
    def fake(self, path: str, body: Any = None) -> Any:
        import urllib.request

        request = urllib.request.Request(
            self.fake_url + path,
            data=json.dumps(body).encode() if body is not None else None,
            method="POST" if body is not None else "GET",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            return json.loads(response.read())

    def workers(self) -> list[psutil.Process]:
        return self.system.children()["worker"]

    def work_cpu(self, cpu: Cpu) -> float:
        """CPU seconds of the processes that run nodes: our workers, or a server started by
        hand as a whole (it serves requests and runs nodes in one process)."""
        return cpu.seconds.get("server" if self.external else "worker", 0.0)

    def web_cpu(self, cpu: Cpu) -> float:
        return cpu.seconds.get("server" if self.external else "web", 0.0)

    def prepare_external(self) -> None:
        """The agents the rows use, on a server that does not seed them: created and activated
        through the API, unless an active one of the name is there."""
        for name, template in EXTERNAL_AGENTS.items():
            found = self.api.json("GET", f"/api/v1/agents?name={name}")
            if any(agent.get("name") == name and agent.get("active") for agent in found):
                continue
            agent = self.api.json(
                "POST",
                "/api/v1/agents",
                {
                    "name": name,
                    "version": "1.0.0",
                    "promptTemplate": template,
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                },
                expect=(200, 201),
            )
            self.api.json("POST", f"/api/v1/agents/{agent['id']}/activate", {})

    def create_dag(self, key: str, plan: dict[str, Any]) -> tuple[str, float]:
        """POST create-dag with the planner scripted to answer `plan`; (dag id, answer time)."""
        self.fake(f"/bench/plans/{key}", plan)
        status, content, seconds = self.api.call(
            "POST",
            "/api/v1/create-dag",
            {"goal-text": f"Bench plan {key} [bench-plan {key}]", "agentName": PLANNER},
        )
        body = json.loads(content)
        if status != 200 or not body.get("dagId"):
            raise RuntimeError(f"create-dag {key} -> {status}: {content[:800]!r}")
        return body["dagId"], seconds

    def dag(self, key: str, tasks: list[dict[str, Any]], synthesis_ms: float = 0) -> str:
        """A stored DAG with this plan: planned through create-dag when the plan fits a planner
        reply (100,000 characters), else planned small and its plan replaced by PATCH."""
        if key in self.dags:
            return self.dags[key]
        plan = job(tasks, synthesis_ms=synthesis_ms)
        if len(json.dumps(plan)) < 90_000:
            dag_id, _ = self.create_dag(key, plan)
        else:
            dag_id, _ = self.create_dag(key + "-seed", job(tasks[:1], synthesis_ms=synthesis_ms))
            self.api.json("PATCH", f"/api/v1/dags/{dag_id}", {"result": plan})
        self.dags[key] = dag_id
        return dag_id

    def execute(self, dag_id: str) -> tuple[str, float, float]:
        """POST execute-dag: (execution id, monotonic time it was sent, answer seconds)."""
        sent = time.monotonic()
        status, content, seconds = self.api.call("POST", "/api/v1/execute-dag", {"dagId": dag_id})
        if status != 202:
            raise RuntimeError(f"execute-dag -> {status}: {content[:500]!r}")
        return json.loads(content)["executionId"], sent, seconds

    def wait_terminal(self, execution_id: str, timeout: float = 180.0) -> Stream:
        stream = Stream()
        asyncio.run(
            asyncio.wait_for(
                follow_sse(self.system.port, self.system.token, execution_id, stream),
                timeout,
            )
        )
        if stream.terminal != "execution.completed":
            ended = stream.terminal or stream.error or "without a terminal event"
            raise RuntimeError(f"execution {execution_id} ended {ended}")
        return stream

    def run_dag(self, dag_id: str, timeout: float = 180.0) -> float:
        """Seconds from sending execute-dag to the client reading execution.completed."""
        execution_id, sent, _ = self.execute(dag_id)
        stream = self.wait_terminal(execution_id, timeout)
        assert stream.terminal_at is not None
        return stream.terminal_at - sent

    def warm_up(self) -> None:
        """A worker that has been running: its pool threads and their connections exist."""
        self.run_dag(self.dag("warm-fanout", fanout(20, 0)))
        self.run_dag(self.dag("warm-chain", chain(3, 0)))

    # --- rows ----------------------------------------------------------------------------------
    def chain20_200ms(self) -> dict[str, Any]:
        dag_id = self.dag("chain20", chain(20, 200), synthesis_ms=200)
        with Cpu(self.system) as cpu:
            walls = [self.run_dag(dag_id) for _ in range(self.rounds)]
        return compare(
            "chain20_200ms",
            med(walls),
            rounds_s=[round(w, 3) for w in walls],
            measures="POST execute-dag sent -> execution.completed read over SSE; 20 inference "
            "nodes in a chain and the synthesis call, each LLM call 200 ms",
            cpu_seconds=cpu.seconds,
        )

    def fanout20_200ms(self) -> dict[str, Any]:
        dag_id = self.dag("fanout20", fanout(20, 200), synthesis_ms=200)
        walls: list[float] = []
        timelines: list[dict[str, float]] = []
        with Cpu(self.system) as cpu:
            for _ in range(self.rounds):
                self.fake("/bench/arrivals")
                execution_id, sent, answered = self.execute(dag_id)
                stream = self.wait_terminal(execution_id)
                assert stream.terminal_at is not None
                walls.append(stream.terminal_at - sent)
                if not self.external:  # its events carry no numbers and are not replayed
                    timelines.append(
                        fan_out_timeline(self.fake("/bench/arrivals"), sent, stream, answered)
                    )
        timeline = {
            key: round(statistics.median(t[key] for t in timelines), 1)
            for key in (timelines[0] if timelines else ())
        }
        return compare(
            "fanout20_200ms",
            med(walls),
            rounds_s=[round(w, 3) for w in walls],
            measures="POST execute-dag sent -> execution.completed read over SSE; 20 independent "
            "inference nodes, then the synthesis call, each LLM call 200 ms",
            cpu_seconds=cpu.seconds,
            timeline_ms=timeline or None,
            timeline_is="medians, ms after POST execute-dag was sent: the answer read; the first "
            "and the last node's call and the synthesis call as the scripted LLM server received "
            "them; the nodes' first and last substep.started (claim committed) and "
            "substep.completed (result recorded) events, the synthesis's substep.started and "
            "execution.completed as the SSE client received them (see fan_out_timeline)",
        )

    def chain50_instant(self) -> dict[str, Any]:
        # The synthesis takes a moment in both: a server that does not replay events must not
        # finish the 1-node chain before the client is listening. It cancels out.
        one = self.dag("chain1", chain(1, 0), synthesis_ms=SETTLE_MS)
        fifty = self.dag("chain50", chain(50, 0), synthesis_ms=SETTLE_MS)
        per_node, totals, singles = [], [], []
        with Cpu(self.system) as cpu:
            for _ in range(self.rounds):
                t1 = self.run_dag(one)
                t50 = self.run_dag(fifty)
                singles.append(t1)
                totals.append(t50)
                per_node.append((t50 - t1) / 49 * 1000)
        worker_cpu = self.work_cpu(cpu)
        return compare(
            "chain50_instant",
            med(per_node),
            definition="per-node overhead = (T50 - T1) / 49, where Tn is the time from sending "
            "POST execute-dag to reading execution.completed over SSE for an n-node chain of "
            f"inference nodes with instant LLM replies and a {SETTLE_MS} ms synthesis call "
            "(included in both, so launch, synthesis and delivery cancel out)",
            chain50_total_ms=med([t * 1000 for t in totals], 1),
            chain1_total_ms=med([t * 1000 for t in singles], 1),
            rounds_ms_per_node=[round(v, 3) for v in per_node],
            # 50 nodes + synthesis, and 1 node + synthesis, per round
            worker_cpu_ms_per_node=round(worker_cpu * 1000 / (53 * len(per_node)), 3),
            cpu_seconds=cpu.seconds,
        )

    def execute_dag_answer(self, samples: int = 10) -> dict[str, Any]:
        dag_id = self.dag("answer3", two_levels(3, 0), synthesis_ms=SETTLE_MS)
        times = []
        for _ in range(self.rounds * samples):
            execution_id, _sent, seconds = self.execute(dag_id)
            times.append(seconds * 1000)
            self.wait_terminal(execution_id)  # a quiet system for the next sample
        return compare(
            "execute_dag_answer",
            med(times),
            measures="POST execute-dag (3-node DAG) on a kept-alive connection: request sent -> "
            "202 answer read; each sample waits for the execution to complete first",
            samples=len(times),
            p95_ms=round(percentile(times, 0.95), 3),
        )

    def create_dag_answer(self, samples: int = 10) -> dict[str, Any]:
        plan = job(two_levels(3, 0))
        times = []
        for index in range(self.rounds * samples):
            _dag_id, seconds = self.create_dag(f"create{index}", plan)
            times.append(seconds * 1000)
        return compare(
            "create_dag_answer",
            med(times),
            measures=f"POST create-dag (agent {PLANNER}, planner and TitleMaster replies instant, "
            "3-task plan) on a kept-alive connection: request sent -> 200 answer read",
            samples=len(times),
            p95_ms=round(percentile(times, 0.95), 3),
        )

    def event_to_sse(self, clients: int = 200, events: int = 30) -> dict[str, Any]:
        with Cpu(self.system) as cpu:
            results = [
                asyncio.run(self._event_round(round_number, clients, events))
                for round_number in range(self.rounds)
            ]
        medians = [r["median_ms"] for r in results]
        lost = sum(r["lost"] for r in results)
        row = compare(
            "event_to_sse",
            med(medians),
            measures=f"{clients} SSE clients on one running execution; a helper process of the "
            "bench (bench/emitter.py, the worker's environment) stores tool.progress events "
            "through dags.events.emit_execution_event, one at a time; latency = commit done -> "
            "the frame's bytes in the client's socket (the kernel's receive stamp, as 200 "
            "separate clients would each see it: the harness reads the 200 sockets one after "
            "another, and read_by_harness_median_ms says when it got to them); every delivery "
            "counted. one_client_alone: the same with one client connected, before the others",
            clients=clients,
            events_per_round=events,
            lost=lost,
            duplicated=sum(r["duplicated"] for r in results),
            out_of_order=sum(r["out_of_order"] for r in results),
            p95_ms=med([r["p95_ms"] for r in results]),
            read_by_harness_median_ms=med([r["read_by_harness"].get("median_ms") for r in results]),
            web_cpu_us_per_delivery=med([r["cpu_us_per_delivery"].get("web") for r in results], 1),
            harness_cpu_us_per_delivery=med(
                [r["cpu_us_per_delivery"].get("harness") for r in results], 1
            ),
            first_client_median_ms=med([r["first_client_median_ms"] for r in results]),
            last_client_median_ms=med([r["last_client_median_ms"] for r in results]),
            one_client_alone_median_ms=med(
                [r["one_client_alone"].get("median_ms") for r in results if r["one_client_alone"]]
            ),
            cpu_seconds=cpu.seconds,
            rounds=results,
        )
        row["target_met"] = bool(row["target_met"]) and lost == 0
        return row

    async def _event_round(
        self, number: int, clients: int, events: int, alone: int = 10
    ) -> dict[str, Any]:
        """First client 0 alone gets `alone` events (the latency of one client); then the other
        clients connect and `events` more are sent to all of them."""
        hold = f"sse-hold-{os.getpid()}-{number}"
        dag_id = self.dag(f"sse{number}", [node("001", [], ms=hold)])
        execution_id, _sent, _ = await asyncio.to_thread(self.execute, dag_id)
        arrivals: dict[int, dict[int, float]] = {c: {} for c in range(clients)}
        reads: dict[int, dict[int, float]] = {c: {} for c in range(clients)}
        orders: dict[int, list[int]] = {c: [] for c in range(clients)}
        waiting: dict[int, tuple[int, asyncio.Event]] = {}  # seq -> (clients needed, done)
        counts: dict[int, int] = {}
        node_started = asyncio.Event()
        connected: set[int] = set()
        changed = asyncio.Event()

        def on_frame(client: int):
            def record(
                stream: Stream, seq: int | None, kind: str, arrived: float, read: float
            ) -> None:
                connected.add(client)  # the first frame (the snapshot) says it is in
                changed.set()
                if seq is None:
                    return
                orders[client].append(seq)
                arrivals[client].setdefault(seq, arrived)
                reads[client].setdefault(seq, read)
                if kind == "substep.started":
                    node_started.set()
                counts[seq] = counts.get(seq, 0) + 1
                if seq in waiting and counts[seq] >= waiting[seq][0]:
                    waiting[seq][1].set()

            return record

        async def all_in(count: int) -> None:
            while len(connected) < count:
                changed.clear()
                await changed.wait()

        streams = [Stream() for _ in range(clients)]
        readers: list[asyncio.Task] = []

        def connect(members: range) -> None:
            readers.extend(
                asyncio.create_task(
                    follow_sse(
                        self.system.port,
                        self.system.token,
                        execution_id,
                        streams[c],
                        on_frame=on_frame(c),
                    )
                )
                for c in members
            )

        emitter = await asyncio.create_subprocess_exec(
            PYTHON,
            str(ROOT / "bench" / "emitter.py"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=(self.system.folder / "emitter.log").open("ab"),
            cwd=str(ROOT),
            env=self.workers()[0].environ(),
        )
        committed: dict[int, float] = {}

        async def emit(index: int, need: int) -> int:
            assert emitter.stdout is not None and emitter.stdin is not None
            line = json.dumps({"execution_id": execution_id, "number": index}) + "\n"
            emitter.stdin.write(line.encode())
            await emitter.stdin.drain()
            answer = json.loads(await asyncio.wait_for(emitter.stdout.readline(), 30))
            seq = answer["seq"]
            committed[seq] = answer["committed"]
            done = asyncio.Event()
            waiting[seq] = (need, done)
            if counts.get(seq, 0) >= need:
                done.set()
            with contextlib.suppress(TimeoutError):  # counted as lost below
                await asyncio.wait_for(done.wait(), 10)
            return seq

        try:
            assert emitter.stdout is not None
            await asyncio.wait_for(emitter.stdout.readline(), 120)
            connect(range(1))
            await asyncio.wait_for(all_in(1), 60)
            await asyncio.wait_for(node_started.wait(), 60)  # the worker waits on the LLM now
            solo = [await emit(index, 1) for index in range(alone)]
            connect(range(1, clients))
            await asyncio.wait_for(all_in(clients), 120)
            with Cpu(self.system) as live:
                shared = [await emit(alone + index, clients) for index in range(events)]
            await asyncio.to_thread(self.fake, f"/bench/release/{hold}", {})
            await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), 120)
        finally:
            if emitter.returncode is None:
                emitter.kill()
                await emitter.wait()
            for reader in readers:
                reader.cancel()
        everyone = range(clients)

        def reached(seq: int) -> list[float]:
            return [arrivals[c][seq] - committed[seq] for c in everyone if seq in arrivals[c]]

        deliveries = [latency for seq in shared for latency in reached(seq)]
        read_after = [
            reads[c][seq] - committed[seq] for seq in shared for c in everyone if seq in reads[c]
        ]
        first = [min(reached(seq)) for seq in shared if reached(seq)]
        last = [max(reached(seq)) for seq in shared if reached(seq)]
        single = [arrivals[0][seq] - committed[seq] for seq in solo if seq in arrivals[0]]
        # Late joiners get the first events from the store on connecting: every client must
        # still have every event once, in order.
        lost = sum(1 for c in everyone for seq in committed if seq not in arrivals[c])
        duplicated = sum(len(orders[c]) - len(set(orders[c])) for c in everyone)
        out_of_order = sum(1 for c in everyone if orders[c] != sorted(set(orders[c])))
        gaps = sum(
            1
            for c in everyone
            if orders[c] and set(range(min(orders[c]), max(orders[c]) + 1)) - set(orders[c])
        )
        summary = summary_ms(deliveries)
        return {
            "median_ms": summary.get("median_ms"),
            "p95_ms": summary.get("p95_ms"),
            "max_ms": summary.get("max_ms"),
            "read_by_harness": summary_ms(read_after),
            # CPU per delivery while only the live events flow (no stream opening in it).
            "cpu_us_per_delivery": {
                role: round(seconds * 1e6 / max(1, len(deliveries)), 1)
                for role, seconds in live.seconds.items()
                if role in ("web", "harness")
            },
            "first_client_median_ms": summary_ms(first).get("median_ms"),
            "last_client_median_ms": summary_ms(last).get("median_ms"),
            "one_client_alone": summary_ms(single),
            "deliveries": len(deliveries),
            "lost": lost,
            "duplicated": duplicated,
            "out_of_order": out_of_order,
            "clients_with_gaps": gaps,
            "clients_saw_completion": sum(
                1 for stream in streams if stream.terminal == "execution.completed"
            ),
        }

    def concurrent100x10(self, executions: int = 100, llm_ms: float = 50) -> dict[str, Any]:
        dag_id = self.dag(f"conc10-{llm_ms:g}", two_levels(10, llm_ms), synthesis_ms=llm_ms)
        rounds = []
        for _ in range(self.heavy_rounds):
            with Cpu(self.system) as cpu, RssSampler(self.workers()) as rss:
                wall, answers = asyncio.run(self._concurrent(dag_id, executions))
            rounds.append(
                {
                    "completion_s": round(wall, 3),
                    "nodes_per_s": round(executions * 11 / wall, 1),
                    "worker_peak_rss_mb": rss.peak_mb,
                    "execute_answer_ms": summary_ms(answers),
                    "cpu_seconds": cpu.seconds,
                }
            )
        return {
            "ours": med([r["completion_s"] for r in rounds]),
            "unit": "s",
            "original": None,
            "ratio": None,
            "target_met": None,
            "target": "reported (no original figure)",
            "measures": f"{executions} POST execute-dag sent at once (one connection each) for a "
            f"10-node DAG (5 independent inference nodes, 5 each needing one of them), every LLM "
            f"call {llm_ms:g} ms (synthesis included); first request sent -> last "
            "execution.completed read over SSE",
            "nodes_per_s": med([r["nodes_per_s"] for r in rounds], 1),
            "worker_peak_rss_mb": max(r["worker_peak_rss_mb"] for r in rounds),
            "worker_rss_high_water_mb": high_water_mb(self.workers()),
            "rounds": rounds,
        }

    async def _concurrent(self, dag_id: str, executions: int) -> tuple[float, list[float]]:
        port, token = self.system.port, self.system.token
        answers: list[float] = []

        async def one() -> float:
            sent = time.monotonic()
            status, body = await http_post(port, token, "/api/v1/execute-dag", {"dagId": dag_id})
            answers.append(time.monotonic() - sent)
            if status != 202:
                raise RuntimeError(f"execute-dag -> {status}: {body}")
            stream = await follow_sse(port, token, body["executionId"], Stream())
            if stream.terminal != "execution.completed":
                raise RuntimeError(f"execution ended {stream.terminal or stream.error}")
            assert stream.terminal_at is not None
            return stream.terminal_at

        started = time.monotonic()
        ends = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(executions))), 900)
        return max(ends) - started, answers

    def dag1000(self, count: int = 1000) -> dict[str, Any]:
        dag_id = self.dag(f"fanout{count}", fanout(count, 0))
        rounds = []
        for _ in range(self.heavy_rounds):
            with Cpu(self.system) as cpu, RssSampler(self.workers()) as rss:
                wall = self.run_dag(dag_id, timeout=1200)
            rounds.append(
                {
                    "completion_s": round(wall, 3),
                    "worker_peak_rss_mb": rss.peak_mb,
                    "cpu_seconds": cpu.seconds,
                }
            )
        return {
            "ours": med([r["completion_s"] for r in rounds]),
            "unit": "s",
            "original": None,
            "ratio": None,
            "target_met": None,
            "target": "reported (no original figure)",
            "measures": f"one DAG of {count} independent inference nodes, instant LLM replies, "
            "then the synthesis: POST execute-dag sent -> execution.completed read over SSE. "
            "(Planned small through create-dag, its plan then replaced by PATCH /dags/<id>: a "
            "planner reply is capped at 100,000 characters.)",
            "nodes_per_s": round(count / med([r["completion_s"] for r in rounds]), 1),
            "worker_peak_rss_mb": max(r["worker_peak_rss_mb"] for r in rounds),
            "worker_rss_high_water_mb": high_water_mb(self.workers()),
            "rounds": rounds,
        }

    # --- goals ---------------------------------------------------------------------------------
    def _parallel(self, calls: list[tuple[str, str, Any]], connections: int = 8) -> list[Any]:
        """Many API calls over `connections` kept-alive connections."""
        local = threading.local()

        def one(call: tuple[str, str, Any]) -> Any:
            if not hasattr(local, "api"):
                local.api = Api(self.system.port, self.system.token)
            method, path, body = call
            return local.api.json(method, path, body, expect=(200, 201))

        with ThreadPoolExecutor(connections) as pool:
            return list(pool.map(one, calls))

    def seed_goals(self, start: int, stop: int, agents: int = 100) -> None:
        """Goals through the API, each with an agent of its own (cycling over `agents`) and a
        daily schedule."""
        if start == 0:
            created = self._parallel(
                [
                    (
                        "POST",
                        "/api/v1/agents",
                        {
                            "name": f"bench-agent-{i}",
                            "version": "1.0.0",
                            "promptTemplate": "You help. " * 20,
                        },
                    )
                    for i in range(agents)
                ]
            )
            self._parallel(
                [("POST", f"/api/v1/agents/{agent['id']}/activate", {}) for agent in created]
            )
        self._parallel(
            [
                (
                    "POST",
                    "/api/v1/goals",
                    {
                        "objective": f"Track the news about topic {i} and summarise it every "
                        "morning.",
                        "params": {"stepBudget": 10, "allowedTools": ["webSearch", "writeFile"]},
                        "agentName": f"bench-agent-{i % agents}",
                        "schedule": {"cronExpr": "0 9 * * *", "timezone": "Europe/Paris"},
                    },
                )
                for i in range(start, stop)
            ]
        )

    def goals_in(self, path: str) -> tuple[int, int]:
        """(goals in the answer, its bytes), whether the answer is a list or an envelope."""
        status, content, _ = self.api.call("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} -> {status}: {content[:300]!r}")
        body = json.loads(content)
        if isinstance(body, dict):
            lists = [v for v in body.values() if isinstance(v, list)]
            body = lists[0] if lists else []
        return len(body), len(content)

    def goals_list(self, seconds: float, connections: int = 8) -> dict[str, Any]:
        self.seed_goals(0, 100)
        path = "/api/v1/goals"
        count, size = self.goals_in(path)
        note = "default page holds all 100 goals"
        if count < 100:
            path = "/api/v1/goals?limit=100"
            count, size = self.goals_in(path)
            note = "the default page is smaller than 100, so limit=100 is passed"
        load(self.system.port, path, self.system.token, seconds=2, connections=connections)
        rounds = []
        for _ in range(self.rounds):
            with Cpu(self.system) as cpu:
                result = load(
                    self.system.port,
                    path,
                    self.system.token,
                    seconds=seconds,
                    connections=connections,
                )
            result["web_cpu_ms_per_request"] = (
                round(self.web_cpu(cpu) * 1000 / result["requests"], 3)
                if result["requests"]
                else None
            )
            rounds.append(result)
        rps = med([r["requests_per_second"] for r in rounds], 1)
        p50 = med([r["p50_ms"] for r in rounds], 2)
        row = compare(
            "goals_list",
            rps,
            path=path,
            note=note,
            goals_per_response=count,
            response_bytes=size,
            p50=compare("goals_list_p50", p50),
            p99_ms=med([r["p99_ms"] for r in rounds], 2),
            web_cpu_ms_per_request=med(
                [r["web_cpu_ms_per_request"] for r in rounds if r["web_cpu_ms_per_request"]]
            ),
            errors=sum(r["errors"] for r in rounds),
            measures=f"GET {path} with {connections} keep-alive clients for {seconds:g} s per "
            "round, 100 goals each with its own agent and a schedule, served by the default web "
            "processes",
            rounds=rounds,
        )
        row["target_met"] = bool(row["target_met"]) and bool(row["p50"]["target_met"])
        if self.external:
            return row
        self.seed_goals(100, 2000)
        count2000, size2000 = self.goals_in("/api/v1/goals")
        big = load(
            self.system.port,
            "/api/v1/goals",
            self.system.token,
            seconds=max(2.0, seconds / 2),
            connections=connections,
        )
        row["with_2000_goals"] = {
            "path": "/api/v1/goals",
            "goals_per_response": count2000,
            "response_bytes": size2000,
            "paginated": count2000 < 2000,
            "p50_ms": big["p50_ms"],
            "p99_ms": big["p99_ms"],
            "requests_per_second": big["requests_per_second"],
            "errors": big["errors"],
            "original_note": "2,000 goals were answered in one 500 KB response before",
        }
        return row


# --- variants ------------------------------------------------------------------------------------
def deployment(system: System, label: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    settings = system.settings()
    default_rate = system.settings(unset=("API_THROTTLE_RATE",))["API_THROTTLE_RATE"]
    return {
        "label": label,
        "command": "python manage.py start_all --port <free port> (as ./scripts/start runs it)",
        "processes": system.describe(),
        "settings": settings,
        "environment_set": {
            k: ("<dummy>" if k in ("SECRET_KEY", "OPENAI_API_KEY") else v)
            for k, v in system.env_set.items()
        },
        "deviations": [
            f"API_THROTTLE_RATE={THROTTLE_RATE} instead of the default "
            f"{default_rate}: the default would answer the GET /goals load of one user with "
            "429s; the throttle "
            "still runs on every request, only its limit is higher"
        ],
        **(extra or {}),
    }


def run_rows(bench: Bench, rows: list[str], seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in rows:
        log(f"row {row}")
        started = time.monotonic()
        try:
            if row == "goals_list":
                out[row] = bench.goals_list(seconds)
            else:
                out[row] = getattr(bench, row)()
        except Exception as error:  # one broken row must not lose the others
            out[row] = {"error": f"{type(error).__name__}: {error}", "target_met": False}
            log(f"row {row} failed: {error!r}")
        out[row]["row_seconds"] = round(time.monotonic() - started, 1)
    return out


def calls_since(bench: Bench, before: dict[str, int]) -> dict[str, int]:
    now = bench.fake("/bench/stats")
    return {kind: count - before.get(kind, 0) for kind, count in now.items()}


def run_default(fake_url: str, args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    log("default deployment: starting start_all (SQLite)")
    system = System(llm_url=fake_url + "/v1", throttle_rate=THROTTLE_RATE)
    stack.callback(system.close)
    system.start()
    bench = Bench(system, fake_url, args.rounds, args.heavy_rounds)
    calls = bench.fake("/bench/stats")
    log("warming up")
    bench.warm_up()
    info = deployment(system, "default: ./scripts/start (manage.py start_all), SQLite")
    info["database"] = "SQLite (a temporary file), as the default deployment"
    rows = [r for r in ROWS if not args.only or r in args.only]
    results = run_rows(bench, rows, args.seconds)
    info["llm_calls"] = calls_since(bench, calls)
    system.close()
    return {"deployment": info, "rows": results}


def run_scale_out(fake_url: str, args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    log("scale-out: starting PostgreSQL")
    cluster = PgCluster(args.pg_bin)
    stack.callback(cluster.close)
    cluster.start()
    system = System(llm_url=fake_url + "/v1", throttle_rate=THROTTLE_RATE, database_url=cluster.url)
    stack.callback(system.close)
    assert cluster.process is not None
    system.other_roles["postgres"] = psutil.Process(cluster.process.pid)
    log("scale-out: starting start_all (PostgreSQL)")
    system.start()
    database = f"PostgreSQL ({cluster.version()}, throwaway cluster, max_connections=300)"
    try:
        return one_then_two_workers(
            system, fake_url, args, "scale-out: PostgreSQL, 2 worker processes", database
        )
    finally:
        cluster.close()


def run_two_workers_sqlite(
    fake_url: str, args: argparse.Namespace, stack: contextlib.ExitStack
) -> dict:
    log("two workers on SQLite: starting start_all (SQLite)")
    system = System(llm_url=fake_url + "/v1", throttle_rate=THROTTLE_RATE)
    stack.callback(system.close)
    system.start()
    return one_then_two_workers(
        system,
        fake_url,
        args,
        "tuned: the default deployment (SQLite) plus a second worker process",
        "SQLite (a temporary file), as the default deployment",
    )


def one_then_two_workers(
    system: System, fake_url: str, args: argparse.Namespace, label: str, database: str
) -> dict:
    """The scale-out rows with the system's one worker, then again with a second worker process
    started as start_all starts its own; how throughput grows from one to two."""
    bench = Bench(system, fake_url, args.rounds, args.heavy_rounds)
    calls = bench.fake("/bench/stats")
    bench.warm_up()
    rows = [r for r in SCALE_OUT_ROWS if not args.only or r in args.only]
    info = deployment(system, label)
    info["database"] = database
    log(f"{label}: 1 worker process")
    one = run_rows(bench, rows, args.seconds)
    log(f"{label}: adding a second worker process")
    worker = system.start_extra_worker("worker2")
    wait_for(
        lambda: (
            "ready" in (system.folder / "worker2.log").read_text(errors="replace")
            or worker.poll() is not None
        ),
        timeout=120,
        what="the second worker",
    )
    if worker.poll() is not None:
        raise RuntimeError(
            "the second worker exited:\n"
            + (system.folder / "worker2.log").read_text(errors="replace")[-3000:]
        )
    info["second_worker"] = {
        "how": "the running worker's command line and environment (read from /proc at run "
        "time) plus `-n worker2@%h`",
        "cmdline": psutil.Process(worker.pid).cmdline(),
    }
    info["processes"] = system.describe()
    bench.warm_up()
    two = run_rows(bench, rows, args.seconds)
    growth = {}
    for row in rows:
        t1, t2 = one.get(row, {}).get("ours"), two.get(row, {}).get("ours")
        if t1 and t2:
            growth[row] = {
                "one_worker": t1,
                "two_workers": t2,
                "unit": one[row].get("unit"),
                "speed_up": round(t1 / t2, 3),
            }
    info["llm_calls"] = calls_since(bench, calls)
    system.close()
    return {
        "deployment": info,
        "rows_1_worker": one,
        "rows_2_workers": two,
        "throughput_growth_1_to_2_workers": growth,
    }


def run_external(fake_url: str, args: argparse.Namespace) -> dict:
    log(f"external server: {args.external_label} at {args.external_url}")
    server = ExternalServer(args.external_url, args.external_pid)
    bench = Bench(server, fake_url, args.rounds, args.heavy_rounds)
    calls = bench.fake("/bench/stats")
    bench.prepare_external()
    log("warming up")
    bench.warm_up()
    rows = [r for r in EXTERNAL_ROWS if not args.only or r in args.only]
    results = run_rows(bench, rows, args.seconds)
    info = {
        "label": args.external_label,
        "url": args.external_url,
        "processes": server.describe(),
        "how": "started by hand before this run, its LLM pointed at --fake-url; the agents the "
        f"rows name ({', '.join(EXTERNAL_AGENTS)}) created through its API if missing",
        "llm_calls": calls_since(bench, calls),
    }
    return {"deployment": info, "rows": results}


# The most each row may take against the other server's figure: the fan-out's goal allows 10 %.
TARGET_RATIO = {"fanout20_200ms": 1.1}


def side_by_side(report: dict[str, Any]) -> dict[str, Any]:
    """Our default deployment against the server started by hand, row by row, from one run on
    one machine: each figure, ours / theirs, and whether ours meets the goal against theirs."""
    ours = report["variants"].get("default", {}).get("rows", {})
    theirs = report["variants"].get("external", {}).get("rows", {})
    out: dict[str, Any] = {}
    for row in EXTERNAL_ROWS:
        mine, other = ours.get(row, {}).get("ours"), theirs.get(row, {}).get("ours")
        if mine is None or other is None:
            continue
        lower = ORIGINAL[row]["better"] == "lower"
        ratio = mine / other
        limit = TARGET_RATIO.get(row, 1.0)
        entry: dict[str, Any] = {
            "ours": mine,
            "theirs": other,
            "unit": ORIGINAL[row]["unit"],
            "ratio": round(ratio, 3),
            "target": f"ours / theirs {'<=' if lower else '>='} {limit:g}",
            "target_met": ratio <= limit if lower else ratio >= limit,
        }
        if row == "goals_list":
            p50_mine = ours[row].get("p50", {}).get("ours")
            p50_other = theirs[row].get("p50", {}).get("ours")
            entry["p50_ms"] = {"ours": p50_mine, "theirs": p50_other}
            if p50_mine is not None and p50_other is not None:
                entry["target_met"] = entry["target_met"] and p50_mine <= p50_other
        out[row] = entry
    return out


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("django", "celery", "channels", "daphne", "psycopg", "openai"):
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def summary(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One line per row and variant: ours, original, ratio, target met."""
    lines = []
    for variant, result in report["variants"].items():
        if variant == "external":  # its figures are in side_by_side
            continue
        for part in ("rows", "rows_1_worker", "rows_2_workers"):
            for row, data in result.get(part, {}).items():
                label = variant if part == "rows" else f"{variant} ({part[5:].replace('_', ' ')})"
                line = {
                    "variant": label,
                    "row": row,
                    "ours": data.get("ours"),
                    "unit": data.get("unit"),
                    "original": data.get("original"),
                    "ratio": data.get("ratio"),
                    "target_met": data.get("target_met"),
                }
                if "error" in data:
                    line["error"] = data["error"]
                if row == "goals_list" and "p50" in data:
                    line["p50_ms"] = data["p50"]["ours"]
                if "worker_peak_rss_mb" in data:
                    line["worker_peak_rss_mb"] = data["worker_peak_rss_mb"]
                if row == "event_to_sse":
                    line["lost"] = data.get("lost")
                lines.append(line)
    return lines


def summary_lines(lines: list[dict[str, Any]]) -> list[str]:
    out = []
    for line in lines:
        extra = {
            k: v
            for k, v in line.items()
            if k not in ("variant", "row", "ours", "unit", "original", "ratio", "target_met")
        }
        out.append(
            f"{line['variant']:<32} {line['row']:<20} ours={line['ours']} {line['unit'] or ''} "
            f"original={line['original']} ratio={line['ratio']} met={line['target_met']} "
            + (json.dumps(extra) if extra else "")
        )
    return out


def start_fake(stack: contextlib.ExitStack) -> str:
    fake = subprocess.Popen(
        [PYTHON, str(ROOT / "bench" / "fake_llm.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        process_group=0,
    )

    def stop() -> None:
        if fake.poll() is None:
            fake.terminate()
            try:
                fake.wait(10)
            except subprocess.TimeoutExpired:
                fake.kill()

    stack.callback(stop)
    assert fake.stdout is not None
    line = fake.stdout.readline().split()
    if not line or line[0] != "ready":
        raise RuntimeError("the scripted LLM server did not start")
    return f"http://127.0.0.1:{line[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per row (median reported)")
    parser.add_argument(
        "--heavy-rounds", type=int, default=1, help="rounds of concurrent100x10 and dag1000"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="GET /goals load per round")
    parser.add_argument(
        "--variant",
        choices=("default", "scale-out", "two-workers-sqlite", "all", "external"),
        default="all",
        help="all: default and scale-out; two-workers-sqlite (tuned) only when asked for; "
        "external: only the server of --external-url",
    )
    parser.add_argument(
        "--external-url",
        help="also measure this server of the same API (http://127.0.0.1:PORT), started by "
        "hand with its LLM at --fake-url, on the rows that need only the API",
    )
    parser.add_argument("--external-pid", type=int, help="its process, for its CPU figures")
    parser.add_argument(
        "--external-label", default="external server", help="what it is, for the report"
    )
    parser.add_argument(
        "--fake-url",
        help="a scripted LLM server already running (bench/fake_llm.py) instead of starting one: "
        "the one the --external-url server was started with",
    )
    parser.add_argument("--only", type=lambda text: text.split(","), default=None)
    parser.add_argument("--out", help="also write the JSON to this file")
    parser.add_argument(
        "--pg-bin", default="/usr/local/bin", help="where initdb and postgres are (scale-out)"
    )
    args = parser.parse_args()
    if (args.external_url is None) != (args.external_pid is None):
        parser.error("--external-url and --external-pid go together")
    if args.external_url and not args.fake_url:
        parser.error("--external-url needs --fake-url, the LLM server it was started with")
    if args.variant == "external" and not args.external_url:
        parser.error("--variant external needs --external-url")

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # Ctrl-C even when the shell started this in the background with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    began = time.monotonic()
    report: dict[str, Any] = {
        "benchmark": "bench/run.py",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_commit(),
        "versions": versions(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            # Which build runs every process (scripts/lib.sh, use_system_python).
            "python_executable": os.path.realpath(sys.executable),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "rounds": args.rounds,
        "heavy_rounds": args.heavy_rounds,
        "variants": {},
    }
    with contextlib.ExitStack() as stack:
        fake_url = args.fake_url.rstrip("/") if args.fake_url else start_fake(stack)
        if args.external_url:
            report["variants"]["external"] = run_external(fake_url, args)
        if args.variant in ("default", "all"):
            report["variants"]["default"] = run_default(fake_url, args, stack)
        if args.variant in ("scale-out", "all"):
            report["variants"]["scale-out"] = run_scale_out(fake_url, args, stack)
        if args.variant == "two-workers-sqlite":
            report["variants"]["two-workers-sqlite"] = run_two_workers_sqlite(fake_url, args, stack)
    report["summary"] = summary(report)
    for line in summary_lines(report["summary"]):
        log(line)
    if args.external_url:
        report["side_by_side"] = {
            "theirs": args.external_label,
            "ours": "default deployment",
            "rows": side_by_side(report),
        }
        for row, entry in report["side_by_side"]["rows"].items():
            log(f"side by side {row:<20} {json.dumps(entry)}")
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["total_seconds"] = round(time.monotonic() - began, 1)
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
