"""Real Celery processes for tests, sharing the test database file and the test Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import connection

from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


def child_database_env() -> dict[str, str]:
    """Environment that points a child process at this test run's database (pytest-django
    renames it)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"SQLITE_PATH": str(db["NAME"])}
    return {
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or 'localhost'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        )
    }


def celery_process(
    fake_llm,
    *arguments: str,
    extra_env: dict[str, str] | None = None,
    output: IO[bytes] | int = subprocess.DEVNULL,
    loglevel: str = "WARNING",
) -> subprocess.Popen:
    """`celery -A config <arguments>` against the test database, Redis and scripted LLM."""
    env = {
        **os.environ,
        **child_database_env(),
        "REDIS_URL": settings.REDIS_URL,
        "OPENAI_BASE_URL": fake_llm.base_url,
        "OPENAI_API_KEY": "sk-test-fake",
        "LLM_PROVIDER": "openai",
        "LLM_MODEL": "gpt-4o-mini",
        "LOG_LEVEL": loglevel,
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", *arguments, "--loglevel", loglevel],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
    )


def worker_process(
    fake_llm,
    extra_env: dict[str, str] | None = None,
    *,
    concurrency: int = 4,
    queues: list[str] | None = None,
    output: IO[bytes] | int = subprocess.DEVNULL,
    loglevel: str = "WARNING",
) -> subprocess.Popen:
    """A thread-pool worker with a unique name, consuming `queues` (default: every queue)."""
    arguments = ["--pool", "threads", "--concurrency", str(concurrency)]
    if queues:
        arguments += ["-Q", ",".join(queues)]
    return celery_process(
        fake_llm,
        "worker",
        *arguments,
        "-n",
        f"test-{uuid.uuid4().hex[:8]}@%h",
        extra_env=extra_env,
        output=output,
        loglevel=loglevel,
    )


def wait_for_workers(count: int = 1, timeout: float = 90.0) -> None:
    """Until `count` workers answer a ping (started, connected to the broker, consuming)."""
    from config.celery import app

    def answering() -> bool:
        try:
            return len(app.control.ping(timeout=0.5) or []) >= count
        except Exception:  # redis and kombu connection errors: a pooled connection went stale
            return False

    wait_for(answering, timeout=timeout, message=f"{count} worker(s) answering")


class WebServer:
    """A real daphne process serving the whole site (pages, API, streams, static files) on a
    fixed port against the test database, Redis and scripted LLM; `restart()` keeps the port,
    so an open browser page can reconnect to it."""

    def __init__(
        self, log_path: Path, fake_llm=None, extra_env: dict[str, str] | None = None
    ) -> None:
        from config.embedded_redis import free_port

        self.port = free_port()
        self.log_path = log_path
        self.fake_llm = fake_llm
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "ASYNC_AGENT_SKIP_DOTENV": "1",
            "REDIS_URL": settings.REDIS_URL,
            "LOG_LEVEL": "WARNING",
            **child_database_env(),
        }
        if connection.vendor == "sqlite":
            env.pop("DATABASE_URL", None)
        if self.fake_llm is not None:
            env.update(
                {
                    "OPENAI_BASE_URL": self.fake_llm.base_url,
                    "OPENAI_API_KEY": "sk-test-fake",
                    "LLM_PROVIDER": "openai",
                    "LLM_MODEL": "gpt-4o-mini",
                }
            )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> WebServer:
        import http.client

        from config.embedded_redis import wait_for_port

        daphne = Path(sys.executable).with_name("daphne")
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(daphne), "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
            cwd=ROOT,
            env=self.environment(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(self.port, timeout=timeout)
            # The first request loads the URLconf and every view module.
            warm_up = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            warm_up.request("GET", "/health")
            assert warm_up.getresponse().status == 200
            warm_up.close()
        except BaseException:  # a server that never came up must not outlive the test run
            self.kill()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Stop at once, as a crash would (no clean shutdown of open streams)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> WebServer:
        self.stop()
        return self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
