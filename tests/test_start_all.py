"""README command 1 for real: `manage.py start_all` serves the API, restarts a process that dies,
and one SIGINT stops it all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from config.embedded_redis import free_port

# Generous upper bounds for a busy machine; a normal start takes 10-20 s.
START_DEADLINE_SECONDS = 90.0
STOP_DEADLINE_SECONDS = 30.0


class OutputCollector:
    """Reads the child's combined output on a thread so the pipe never fills up."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, process: subprocess.Popen, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern, re.MULTILINE)
        while True:
            match = regex.search(self.text())
            if match:
                return match
            if process.poll() is not None:
                pytest.fail(f"start_all exited with {process.returncode}:\n{self.text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {pattern!r} within {timeout} s:\n{self.text()}")
            with self._changed:
                self._changed.wait(0.2)


DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, token: str | None = None, timeout: float = 30) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with DIRECT.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def children_of(pid: int) -> dict[int, str]:
    """Direct children of `pid` (from /proc): pid → command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        # Field 4 (after the parenthesised command name) is the parent pid.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found[int(entry.name)] = cmdline
    return found


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def listening_socket_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on `port` (IPv4, from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
            found.add(inode)
    return found


def socket_inodes_of(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[len("socket:[") : -1])
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_start_all_serves_the_api_and_stops_on_one_sigint(tmp_path):
    port = free_port()
    env = dict(os.environ)
    # A system of its own: fresh folders, SQLite, and the embedded Redis (no REDIS_URL).
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL", "SQLITE_TEST_PATH"):
        env.pop(name, None)
    env.update(
        {
            "ASYNC_AGENT_SKIP_DOTENV": "1",
            "VAR_DIR": str(tmp_path / "var"),
            "SQLITE_PATH": str(tmp_path / "var" / "db.sqlite3"),
            "ARTIFACTS_DIR": str(tmp_path / "artifacts"),
            "STATIC_ROOT": str(tmp_path / "var" / "static"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "start_all",
            "--port",
            str(port),
            "--concurrency",
            "2",
            "--web-processes",
            "2",
            "--stop-timeout",
            "15",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = OutputCollector(process.stdout)
    try:
        token = output.wait_for(
            r"API token\s+([0-9a-f]{40})", process, START_DEADLINE_SECONDS
        ).group(1)
        password = output.wait_for(r"Login\s+admin / (\S+)", process, 1).group(1)
        base = f"http://127.0.0.1:{port}"
        # The browser UI is the first address printed, and it is served with its own assets.
        urls = re.findall(r"^\s+[A-Z][\w ]+?\s{2,}(http://\S+)", output.text(), re.MULTILINE)
        assert urls[0] == f"{base}/"
        assert http_get(f"{base}/login")[0] == 200
        assert http_get(f"{base}/static/css/app.css")[0] == 200

        status, body = http_get(f"{base}/health")
        assert status == 200 and b'"ok"' in body
        assert http_get(f"{base}/api/v1/goals", token) == (200, b"[]")
        assert http_get(f"{base}/api/v1/goals")[0] == 401
        # Static files for the admin are collected and served.
        assert http_get(f"{base}/static/admin/css/base.css")[0] == 200

        password_file = tmp_path / "var" / "admin-password.txt"
        assert password_file.read_text().strip() == password
        assert password_file.stat().st_mode & 0o777 == 0o600

        children = children_of(process.pid)
        commands = " | ".join(children.values())
        assert len(children) == 5, commands
        for part in ("redis-server", "daphne", "celery -A config worker", "celery -A config beat"):
            assert part in commands
        # Two web processes, each with its own listening socket on the port (SO_REUSEPORT),
        # and the supervisor keeps none of them open itself.
        web = [pid for pid, command in children.items() if "daphne" in command]
        listening = listening_socket_inodes(port)
        assert len(web) == 2 and len(listening) == 2
        held = [socket_inodes_of(pid) & listening for pid in web]
        assert all(len(inodes) == 1 for inodes in held) and held[0] != held[1]
        assert not socket_inodes_of(process.pid) & listening
        for _ in range(6):  # new connections each time, whichever process takes them
            assert http_get(f"{base}/api/v1/goals", token) == (200, b"[]")
        assert (tmp_path / "var" / "redis").is_dir()
        # A first start warns about nothing: the agents were seeded with Redis already up (unless
        # 6379 was taken, when this process still looks for it there), and the dispatcher found
        # a new broker with no queued work to send again.
        output.wait_for(r"a new or emptied broker", process, 30)
        warnings = [line for line in output.text().splitlines() if " WARNING " in line]
        if "Port 6379 is taken" in output.text():
            warnings = [line for line in warnings if "not invalidated" not in line]
        assert warnings == [], output.text()

        # A child that dies is reported and started again; the system keeps running.
        worker = next(pid for pid, command in children.items() if "config worker" in command)
        os.kill(worker, signal.SIGKILL)
        os.kill(web[0], signal.SIGKILL)
        output.wait_for(
            rf"worker \(pid {worker}\) exited with code -9 after [\d.]+ s; restarting it in 1 s",
            process,
            30,
        )
        output.wait_for(r"restarted worker \(pid \d+\)", process, 30)
        output.wait_for(r"restarted web-\d \(pid \d+\)", process, 30)
        deadline = time.monotonic() + 30
        while len(children_of(process.pid)) != 5 or len(listening_socket_inodes(port)) != 2:
            assert time.monotonic() < deadline, output.text()
            time.sleep(0.2)
        children = children_of(process.pid)
        assert worker not in children and web[0] not in children
        # The new web process's socket takes connections at once; they wait until it serves.
        for _ in range(6):
            assert http_get(f"{base}/api/v1/goals", token, timeout=START_DEADLINE_SECONDS) == (
                200,
                b"[]",
            )
    except BaseException:
        process.kill()
        print(output.text())  # shown by pytest with the failure
        raise
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            returncode = process.wait(timeout=STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()  # its children get SIGTERM from the kernel (parent-death signal)
            raise

    assert returncode == 0, output.text()
    assert "Stopped cleanly (SIGINT)" in output.text()
    leftovers = [pid for pid in children if is_running(pid)]
    assert leftovers == [], leftovers
