"""Real Celery processes for tests, sharing the test database file and the test Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def wait_for(
    predicate: Callable[[], bool], timeout: float = 40.0, message: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{message} not met before the deadline")


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
        "LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", *arguments, "--loglevel", "WARNING"],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
    )


def worker_process(
    fake_llm, extra_env: dict[str, str] | None = None, *, concurrency: int = 4
) -> subprocess.Popen:
    """A thread-pool worker with a unique name."""
    return celery_process(
        fake_llm,
        "worker",
        "--pool",
        "threads",
        "--concurrency",
        str(concurrency),
        "-n",
        f"test-{uuid.uuid4().hex[:8]}@%h",
        extra_env=extra_env,
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
