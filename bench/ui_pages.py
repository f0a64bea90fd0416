"""Server time of the browser UI's pages, and how fast a finished node shows in an open page.

    uv run python bench/ui_pages.py [--requests 40] [--executions 10000] [--nodes 1000]
        [--artifacts 10000] [--agents 10000]

Seeds a throwaway SQLite database with 10,000 executions over 100 DAGs and one execution of a
1,000-node DAG (half done, with its events), starts daphne as `./scripts/start` does, logs in
(a session cookie, as a browser has), and times sequential keep-alive GETs of the dashboard, the
DAG list, the execution list, the 1,000-node execution page, the goal and run lists over
10,000 goals and 10,000 runs, the page of a 100-step run, the artifacts browser over 10,000
files (half of them recorded as written by an execution, in 100 folders), one artifact's page,
and the costs page and its CSV over the 10,000 executions: round trips over loopback, so
server time plus a fraction of a millisecond. The agents page is timed over 10,000 agent
versions (1,000 names of 10 versions, 2,000 more goals using some of them), and the tools
page with all the goals.

Then Chromium (Debian's, through Playwright) opens the page of a running 40-node chain while
this process finishes its nodes one at a time through the executor's own service
(`sub_step_complete`); the page records when each step turns "completed". Reported: the time
from the start of the node's completing transaction to the change in the page.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from _support import isolated_environment, setup_django, start_daphne

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PASSWORD = "bench-password-123"
RECORDER = """
(() => {
  window.__completedAt = {};
  new MutationObserver((mutations) => {
    const at = performance.timeOrigin + performance.now();
    for (const m of mutations) {
      const el = m.target;
      if (el.dataset && el.dataset.step && el.dataset.status === 'completed'
          && !(el.dataset.step in window.__completedAt)) {
        window.__completedAt[el.dataset.step] = at;
      }
    }
  }).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-status']});
})();
"""


def chain_plan(count: int, *, prefix: str = "Step") -> dict:
    tasks = [
        {
            "id": f"{index:04d}",
            "description": f"{prefix} {index}: gather and summarise one part of the material",
            "thought": "needed for the report",
            "action_type": "inference",
            "tool_or_prompt": {"name": "InferenceAgent", "params": {"prompt": f"Part {index}"}},
            "expected_output": "text",
            "dependencies": [f"{index - 1:04d}"] if index > 1 else ["none"],
        }
        for index in range(1, count + 1)
    ]
    return {
        "original_request": "A long report",
        "intent": {"primary": "report", "sub_intents": []},
        "entities": [],
        "sub_tasks": tasks,
        "synthesis_plan": "Combine the parts.",
        "validation": {"coverage": "high", "gaps": [], "iteration_triggers": []},
        "clarification_needed": False,
    }


def wide_plan(count: int) -> dict:
    """`count` tasks in 25 chains of roughly equal length: deep and wide at once."""
    job = chain_plan(count, prefix="Task")
    for index, task in enumerate(job["sub_tasks"], start=1):
        task["dependencies"] = [f"{index - 25:04d}"] if index > 25 else ["none"]
    return job


def seed(executions: int, nodes: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.utils.timezone import now

    from agents.models import Agent
    from dags.execution.services import execution_create
    from dags.models import Dag, DagExecution, ExecutionEvent, SubStep

    user = get_user_model().objects.create_superuser("bench", "bench@example.com", PASSWORD)
    Agent.objects.create(
        name="InferenceAgent", version="1.0.0", prompt_template="You help.", active=True
    )
    stamp = now()
    dags = Dag.objects.bulk_create(
        [
            Dag(
                dag_title=f"Weekly report {index}",
                result=chain_plan(3),
                params={"goalText": f"Write weekly report {index}"},
                planning_total_cost_usd=Decimal("0.0021"),
                created_at=stamp - timedelta(minutes=index),
                updated_at=stamp,
            )
            for index in range(100)
        ]
    )
    statuses = ["completed"] * 7 + ["failed", "suspended", "running"]
    rows = []
    for index in range(executions):
        started = stamp - timedelta(minutes=index)
        status = statuses[index % len(statuses)]
        rows.append(
            DagExecution(
                dag=dags[index % len(dags)],
                original_request=f"Write weekly report {index}",
                primary_intent="report",
                status=status,
                total_tasks=3,
                completed_tasks=3 if status == "completed" else 1,
                failed_tasks=1 if status == "failed" else 0,
                started_at=started,
                completed_at=started + timedelta(seconds=40) if status != "running" else None,
                duration_ms=40_000 if status != "running" else None,
                final_result="# Report\n" + "text " * 200,
                total_usage={"promptTokens": 900, "completionTokens": 300, "totalTokens": 1200},
                total_cost_usd=Decimal("0.0042"),
                created_at=started,
                updated_at=started,
            )
        )
    DagExecution.objects.bulk_create(rows, batch_size=1000)

    # One execution of a 1,000-node DAG, half of it done, with its events.
    big_dag = Dag.objects.create(dag_title="A thousand steps", result=wide_plan(nodes))
    big = execution_create(dag=big_dag)
    steps = list(SubStep.objects.filter(execution=big).order_by("task_id"))
    done = steps[: nodes // 2]
    for step in done:
        step.status = "completed"
        step.started_at = stamp
        step.completed_at = stamp
        step.duration_ms = 1200
        step.result = "Findings for this part: " + "words " * 60
        step.usage = {"promptTokens": 300, "completionTokens": 100, "totalTokens": 400}
        step.cost_usd = Decimal("0.0004")
    for step in steps[nodes // 2 : nodes // 2 + 25]:
        step.status = "running"
        step.started_at = stamp
    SubStep.objects.bulk_update(
        steps,
        ["status", "started_at", "completed_at", "duration_ms", "result", "usage", "cost_usd"],
        batch_size=500,
    )
    events = []
    seq = 0
    for step in done:
        for kind in ("substep.started", "substep.completed"):
            seq += 1
            events.append(
                ExecutionEvent(
                    execution=big,
                    seq=seq,
                    type=kind,
                    payload={
                        "type": kind,
                        "executionId": big.id,
                        "subStepId": step.task_id,
                        "taskId": int(step.task_id),
                        "timestamp": 0,
                    },
                )
            )
    ExecutionEvent.objects.bulk_create(events, batch_size=1000)
    DagExecution.objects.filter(pk=big.id).update(
        status="running",
        started_at=stamp,
        completed_tasks=len(done),
        last_event_seq=seq,
    )

    # The execution watched live: a running 40-node chain.
    live_dag = Dag.objects.create(dag_title="Live chain", result=chain_plan(40))
    live = execution_create(dag=live_dag)
    return {"user": user, "big": big.id, "live": live.id}


def seed_goals(user, goals: int, runs: int, steps: int) -> dict:
    """`goals` goals (every tenth with two schedules), `runs` runs spread over them, and one
    finished run of `steps` steps with its events, all owned by `user`."""
    from django.utils.timezone import now

    from goals.models import Goal, Schedule, allowed_tool_names_text
    from runs.models import Output, Run, RunEvent, Step

    stamp = now()
    params = {"stepBudget": 10, "allowedTools": ["webSearch", "writeFile"]}
    goal_rows = Goal.objects.bulk_create(
        [
            Goal(
                objective=f"Collect the news on topic {index} and write a short summary",
                params=params,
                # bulk_create skips Goal.save, which derives it
                allowed_tool_names=allowed_tool_names_text(params),
                status="paused" if index % 7 == 0 else "active",
                owner=user,
                created_at=stamp - timedelta(minutes=index),
                updated_at=stamp,
            )
            for index in range(goals)
        ],
        batch_size=1000,
    )
    Schedule.objects.bulk_create(
        [
            Schedule(goal=goal, cron_expr=cron, timezone="Europe/Paris")
            for goal in goal_rows[::10]
            for cron in ("0 9 * * 1-5", "30 18 * * 5")
        ],
        batch_size=1000,
    )
    statuses = ["completed"] * 7 + ["failed", "running", "pending"]
    run_rows = []
    for index in range(runs):
        started = stamp - timedelta(minutes=index)
        status = statuses[index % len(statuses)]
        run_rows.append(
            Run(
                goal=goal_rows[index % len(goal_rows)],
                owner=user,
                status=status,
                step_budget=10,
                steps_executed=4,
                started_at=started if status != "pending" else None,
                ended_at=started + timedelta(seconds=30 + index % 90)
                if status in ("completed", "failed")
                else None,
                cost_usd=Decimal("0.0031"),
                usage={"promptTokens": 900, "completionTokens": 300, "totalTokens": 1200},
                created_at=started,
            )
        )
    Run.objects.bulk_create(run_rows, batch_size=1000)

    big = Run.objects.create(
        goal=goal_rows[0],
        owner=user,
        status="completed",
        step_budget=steps,
        steps_executed=steps,
        started_at=stamp,
        ended_at=stamp + timedelta(minutes=5),
        last_event_seq=steps + 2,
    )
    Step.objects.bulk_create(
        [
            Step(
                run=big,
                step_no=number,
                thought=f"Step {number}: look for **more** sources on the topic.\n\n- one\n- two",
                tool_name="webSearch",
                tool_input={"query": f"topic news part {number}", "limit": 5},
                observation="[webSearch] " + "result text " * 40,
                duration_ms=1200,
            )
            for number in range(1, steps + 1)
        ]
    )
    Output.objects.create(run=big, kind="summary", path_or_payload="# Summary\n\nAll found.")
    RunEvent.objects.bulk_create(
        [
            RunEvent(run=big, seq=seq, type="run.step", payload={"stepNo": seq - 1})
            for seq in range(2, steps + 2)
        ]
    )
    return {"big_run": big.id}


def seed_artifacts(count: int, execution_id: str) -> str:
    """`count` small Markdown files in 100 folders, every other one with a record (who wrote
    it), as the writeFile tool leaves them; returns one file's name."""
    from django.conf import settings

    from artifacts.models import Artifact

    root = Path(settings.ARTIFACTS_DIR)
    records = []
    for index in range(count):
        name = f"folder-{index % 100:03d}/report-{index:05d}.md"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f"# Report {index}\n\nFindings of part {index}: " + "words " * 40
        path.write_text(text)
        if index % 2 == 0:
            records.append(Artifact(path=name, size=len(text), execution_id=execution_id))
    Artifact.objects.bulk_create(records, batch_size=1000)
    return "folder-042/report-00042.md"


def seed_agents(count: int, owner) -> None:
    """`count` agent versions: names of 10 versions each (one active), and goals that use
    every fifth version (the list counts goals per version)."""
    from django.utils.timezone import now

    from agents.models import Agent
    from goals.models import Goal, allowed_tool_names_text

    stamp = now()
    versions = 10
    rows = [
        Agent(
            name=f"Agent{index // versions:04d}",
            version=f"{index % versions + 1}.0.0",
            prompt_template="You help with {{objective}}. Today is {{currentDate}}.\n" * 20,
            provider="openai",
            model="gpt-4o-mini",
            active=index % versions == versions - 1,
            metadata={"team": f"team-{index % 7}"},
            created_at=stamp - timedelta(minutes=index),
            updated_at=stamp - timedelta(minutes=index),
        )
        for index in range(count)
    ]
    Agent.objects.bulk_create(rows, batch_size=1000)
    goals = [
        Goal(
            objective=f"Keep an eye on topic {index}",
            agent_id=rows[index * 5 % len(rows)].id,
            params={"allowedTools": ["webSearch", "fetchPage"]} if index % 2 else {},
            owner=owner,
        )
        for index in range(count // 5)
    ]
    for goal in goals:  # bulk_create skips Goal.save, which derives it
        goal.allowed_tool_names = allowed_tool_names_text(goal.params)
    Goal.objects.bulk_create(goals, batch_size=1000)


def session_cookie(user) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def time_pages(port: int, cookie: str, paths: dict[str, str], requests: int) -> dict:
    results = {}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Cookie": f"sessionid={cookie}", "Connection": "keep-alive"}
    for name, path in paths.items():
        timings = []
        size = 0
        for attempt in range(requests + 3):
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise RuntimeError(f"{path} answered {response.status}: {body[:300]!r}")
            if attempt >= 3:  # the first requests warm caches and imports
                timings.append(elapsed)
            size = len(body)
        ordered = sorted(timings)
        results[name] = {
            "path": path,
            "requests": len(timings),
            "p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
            "html_kb": round(size / 1024, 1),
        }
    connection.close()
    return results


def live_latency(port: int, cookie: str, execution_id: str) -> dict:
    from playwright.sync_api import sync_playwright

    from dags.execution.services import execution_start, sub_step_claim, sub_step_complete
    from dags.execution.work import NodeOutcome
    from dags.models import SYNTHESIS_TASK_ID, SubStep

    # Playwright's sync API keeps an asyncio loop in this thread; the ORM calls made here
    # between page actions are plain blocking calls and never run inside that loop.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    execution_start(execution_id=execution_id)
    latencies = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(base_url=f"http://127.0.0.1:{port}")
        context.add_cookies(
            [{"name": "sessionid", "value": cookie, "domain": "127.0.0.1", "path": "/"}]
        )
        page = context.new_page()
        page.add_init_script(RECORDER)
        page.goto(f"/executions/{execution_id}")
        page.wait_for_selector("#live-indicator[data-state='live']", timeout=30_000)
        first = SubStep.objects.get(execution_id=execution_id, task_id="0001")
        current = sub_step_claim(sub_step_id=first.id)
        # The synthesis row appears only when every node is done: the plan's nodes are timed.
        while current is not None and current.task_id != SYNTHESIS_TASK_ID:
            time.sleep(0.05)  # let the page settle, as between real nodes
            task_id = current.task_id
            started = time.time() * 1000
            following = sub_step_complete(sub_step=current, outcome=NodeOutcome(result="done"))
            page.wait_for_function(
                f"() => '{task_id}' in window.__completedAt", timeout=10_000, polling=10
            )
            shown = page.evaluate(f"window.__completedAt['{task_id}']")
            latencies.append(shown - started)
            current = following
        browser.close()
    ordered = sorted(latencies)
    return {
        "nodes": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--artifacts", type=int, default=10_000)
    parser.add_argument(
        "--no-live", action="store_true", help="Time the pages only, not the live page update."
    )
    parser.add_argument("--web-processes", type=int, default=None)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--goals", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--run-steps", type=int, default=100)
    args = parser.parse_args()

    env, services = isolated_environment()
    servers: list[subprocess.Popen] = []
    try:
        setup_django()
        from django.conf import settings

        processes = args.web_processes or settings.WEB_PROCESSES
        seeded = seed(args.executions, args.nodes)
        seeded.update(seed_goals(seeded["user"], args.goals, args.runs, args.run_steps))
        artifact = seed_artifacts(args.artifacts, seeded["big"])
        seed_agents(args.agents, seeded["user"])
        cookie = session_cookie(seeded["user"])
        servers, port = start_daphne(env, processes)
        pages = time_pages(
            port,
            cookie,
            {
                "dashboard": "/",
                "dag_list": "/dags",
                "execution_list": "/executions",
                "execution_list_filtered": "/executions?q=report&status=failed&sort=-cost",
                "execution_detail_1000_nodes": f"/executions/{seeded['big']}",
                "goal_list": "/goals",
                "goal_list_filtered": "/goals?q=topic&status=active&sort=objective",
                "run_list": "/runs",
                "run_list_filtered": "/runs?status=completed&sort=-duration",
                f"run_detail_{args.run_steps}_steps": f"/runs/{seeded['big_run']}",
                "artifacts": "/artifacts",
                "artifacts_search_newest": "/artifacts?q=report-0&sort=-modified&page=3",
                "artifact_file": f"/artifacts/{artifact}",
                "costs": "/costs",
                "costs_by_week": "/costs?groupBy=week",
                "costs_csv": "/costs/export.csv",
                "system": "/system",
                "agent_list": "/agents",
                "agent_list_page_40": "/agents?page=40",
                "agent_list_filtered": "/agents?q=agent01&active=inactive&sort=-updated",
                "tools": "/tools",
            },
            args.requests,
        )
        live = None if args.no_live else live_latency(port, cookie, seeded["live"])
        print(
            json.dumps(
                {
                    "benchmark": "ui_pages",
                    "server": f"daphne ({processes} processes, as ./scripts/start), SQLite",
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                    "rows": {
                        "executions": args.executions + 2,
                        "dags": 102,
                        "agents": args.agents,
                        "goals": args.goals + args.agents // 5,
                        "runs": args.runs + 1,
                        "artifact_files": args.artifacts,
                    },
                    "targets": {
                        "list_pages_p50_ms": 150,
                        "execution_detail_1000_nodes_ms": 500,
                        "node_to_page_p50_ms": 100,
                    },
                    "pages": pages,
                    "node_finished_to_page_updated": live,
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
