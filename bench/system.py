"""The system under test, started as `./scripts/start` starts it, and torn down without leftovers.

`System` runs `python manage.py start_all` (web, worker, beat, embedded Redis) in a throwaway
folder and finds its children with psutil; `PgCluster` is a throwaway PostgreSQL server for the
scale-out variant. Every process this module starts is stopped by `close()` (also on Ctrl-C or an
exception in the harness): first as Ctrl-C would (SIGINT to start_all), then by force.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# What the harness reads back from the running system's settings (defaults included).
SETTINGS_SHOWN = (
    "WEB_PROCESSES",
    "CELERY_WORKER_CONCURRENCY",
    "CELERY_WORKER_POOL",
    "EXECUTION_MAX_PARALLEL_NODES",
    "LOG_LEVEL",
    "API_THROTTLE_RATE",
    "DEBUG",
    "DATABASE_CONN_MAX_AGE",
    "ASGI_QUICK_THREADS",
    "ASGI_IDLE_THREADS",
    "LLM_PROVIDER",
    "LLM_MODEL",
)
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, what: str, poll: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


def _answers(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=2) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


def _stop_tree(process: psutil.Process | subprocess.Popen, sig: int, timeout: float) -> None:
    """Send `sig` to a process, wait, then kill it and every descendant still alive."""
    try:
        root = psutil.Process(process.pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, sig)
    _gone, alive = psutil.wait_procs(family[:1], timeout=timeout)
    # Children of a supervisor get their own stop signals from it; give them the same time.
    _gone, alive = psutil.wait_procs(family, timeout=timeout if not alive else 0.5)
    for survivor in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            survivor.kill()
    psutil.wait_procs(alive, timeout=5)
    if isinstance(process, subprocess.Popen):
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


class PgCluster:
    """A throwaway PostgreSQL server on 127.0.0.1:<free port> in a temporary folder, run as an
    unprivileged user when the harness runs as root (initdb refuses root)."""

    def __init__(self, bin_dir: str = "/usr/local/bin") -> None:
        self.bin_dir = Path(bin_dir)
        self.folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.user = "nobody" if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgres://bench@127.0.0.1:{self.port}/bench"

    def _as_owner(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", self.user, "--", *args] if self.user else args

    def start(self) -> PgCluster:
        data = self.folder / "data"
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            self._as_owner(
                [str(self.bin_dir / "initdb"), "-D", str(data), "-U", "bench", "-A", "trust"]
            ),
            check=True,
            capture_output=True,
            cwd=self.folder,
        )
        log = (self.folder / "postgres.log").open("wb")
        self.process = subprocess.Popen(
            self._as_owner(
                [
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.folder}",
                    # Room for every web thread and worker thread of two workers; the server's
                    # other settings stay at their defaults.
                    "-c",
                    "max_connections=300",
                ]
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
            process_group=0,
        )
        import psycopg

        def ready() -> bool:
            try:
                with psycopg.connect(
                    f"host=127.0.0.1 port={self.port} user=bench dbname=postgres",
                    connect_timeout=2,
                    autocommit=True,
                ) as connection:
                    if not connection.execute(
                        "SELECT 1 FROM pg_database WHERE datname = 'bench'"
                    ).fetchone():
                        connection.execute("CREATE DATABASE bench")
                return True
            except psycopg.OperationalError:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(
                        "postgres exited: " + (self.folder / "postgres.log").read_text()[-2000:]
                    ) from None
                return False

        wait_for(ready, timeout=60, what="PostgreSQL", poll=0.2)
        return self

    def version(self) -> str:
        out = subprocess.run(
            [str(self.bin_dir / "postgres"), "--version"], capture_output=True, text=True
        )
        return out.stdout.strip()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            _stop_tree(self.process, signal.SIGINT, 20)  # SIGINT: PostgreSQL's fast shutdown
        shutil.rmtree(self.folder, ignore_errors=True)


class System:
    """`manage.py start_all` in a throwaway folder, as `./scripts/start` runs it."""

    def __init__(self, *, llm_url: str, throttle_rate: str, database_url: str | None = None):
        self.folder = Path(tempfile.mkdtemp(prefix="bench-system-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        # The only environment the harness sets; every other setting keeps its default.
        self.env_set = {
            "ASYNC_AGENT_SKIP_DOTENV": "1",
            "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "VAR_DIR": str(self.folder / "var"),
            "ARTIFACTS_DIR": str(self.folder / "artifacts"),
            "LLM_PROVIDER": "openai",
            "OPENAI_BASE_URL": llm_url,
            "OPENAI_API_KEY": "sk-bench-dummy",
            "API_THROTTLE_RATE": throttle_rate,
        }
        if database_url:
            self.env_set["DATABASE_URL"] = database_url
        else:
            self.env_set["SQLITE_PATH"] = str(self.folder / "db.sqlite3")
        env = {
            key: value
            for key, value in os.environ.items()
            # Nothing from the caller's shell that the system would read as a setting.
            if key in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "TERM")
        }
        self.env = {**env, **self.env_set}
        self.process: subprocess.Popen | None = None
        self.log_path = self.folder / "start_all.log"
        self.extra_workers: list[subprocess.Popen] = []
        self.token = ""
        # Processes outside start_all whose CPU the rows report too (e.g. "postgres").
        self.other_roles: dict[str, psutil.Process] = {}

    # --- life cycle ------------------------------------------------------------------------
    def start(self, timeout: float = 240.0) -> System:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [PYTHON, "manage.py", "start_all", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,
        )

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError("start_all exited:\n" + self.log_tail())
            # start_all prints its banner once /health answers; the worker must be there too.
            return "Press Ctrl-C to stop" in self.log_path.read_text(errors="replace")

        wait_for(up, timeout=timeout, what="start_all's banner", poll=0.25)
        self.token = self.manage("drf_create_token", "admin").split()[2]
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 120.0) -> None:
        """/health/ready says ready (database, Redis, a worker heartbeat, beat)."""
        wait_for(
            lambda: _answers(f"{self.base}/health/ready"),
            timeout=timeout,
            what="/health/ready",
            poll=0.25,
        )

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def manage(self, *args: str) -> str:
        """A management command against this system's database (and its embedded Redis)."""
        return subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout

    def settings(self, unset: tuple[str, ...] = ()) -> dict[str, Any]:
        """The settings that matter, as the system's processes read them (or as they would
        read them without the variables in `unset`)."""
        code = (
            "import json, django; django.setup(); from django.conf import settings as s; "
            f"names = {list(SETTINGS_SHOWN)!r}; "
            "out = {n: getattr(s, n, None) for n in names}; "
            "out['DATABASE_ENGINE'] = s.DATABASES['default']['ENGINE']; "
            "out['DATABASE_CONN_MAX_AGE'] = s.DATABASES['default'].get('CONN_MAX_AGE'); "
            "print(json.dumps(out, default=str))"
        )
        out = subprocess.run(
            [PYTHON, "-c", code],
            cwd=ROOT,
            env={
                **{k: v for k, v in self.env.items() if k not in unset},
                "DJANGO_SETTINGS_MODULE": "config.settings",
            },
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])

    def close(self) -> None:
        for worker in self.extra_workers:
            if worker.poll() is None:
                _stop_tree(worker, signal.SIGTERM, 15)
        if self.process is not None and self.process.poll() is None:
            # What one Ctrl-C does: start_all stops web, worker, beat, then Redis.
            _stop_tree(self.process, signal.SIGINT, 30)
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- processes -------------------------------------------------------------------------
    def children(self) -> dict[str, list[psutil.Process]]:
        """start_all's children by role: web, worker, beat, redis (extra workers included)."""
        roles: dict[str, list[psutil.Process]] = {"web": [], "worker": [], "beat": [], "redis": []}
        if self.process is None:
            return roles
        found = psutil.Process(self.process.pid).children()
        found += [psutil.Process(worker.pid) for worker in self.extra_workers]
        for child in found:
            try:
                line = " ".join(child.cmdline())
            except psutil.NoSuchProcess:
                continue
            if "daphne" in line:
                roles["web"].append(child)
            elif "celery" in line and " worker" in line:
                roles["worker"].append(child)
            elif "celery" in line and " beat" in line:
                roles["beat"].append(child)
            elif "redis" in line:
                roles["redis"].append(child)
        for role, root in self.other_roles.items():
            try:
                roles[role] = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                roles[role] = []
        return roles

    def describe(self) -> list[dict[str, Any]]:
        rows = []
        for role, processes in self.children().items():
            if role in self.other_roles:
                processes = processes[:1]  # not every server process of a database
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    # redis-server rewrites its argv and leaves empty strings behind.
                    command = [part for part in process.cmdline() if part]
                    rows.append({"role": role, "pid": process.pid, "cmdline": command})
        return rows

    def start_extra_worker(self, name: str) -> subprocess.Popen:
        """A second worker started as start_all starts its own: the same command line and
        environment, read from the running worker, plus a node name of its own (two workers on
        one machine must not share Celery's default name; on two machines the host name
        differs anyway)."""
        original = self.children()["worker"][0]
        command = [*original.cmdline(), "-n", f"{name}@%h"]
        worker = subprocess.Popen(
            command,
            cwd=original.cwd(),
            env=original.environ(),
            stdout=(self.folder / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        self.extra_workers.append(worker)
        return worker

    def stop_extra_workers(self) -> None:
        for worker in self.extra_workers:
            _stop_tree(worker, signal.SIGTERM, 15)
        self.extra_workers = []


class ExternalServer:
    """A server of the same API that was started by hand, to be measured beside ours in the same
    run (the original TypeScript server, say): only its address and its process are known.
    Nothing is started or stopped here; the rows that need our internals are not run on it."""

    def __init__(self, url: str, pid: int) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
            raise ValueError(f"--external-url must be http://127.0.0.1:<port>, not {url!r}")
        self.port = parts.port
        self.process = psutil.Process(pid)
        # Sent with every request like our token; a server without authentication ignores it.
        self.token = "bench"

    def children(self) -> dict[str, list[psutil.Process]]:
        """The one role, "server": the process and its children (web and work alike)."""
        try:
            return {"server": [self.process, *self.process.children(recursive=True)]}
        except psutil.NoSuchProcess:
            return {"server": []}

    def describe(self) -> list[dict[str, Any]]:
        rows = []
        for process in self.children()["server"]:
            with contextlib.suppress(psutil.NoSuchProcess):
                rows.append({"role": "server", "pid": process.pid, "cmdline": process.cmdline()})
        return rows
