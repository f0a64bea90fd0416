"""Server time of `GET /health/ready` and of the dashboard's readiness partial.

    uv run python bench/health_ready.py [--requests 200]

Starts a throwaway system (temp SQLite, private Redis), a real Celery worker process (whose
heartbeats readiness reads) and daphne as `./scripts/start` runs it, with the readiness cache
off (HEALTH_CACHE_SECONDS=0), so every request runs every check: database, Redis, worker
heartbeats, schedules, beat's last tick, the LLM set-up. Sequential keep-alive GETs over
loopback, as a staff caller (full details), anonymously, and the dashboard partial.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from _support import ROOT, isolated_environment, setup_django, start_daphne

CELERY_WORKER = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "threads"]


def timed_gets(port: int, path: str, headers: dict[str, str], requests: int) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    timings = []
    statuses = set()
    body = b""
    for attempt in range(requests + 5):
        started = time.perf_counter()
        connection.request("GET", path, headers={**headers, "Connection": "keep-alive"})
        response = connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        statuses.add(response.status)
        if attempt >= 5:  # warm-up
            timings.append(elapsed)
    connection.close()
    ordered = sorted(timings)
    return {
        "path": path,
        "requests": len(timings),
        "statuses": sorted(statuses),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "max_ms": round(ordered[-1], 2),
        "last_body": body[:400].decode(errors="replace"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    env, services = isolated_environment()
    env.update({"HEALTH_CACHE_SECONDS": "0", "OPENAI_API_KEY": "sk-bench-unused"})
    os.environ.update(env)
    children: list[subprocess.Popen] = []
    try:
        setup_django()
        from django.contrib.auth import get_user_model
        from django.test import Client
        from django.utils.timezone import now
        from rest_framework.authtoken.models import Token

        from goals.models import SchedulerHeartbeat
        from ops.selectors import worker_heartbeats

        staff = get_user_model().objects.create_superuser("bench", "", "bench-password-123")
        token = Token.objects.create(user=staff).key
        client = Client()
        client.force_login(staff)
        cookie = client.cookies["sessionid"].value
        # Beat's tick, as beat records it (beat itself is not part of what is measured).
        SchedulerHeartbeat.objects.update_or_create(
            name="beat", defaults={"ticked_at": now(), "started_at": now(), "hostname": "bench"}
        )
        worker = subprocess.Popen(
            [*CELERY_WORKER, "--concurrency", "4", "--loglevel", "WARNING"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        children.append(worker)
        deadline = time.monotonic() + 180
        while not any(beat["fresh"] for beat in worker_heartbeats()):
            if time.monotonic() > deadline:
                raise RuntimeError("the worker recorded no heartbeat")
            time.sleep(0.2)
        servers, port = start_daphne(env, 1)
        children.extend(servers)
        staff_ready = timed_gets(
            port, "/health/ready", {"Authorization": f"Token {token}"}, args.requests
        )
        anonymous_ready = timed_gets(port, "/health/ready", {}, args.requests)
        partial = timed_gets(
            port, "/dashboard/readiness", {"Cookie": f"sessionid={cookie}"}, args.requests // 2
        )
        details = json.loads(
            http_get_json(port, "/health/ready", {"Authorization": f"Token {token}"})
        )
        print(
            json.dumps(
                {
                    "benchmark": "health_ready",
                    "server": "daphne (1 process, as ./scripts/start runs each), SQLite, "
                    "readiness cache off",
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                    "target_p50_ms": 50,
                    "staff": {k: v for k, v in staff_ready.items() if k != "last_body"},
                    "anonymous": {k: v for k, v in anonymous_ready.items() if k != "last_body"},
                    "dashboard_partial": {k: v for k, v in partial.items() if k != "last_body"},
                    "status": details["status"],
                    "check_latency_ms": {
                        name: check.get("latencyMs") for name, check in details["checks"].items()
                    },
                    "workers": details["checks"]["celery"].get("names"),
                },
                indent=2,
            )
        )
    finally:
        for process in [*children, *services]:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def http_get_json(port: int, path: str, headers: dict[str, str]) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path, headers=headers)
    body = connection.getresponse().read()
    connection.close()
    return body


if __name__ == "__main__":
    main()
