"""The embedded Redis keeps its port between starts, and commands find it without REDIS_URL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from django.conf import settings

from config.embedded_redis import (
    embedded_port_choose,
    free_port,
    port_file,
    record_port,
    recorded_port,
)


def test_a_recorded_free_port_is_reused(tmp_path):
    port = free_port()
    record_port(tmp_path, port)

    assert embedded_port_choose(tmp_path) == (port, None)
    assert recorded_port(tmp_path) == port


def test_a_taken_recorded_port_is_replaced_and_the_new_one_recorded(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        record_port(tmp_path, taken)

        port, wanted = embedded_port_choose(tmp_path)

    assert wanted == taken
    assert port != taken
    assert recorded_port(tmp_path) == port
    assert port_file(tmp_path).read_text().strip() == str(port)


def test_a_port_whose_server_just_stopped_is_free_again(tmp_path):
    """The server closed a connection first, so the port keeps it in TIME_WAIT for a while:
    Redis could listen there again, so the recorded port is kept."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Redis sets it
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server's side closes first: it is the side left in TIME_WAIT
        client.recv(1)
        client.close()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as plain:  # the situation is real
        try:
            plain.bind(("127.0.0.1", port))
            lingering = False
        except OSError:
            lingering = True
    record_port(tmp_path, port)

    assert embedded_port_choose(tmp_path) == (port, None)
    assert lingering, "no TIME_WAIT connection was left, so this proved nothing"


def test_junk_in_the_record_counts_as_no_record(tmp_path):
    port_file(tmp_path).parent.mkdir(parents=True)
    port_file(tmp_path).write_text("not a port\n")
    assert recorded_port(tmp_path) is None


def test_manage_commands_without_redis_url_use_the_recorded_port(tmp_path):
    record_port(tmp_path / "var", 45123)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update({"ASYNC_AGENT_SKIP_DOTENV": "1", "VAR_DIR": str(tmp_path / "var")})
    completed = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "--verbosity",
            "0",
            "-c",
            "from django.conf import settings as s; print(s.REDIS_URL, s.CELERY_BROKER_URL)",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[-1].split() == ["redis://127.0.0.1:45123/0"] * 2
