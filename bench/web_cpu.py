"""Web CPU per API answer at the default deployment, printed as JSON.

    uv run --frozen python bench/web_cpu.py [--seconds 4] [--calls 40] [--profile DIR]

Starts the system as bench/run.py's default variant does (`manage.py start_all`, every setting
at its default but API_THROTTLE_RATE), then reports, per kind of request, the CPU seconds the
web (daphne) processes used divided by the requests answered (psutil `cpu_times()`, user +
system): a figure that holds up on a busy machine, where wall-clock times do not.

- `index`: GET /api/v1/ (no authentication: the floor of the web stack);
- `auth_404`: GET /api/v1/goals/<missing> with a token (authentication, throttle, one read);
- `goals_list`: GET /api/v1/goals (100 goals; after the first, answered from the page cache);
- `execute_dag`: POST execute-dag of a 3-node DAG, one at a time (includes the node sends the
  web process makes after the answer);
- `create_dag`: POST create-dag with an instant scripted planner (includes the planner call);
- `sse_open`: `--clients` SSE clients open the event stream of one running execution at once,
  each until it has read the snapshot, then hang up (includes the server's cleanup after them):
  web CPU per stream opened.

GETs run under wrk (8 keep-alive clients); POSTs from one kept-alive Python client. With
`--profile DIR`, each GET load is also recorded with `py-spy record --gil` (raw) per web process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import load, stream_request
from run import THROTTLE_RATE, Bench, Cpu, job, node, start_fake, two_levels
from system import System


def per_request(cpu: Cpu, requests: int) -> float | None:
    return round(cpu.seconds.get("web", 0.0) * 1000 / requests, 3) if requests else None


def spy(bench: Bench, profile: Path | None, name: str, seconds: float) -> list:
    """py-spy recording each web process for `seconds` (raw format, GIL holders only)."""
    spies = []
    if profile is not None and shutil.which("py-spy"):
        for process in bench.system.children()["web"]:
            out = profile / f"{name}-{process.pid}.txt"
            spies.append(
                subprocess.Popen(
                    [
                        *("py-spy", "record", "--gil", "-r", "200", "-f", "raw", "-o", str(out)),
                        *("-d", str(int(seconds)), "-p", str(process.pid)),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    return spies


def get_row(bench: Bench, path: str, seconds: float, profile: Path | None, name: str) -> dict:
    load(bench.system.port, path, bench.system.token, seconds=1, connections=8)  # warm
    spies = spy(bench, profile, name, seconds)
    with Cpu(bench.system) as cpu:
        result = load(bench.system.port, path, bench.system.token, seconds=seconds, connections=8)
    for one in spies:
        one.wait(60)
    return {
        "path": path,
        "requests": result["requests"],
        "non_2xx": result["errors"],
        "requests_per_second": result["requests_per_second"],
        "p50_ms": result["p50_ms"],
        "web_cpu_ms_per_request": per_request(cpu, result["requests"]),
        "cpu_seconds": cpu.seconds,
    }


def post_row(bench: Bench, calls: int, call: Any, profile: Path | None, name: str) -> dict:
    call(-1)  # warm
    times = []
    spies = spy(bench, profile, name, 8)
    with Cpu(bench.system) as cpu:
        for index in range(calls):
            times.append(call(index) * 1000)
        time.sleep(0.5)  # the sends after the answers
    for one in spies:
        one.wait(60)
    return {
        "calls": calls,
        "answer_ms_median": round(statistics.median(times), 3),
        "web_cpu_ms_per_request": per_request(cpu, calls),
        "cpu_seconds": cpu.seconds,
    }


async def open_stream(port: int, token: str, execution_id: str) -> bool:
    """Open the execution's event stream, read up to the snapshot, hang up; True if it came."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(stream_request(execution_id, token))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            return False
        return b"event: " in await reader.readuntil(b"\n\n")
    finally:
        writer.close()


async def open_streams(port: int, token: str, execution_id: str, clients: int) -> int:
    opened = await asyncio.gather(
        *(open_stream(port, token, execution_id) for _ in range(clients)), return_exceptions=True
    )
    return sum(1 for one in opened if one is True)


def sse_row(bench: Bench, clients: int, profile: Path | None, name: str) -> dict:
    """`clients` streams of one running execution opened at once, each hung up after the
    snapshot; the web CPU includes the servers' cleanup after them (a second's pause)."""
    hold = f"web-cpu-sse-{os.getpid()}"
    execution_id = bench.execute(bench.dag("sse-open", [node("001", [], ms=hold)]))[0]
    port, token = bench.system.port, bench.system.token
    asyncio.run(open_streams(port, token, execution_id, 8))  # warm
    spies = spy(bench, profile, name, 8)
    with Cpu(bench.system) as cpu:
        opened = asyncio.run(open_streams(port, token, execution_id, clients))
        time.sleep(1.0)  # the servers leave the subject's group after each hang-up
    for one in spies:
        one.wait(60)
    bench.fake(f"/bench/release/{hold}", {})
    return {
        "clients": clients,
        "opened": opened,
        "web_cpu_ms_per_stream": per_request(cpu, clients),
        "cpu_seconds": cpu.seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        fake_url = start_fake(stack)
        system = System(llm_url=fake_url + "/v1", throttle_rate=THROTTLE_RATE)
        stack.callback(system.close)
        system.start()
        bench = Bench(system, fake_url, rounds=1, heavy_rounds=1)
        dag_id = bench.dag("answer3", two_levels(3, 0))
        bench.seed_goals(0, 100)

        def wanted(name: str) -> bool:
            return not only or name in only

        for name, path in (
            ("index", "/api/v1/"),
            ("auth_404", "/api/v1/goals/missing"),
            ("goals_list", "/api/v1/goals"),
        ):
            if wanted(name):
                out[name] = get_row(bench, path, args.seconds, args.profile, name)
                print(name, out[name]["web_cpu_ms_per_request"], file=sys.stderr)

        def execute(_index: int) -> float:
            return bench.execute(dag_id)[2]

        plan = job(two_levels(3, 0))

        def create(index: int) -> float:
            return bench.create_dag(f"cpu{index}", plan)[1]

        if wanted("execute_dag"):
            out["execute_dag"] = post_row(bench, args.calls, execute, args.profile, "execute_dag")
            print("execute_dag", out["execute_dag"]["web_cpu_ms_per_request"], file=sys.stderr)
        if wanted("create_dag"):
            out["create_dag"] = post_row(bench, args.calls, create, args.profile, "create_dag")
            print("create_dag", out["create_dag"]["web_cpu_ms_per_request"], file=sys.stderr)
        if wanted("sse_open"):
            out["sse_open"] = sse_row(bench, args.clients, args.profile, "sse_open")
            print("sse_open", out["sse_open"]["web_cpu_ms_per_stream"], file=sys.stderr)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
