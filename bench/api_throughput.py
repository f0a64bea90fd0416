"""Throughput of list endpoints served by daphne, printed as JSON.

    uv run python bench/api_throughput.py [--seconds 10] [--connections 8] [--web-processes N]

Seeds 100 goals (each with a schedule and an agent) and 100 DAG executions in a throwaway
SQLite database, starts daphne on loopback as `./scripts/start` does (WEB_PROCESSES processes
on one port), and measures `GET /api/v1/goals` and `GET /api/v1/dag-executions?limit=50` with
keep-alive connections: with wrk when it is installed (`apt-get install wrk`), else with a
Python client in this process (which takes CPU from the server on a small machine).

COMPONENT BENCHMARK, not the default deployment: daphne started directly, LOG_LEVEL=WARNING.
The default deployment is measured by bench/run.py (row goals_list); see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess

from _support import isolated_environment, setup_django, start_daphne
from client import load_python, load_wrk


def seed() -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from agents.models import Agent
    from dags.models import Dag, DagExecution
    from goals.models import Goal, Schedule

    # The goals and executions belong to the user the load runs as: a non-staff user sees only
    # their own rows, and an unowned seed would measure an empty list.
    user = get_user_model().objects.create_user("bench", password="bench-password-123")
    for index in range(100):
        agent = Agent.objects.create(
            name=f"agent-{index}", version="1.0.0", prompt_template="You help. " * 20, active=True
        )
        goal = Goal.objects.create(
            objective=f"Track the news about topic {index} and summarise it every morning.",
            params={"stepBudget": 10, "allowedTools": ["webSearch", "writeFile"]},
            agent=agent,
            owner=user,
        )
        Schedule.objects.create(goal=goal, cron_expr="0 9 * * *", timezone="Europe/Paris")
    dags = [
        Dag.objects.create(dag_title=f"Report {index}", result={"sub_tasks": []}, owner=user)
        for index in range(10)
    ]
    for index in range(100):
        DagExecution.objects.create(
            dag=dags[index % 10],
            original_request=f"Write report {index}",
            owner=user,
            primary_intent="report",
            status="completed",
            total_tasks=3,
            completed_tasks=3,
            final_result="# Report\n" + "text " * 100,
            total_usage={"promptTokens": 100, "completionTokens": 50, "totalTokens": 150},
        )
    return Token.objects.create(user=user).key


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--web-processes", type=int, default=None)
    parser.add_argument("--python-client", action="store_true", help="do not use wrk")
    args = parser.parse_args()

    env, services = isolated_environment()
    servers: list[subprocess.Popen] = []
    measure = load_python if args.python_client or not shutil.which("wrk") else load_wrk
    try:
        setup_django()
        from django.conf import settings

        processes = args.web_processes or settings.WEB_PROCESSES
        token = seed()
        servers, port = start_daphne(env, processes)
        results = []
        for path in ["/api/v1/goals", "/api/v1/dag-executions?limit=50"]:
            measure(port, path, token, seconds=2, connections=args.connections)  # warm-up
            results.append(
                measure(port, path, token, seconds=args.seconds, connections=args.connections)
            )
        print(
            json.dumps(
                {
                    "benchmark": "api_throughput",
                    "deployment": "component: daphne started directly, LOG_LEVEL=WARNING; "
                    "not the default deployment (bench/run.py measures that)",
                    "server": f"daphne ({processes} processes, as ./scripts/start)",
                    "machine": {
                        "cpus": __import__("os").cpu_count(),
                        "python": platform.python_version(),
                    },
                    "target_goals_rps": 300,
                    "results": results,
                },
                indent=2,
            )
        )
    finally:
        for process in [*servers, *services]:
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    main()
