"""Shared helpers of the component benchmarks: an isolated environment (temp SQLite, private
Redis) and daphne started as `./scripts/start` starts it. The load generator is in client.py."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.embedded_redis import free_port, start_redis, wait_for_port  # noqa: E402


def isolated_environment() -> tuple[dict[str, str], list[subprocess.Popen]]:
    """Env vars for a throwaway system (temp DB and folders, private Redis)."""
    tmp = Path(tempfile.mkdtemp(prefix="async-agent-bench-"))
    redis_port = free_port()
    redis = start_redis(tmp / "redis", redis_port, persist=False)
    env = {
        "ASYNC_AGENT_SKIP_DOTENV": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret",
        "VAR_DIR": str(tmp / "var"),
        "SQLITE_PATH": str(tmp / "db.sqlite3"),
        "ARTIFACTS_DIR": str(tmp / "artifacts"),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "API_THROTTLE_RATE": "100000000/min",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    return env, [redis]


def setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def start_daphne(env: dict[str, str], processes: int = 1) -> tuple[list[subprocess.Popen], int]:
    """daphne as `./scripts/start` runs it: `processes` processes sharing one port."""
    from ops.web import daphne_args, listening_sockets

    port = free_port()
    listeners = listening_sockets("127.0.0.1", port, processes)
    try:
        servers = [
            subprocess.Popen(
                daphne_args(listener.fileno()),
                cwd=ROOT,
                env={**os.environ, **env},
                pass_fds=(listener.fileno(),),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for listener in listeners
        ]
    finally:
        for listener in listeners:
            listener.close()
    wait_for_port(port, timeout=30)
    _wait_until_every_process_serves(port, processes)
    return servers, port


def _wait_until_every_process_serves(port: int, processes: int, timeout: float = 60.0) -> None:
    """The port accepts as soon as one process listens; new connections are spread over the
    processes, so many fresh connections answered in a row mean they all serve."""
    import http.client

    deadline = time.monotonic() + timeout
    in_a_row = 0
    while in_a_row < 16 * processes:
        if time.monotonic() > deadline:
            raise TimeoutError("the web processes did not all start")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            connection.request("GET", "/health")
            in_a_row = in_a_row + 1 if connection.getresponse().status == 200 else 0
        except OSError:
            in_a_row = 0
        finally:
            connection.close()
