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
- `create_dag`: POST create-dag with an instant scripted planner (includes the planner call).

GETs run under wrk (8 keep-alive clients); POSTs from one kept-alive Python client. With
`--profile DIR`, each GET load is also recorded with `py-spy record --gil` (raw) per web process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import load
from run import THROTTLE_RATE, Bench, Cpu, job, start_fake, two_levels
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--calls", type=int, default=40)
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
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
