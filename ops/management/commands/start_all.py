"""`manage.py start_all`: the whole system on one machine, stopped cleanly by one Ctrl-C.

Starts an embedded Redis unless REDIS_URL is set, prepares the database (migrate, static files,
default agents), makes sure a local admin login and API token exist, then runs the web server
(daphne), a Celery worker (thread pool) and Celery beat as child processes until a stop
signal arrives. A child that exits is reported and restarted, after a delay that grows while it
keeps failing (see ops.processes).
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from agents.llm.providers import UnknownProvider, canonical_provider, provider_configured
from config.embedded_redis import embedded_port_choose, port_file, start_redis
from ops.processes import Exit, Supervisor, child_popen_options
from ops.services import LocalLogin, local_admin_ensure, system_prepare
from ops.web import daphne_args, listening_socket, listening_sockets

WEB_READY_TIMEOUT_SECONDS = 120.0
REDIS_STOP_TIMEOUT_SECONDS = 10.0
# One Ctrl-C stops everything within about five seconds: the worker finishes the DAG nodes in
# hand and sends the rest back to the queue; a node still running after this long is killed
# and re-run at the next start (its lease lapses; see docs/durability.md).
DEFAULT_STOP_TIMEOUT_SECONDS = 3.5
APP_PROCESSES = ("worker", "beat")  # and the web processes, "web-1", "web-2", ...
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


class Command(BaseCommand):
    help = (
        "Start (unless REDIS_URL is set) an embedded Redis, then migrate, seed the default agents "
        "and create a local admin login and API token, then start web (daphne), a Celery worker "
        "and Celery beat. Ctrl-C stops everything."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to serve on.")
        parser.add_argument("--port", type=int, default=8000, help="Port to serve on.")
        parser.add_argument(
            "--workers",
            "--concurrency",
            dest="concurrency",
            metavar="N",
            type=int,
            default=settings.CELERY_WORKER_CONCURRENCY,
            help="Threads in the Celery worker (default: CELERY_WORKER_CONCURRENCY).",
        )
        parser.add_argument(
            "--web-processes",
            metavar="N",
            type=int,
            default=settings.WEB_PROCESSES,
            help="daphne processes sharing the port (default: WEB_PROCESSES).",
        )
        parser.add_argument(
            "--no-beat",
            action="store_true",
            help="Do not start Celery beat (e.g. when another machine runs the one beat; set "
            "SCHEDULER_REQUIRED=false if no beat runs anywhere, or /health/ready says not ready).",
        )
        parser.add_argument(
            "--max-restart-delay",
            type=float,
            default=60.0,
            help="Longest wait, in seconds, before restarting a process that keeps exiting "
            "(the wait starts at 1 s and doubles).",
        )
        parser.add_argument(
            "--stop-timeout",
            type=float,
            default=DEFAULT_STOP_TIMEOUT_SECONDS,
            help="Seconds to let processes finish on Ctrl-C before killing them (default "
            f"{DEFAULT_STOP_TIMEOUT_SECONDS:g}; work a killed worker had in hand is run again at "
            "the next start).",
        )

    def handle(self, *args, **options) -> None:
        host: str = options["host"]
        port: int = options["port"]
        if options["concurrency"] < 1:
            raise CommandError("--workers/--concurrency must be at least 1.")
        if options["web_processes"] < 1:
            raise CommandError("--web-processes must be at least 1.")
        if not _can_bind(host, port):
            raise CommandError(f"Port {port} on {host} is in use; choose another with --port.")
        if _configured_redis_url():
            _require_redis(_configured_redis_url())
        var_dir = Path(settings.VAR_DIR)
        self._make_folders(var_dir)

        supervisor = Supervisor(
            env=self._child_env(),
            cwd=str(settings.BASE_DIR),
            restart_delay=min(1.0, options["max_restart_delay"]),
            max_restart_delay=options["max_restart_delay"],
            report=self._report,
        )
        try:
            # Redis before the database is prepared: seeding the agents tells every process's
            # caches through it, which fails (with a warning) while nothing listens.
            redis_url = self._redis(supervisor, var_dir)
            try:
                system_prepare(stdout=self.stdout, verbosity=options["verbosity"])
            except KeyboardInterrupt:
                raise CommandError("Interrupted while preparing the database.") from None
            login = local_admin_ensure(password_file=var_dir / "admin-password.txt")
            supervisor.install_signal_handlers()
            outcome = self._run(supervisor, options, login, redis_url)
        finally:
            stop_began = time.monotonic()
            killed = self._shutdown(supervisor, options["stop_timeout"])
            supervisor.restore_signal_handlers()

        took = time.monotonic() - stop_began
        if not killed:
            self.stdout.write(
                self.style.SUCCESS(f"Stopped cleanly ({outcome.signal_name}) in {took:.1f} s.")
            )
            return
        names = ", ".join(f"{child.name} (pid {child.pid})" for child in killed)
        why = (
            "as a second Ctrl-C asked"
            if supervisor.force_requested.is_set()
            else f"which did not stop within {options['stop_timeout']:g} s"
        )
        self.stdout.write(
            self.style.WARNING(
                f"Stopped ({outcome.signal_name}) in {took:.1f} s after killing {names}, {why}. "
                "Work a killed worker had in hand is run again at the next start."
            )
        )

    # --- the run -------------------------------------------------------------------------------
    def _run(
        self, supervisor: Supervisor, options: dict, login: LocalLogin, redis_url: str
    ) -> Exit:
        host, port = options["host"], options["port"]
        env = cast(dict[str, str], supervisor.env)  # handle() gave the supervisor one
        env["REDIS_URL"] = redis_url
        # Tools must never reach the web port this system serves on (see tools.netguard).
        env["APP_PORTS"] = str(port)

        python = sys.executable
        try:
            listeners = listening_sockets(host, port, options["web_processes"])
        except OSError as error:
            raise CommandError(f"Cannot listen on {host}:{port}: {error}") from None
        sharing = len(listeners) > 1
        try:
            for number, listener in enumerate(listeners, start=1):
                first = [listener]
                supervisor.launch(
                    f"web-{number}",
                    functools.partial(self._start_web, supervisor, host, port, sharing, first),
                )
        finally:
            for listener in listeners:  # the web processes hold their own copies
                listener.close()
        supervisor.start(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(options["concurrency"]),
                "--loglevel",
                settings.LOG_LEVEL,
            ],
        )
        if not options["no_beat"]:
            supervisor.start(
                "beat",
                [python, "-m", "celery", "-A", "config", "beat", "--loglevel", settings.LOG_LEVEL],
            )

        health_url = f"http://{_url_host(host)}:{port}/health"
        try:
            early_exit = supervisor.wait_until(
                lambda: _answers(health_url), timeout=WEB_READY_TIMEOUT_SECONDS, poll_seconds=0.2
            )
        except TimeoutError:
            raise CommandError(
                f"The web server did not answer {health_url} within "
                f"{WEB_READY_TIMEOUT_SECONDS:.0f} s."
            ) from None
        if early_exit is not None:
            return early_exit
        self._print_banner(options, login, redis_url)
        return supervisor.wait()

    def _start_web(
        self,
        supervisor: Supervisor,
        host: str,
        port: int,
        sharing: bool,
        first: list[socket.socket],
    ) -> subprocess.Popen:
        """One daphne process on its own listening socket: the one made at start, or a new one
        on the same port for a restart (SO_REUSEPORT lets it sit beside the others')."""
        listener = first.pop() if first else listening_socket(host, port, share=sharing)
        try:
            fd = listener.fileno()
            return supervisor.popen(daphne_args(fd, sys.executable), pass_fds=(fd,))
        finally:
            listener.close()  # the web process holds its own copy

    def _report(self, message: str) -> None:
        self.stderr.write(message)
        self.stderr.flush()

    def _redis(self, supervisor: Supervisor, var_dir: Path) -> str:
        """The Redis URL for the children: REDIS_URL when set, else an embedded server."""
        configured = _configured_redis_url()
        if configured:
            self.stdout.write(f"Using the Redis server at {_masked(configured)} (REDIS_URL).")
            return configured
        port, taken = embedded_port_choose(var_dir)
        if taken is not None:
            self.stderr.write(
                f"Port {taken} is taken (another Redis?); the embedded Redis uses port {port}, "
                f"recorded in {port_file(var_dir)} for other manage.py commands."
            )

        def launch() -> subprocess.Popen:
            return start_redis(var_dir / "redis", port, **child_popen_options())

        try:
            process = launch()
        except (FileNotFoundError, TimeoutError) as error:
            raise CommandError(f"Could not start the embedded Redis: {error}") from None
        supervisor.adopt("redis", process, launch=launch)
        return f"redis://127.0.0.1:{port}/0"

    def _shutdown(self, supervisor: Supervisor, timeout: float) -> list:
        """Stop every child; returns those that had to be killed."""
        if not supervisor.children:
            return []
        web = [child.name for child in supervisor.children if child.name.startswith("web-")]
        killed = []
        if web or any(child.name in APP_PROCESSES for child in supervisor.children):
            self.stdout.write("Stopping web, worker and beat… (Ctrl-C again to kill them at once)")
            self.stdout.flush()
            killed = supervisor.stop([*web, *APP_PROCESSES], timeout=timeout)
        # Redis last, so the others can finish talking to it.
        killed += supervisor.stop(["redis"], timeout=REDIS_STOP_TIMEOUT_SECONDS)
        return killed

    # --- helpers -------------------------------------------------------------------------------
    def _make_folders(self, var_dir: Path) -> None:
        var_dir.mkdir(parents=True, exist_ok=True)
        Path(settings.ARTIFACTS_DIR).mkdir(parents=True, exist_ok=True)
        if connection.vendor == "sqlite":
            Path(settings.DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _print_banner(self, options: dict, login: LocalLogin, redis_url: str) -> None:
        base = f"http://{_url_host(options['host'])}:{options['port']}"
        processes = f"web, worker ({options['concurrency']} threads)"
        if not options["no_beat"]:
            processes += ", beat"
        if login.password is not None:
            login_line = f"{login.username} / {login.password}"
        else:
            login_line = (
                f"{login.username} (your own password; reset it with "
                f"`manage.py changepassword {login.username}`)"
            )
        rule = "─" * 72
        lines = [
            rule,
            f" Async Agent is running: {processes}; Redis at {_masked(redis_url)}",
            "",
            f"   Web UI      {base}/   (log in with the login below)",
            f"   API         {base}/api/v1/",
            f"   API docs    {base}/api/docs/",
            f"   Admin       {base}/admin/",
            f"   Health      {base}/health/ready",
            "",
            f"   Login       {login_line}",
            f"   API token   {login.token}",
            "",
            f'   curl -H "Authorization: Token {login.token}" {base}/api/v1/goals',
            "",
        ]
        notes = [_llm_warning()]
        if _local_host(options["host"]) not in ("127.0.0.1", "localhost", "::1"):
            notes.append("other machines reach it only by a host name listed in ALLOWED_HOSTS.")
        lines += [f"   Note: {note}" for note in notes if note]
        lines += [" Press Ctrl-C to stop.", rule]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()


def _can_bind(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As servers do: a socket left in TIME_WAIT by the last run does not block the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# Straight to the local server, whatever HTTP(S)_PROXY says.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str) -> bool:
    """Whether the web server answers `url` with a 200 (its first answer loads every view)."""
    try:
        with _DIRECT.open(url, timeout=5) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


def _local_host(host: str) -> str:
    """Where this machine reaches the server bound to `host`."""
    if host in WILDCARD_HOSTS:
        return "127.0.0.1"
    return host


def _url_host(host: str) -> str:
    local = _local_host(host)
    return f"[{local}]" if ":" in local else local


def _masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _configured_redis_url() -> str:
    """REDIS_URL from the environment or `.env` (which settings copied into the environment)."""
    return os.environ.get("REDIS_URL", "").strip()


def _require_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        raise CommandError(
            f"Cannot reach Redis at {_masked(url)} ({error}). Start it, or unset REDIS_URL to "
            "use the embedded Redis."
        ) from None
    finally:
        client.close()


def _llm_warning() -> str | None:
    try:
        provider = canonical_provider(settings.LLM_PROVIDER)
    except UnknownProvider:
        return f"LLM_PROVIDER={settings.LLM_PROVIDER!r} is not a known provider."
    if provider_configured(provider):
        return None
    key = "OPENROUTER_API_KEY" if provider == "openrouter" else "OPENAI_API_KEY"
    return f"no {key} is set, so agents cannot call the LLM yet (see .env.example)."
