"""Shared bench helpers: an isolated environment (temp SQLite, private Redis) and a
small keep-alive HTTP load generator that measures requests/s and latency percentiles."""

from __future__ import annotations

import asyncio
import os
import re
import statistics
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


async def _worker(
    port: int, request: bytes, deadline: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            chunked = False
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readline()).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            else:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


def load_with_wrk(port: int, path: str, token: str, *, seconds: float, connections: int) -> dict:
    """The same measurement with wrk (Debian's `wrk`), which costs the server's cores far less
    CPU than a Python client."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-H",
            f"Authorization: Token {token}",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(text: str) -> float:
        value = float(re.match(r"[\d.]+", text).group())
        return round(value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[re.sub(r"[\d.]", "", text)], 2)

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "path": path,
        "client": "wrk",
        "connections": connections,
        "seconds": seconds,
        "requests": requests,
        "errors": int(errors.group(1)) if errors else 0,
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99_ms": ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
    }


def load(port: int, path: str, token: str, *, seconds: float, connections: int) -> dict:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors: list[int] = []

    async def run() -> float:
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(
            *(_worker(port, request, deadline, latencies, errors) for _ in range(connections))
        )
        return time.perf_counter() - started

    elapsed = asyncio.run(run())
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "path": path,
        "client": "python",
        "connections": connections,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "errors": len(errors),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }
