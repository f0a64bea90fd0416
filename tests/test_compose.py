"""docker-compose.yml and the Dockerfile name real modules, commands, files and volumes.

No Docker engine runs here, so these checks read both files and resolve every reference
against the code: the ASGI application, the Celery app, management commands, copied files,
service names in URLs, healthchecks, ports and volumes.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(settings.BASE_DIR)
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` with the given environment."""
    env = env or {}

    def replace(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            return f"required-{name.lower()}"
        return ""

    return VARIABLE.sub(replace, value).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def app_services(services) -> dict:
    """The services that run this project's image."""
    return {name: service for name, service in services.items() if "build" in service}


@pytest.fixture(scope="module")
def workers(app_services) -> dict:
    return {
        name: service
        for name, service in app_services.items()
        if command_of(service)[:1] == ["celery"] and "worker" in command_of(service)
    }


def command_of(service: dict) -> list[str]:
    command = service["command"]
    assert isinstance(command, list), "use the exec form, so signals reach the process"
    return [interpolate(str(part)) for part in command]


def option(args: list[str], *names: str) -> str:
    for index, arg in enumerate(args):
        if arg in names:
            return args[index + 1]
    raise AssertionError(f"none of {names} in {args}")


def test_the_workers_together_consume_every_queue_tasks_are_routed_to(workers):
    """A queue no worker service consumes would strand its tasks."""
    from config.celery import app

    all_queues = set(app.amqp.queues)
    consumed: set[str] = set()
    for service in workers.values():
        args = command_of(service)
        named = next((args[i + 1] for i, arg in enumerate(args) if arg in ("-Q", "--queues")), None)
        consumed |= set(named.split(",")) if named else all_queues
    routed = {
        app.amqp.router.route({}, name)["queue"].name
        for name in app.tasks
        if not name.startswith("celery.")
    }
    assert routed <= all_queues
    assert consumed == all_queues


def test_postgres_takes_as_many_connections_as_the_services_may_open(services, workers):
    """Each busy thread holds a database connection (docs/operations.md): web threads, worker
    threads and their node threads, a few housekeeping threads per worker, beat."""
    worker_threads = 0
    for service in workers.values():
        args = command_of(service)
        queues = next((args[i + 1] for i, arg in enumerate(args) if arg in ("-Q", "--queues")), "")
        serves_nodes = not queues or "nodes" in queues.split(",")
        concurrency = int(option(args, "-c", "--concurrency"))
        worker_threads += concurrency + 4 + (settings.WORKER_NODE_THREADS if serves_nodes else 0)
    web_threads = settings.WEB_THREADS + 4
    needed = worker_threads + web_threads + 1
    command = command_of(services["postgres"])
    assert command[:1] == ["postgres"]
    allowed = int(option(command, "-c").removeprefix("max_connections="))
    assert needed <= allowed, (needed, allowed)


def test_web_serves_the_asgi_application_with_daphne(services):
    args = command_of(services["web"])
    # daphne, through the entry point that caps request bodies before reading them.
    assert args[:3] == ["python", "-m", "config.daphne_server"]
    module_name, attribute = args[-1].split(":")
    application = getattr(importlib.import_module(module_name), attribute)
    assert callable(application)
    assert f"{module_name}.{attribute}" == settings.ASGI_APPLICATION
    port = option(args, "-p", "--port")
    assert option(args, "-b", "--bind") == "0.0.0.0"
    published = [interpolate(str(mapping)) for mapping in services["web"]["ports"]]
    assert any(mapping.endswith(f":{port}") for mapping in published), published
    healthcheck = " ".join(services["web"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/health" in healthcheck
    assert "127.0.0.1" in settings.ALLOWED_HOSTS  # the healthcheck's Host header


def test_celery_services_name_the_project_app(services, workers):
    for name in [*workers, "beat"]:
        args = command_of(services[name])
        assert args[0] == "celery"
        app = find_app(option(args, "-A", "--app"))
        assert isinstance(app, Celery)
        assert app.main == "async_agent"
        assert args[args.index(option(args, "-A", "--app")) + 1] in ("worker", "beat")


def test_there_is_exactly_one_beat_on_the_database_scheduler(services):
    beat = services["beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    args = command_of(beat)
    assert "-S" not in args and "--scheduler" not in args  # the one from settings
    from django.utils.module_loading import import_string
    from django_celery_beat.schedulers import DatabaseScheduler

    scheduler = import_string(settings.CELERY_BEAT_SCHEDULER.replace(":", "."))
    assert issubclass(scheduler, DatabaseScheduler)
    for name, service in services.items():
        if name != "beat" and "command" in service:
            assert "beat" not in command_of(service), name


def test_migrate_runs_a_real_management_command_before_the_others(services, app_services):
    args = command_of(services["migrate"])
    assert args[:2] == ["python", "manage.py"]
    assert args[2] in get_commands()
    assert services["migrate"]["restart"] == "no"
    for name in set(app_services) - {"migrate"}:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_dependencies_wait_for_healthy_services(services):
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency


def test_urls_point_at_the_compose_services(services, app_services):
    postgres_env = {
        key: interpolate(str(value)) for key, value in services["postgres"]["environment"].items()
    }
    for name in app_services:
        env = {
            key: interpolate(str(value)) for key, value in app_services[name]["environment"].items()
        }
        database = urlsplit(env["DATABASE_URL"])
        assert database.scheme in ("postgres", "postgresql")
        assert database.hostname == "postgres" and (database.port or 5432) == 5432
        assert database.username == postgres_env["POSTGRES_USER"]
        assert database.password == postgres_env["POSTGRES_PASSWORD"]
        assert database.path.lstrip("/") == postgres_env["POSTGRES_DB"]
        redis_url = urlsplit(env["REDIS_URL"])
        assert redis_url.hostname == "redis" and redis_url.port == 6379
        assert "redis-server" in command_of(services["redis"])
        assert env["SECRET_KEY"]


def test_volumes_are_declared_and_artifacts_are_shared(compose, services, app_services):
    declared = set(compose["volumes"])
    used = set()
    for service in services.values():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used == declared
    assert services["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    for name in app_services:
        artifacts_dir = interpolate(services[name]["environment"]["ARTIFACTS_DIR"])
        assert f"artifacts:{artifacts_dir}" in app_services[name]["volumes"], name


def test_settings_read_every_variable_compose_sets(app_services):
    source = (ROOT / "config" / "settings.py").read_text()
    for name in app_services:
        for key in app_services[name]["environment"]:
            assert f'"{key}"' in source, key


# --- Dockerfile ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def instructions(dockerfile: list[str], keyword: str) -> list[str]:
    return [line[len(keyword) :].strip() for line in dockerfile if line.startswith(keyword + " ")]


def test_dockerfile_copies_files_that_exist(dockerfile):
    ignored = (ROOT / ".dockerignore").read_text().split()
    for copy in instructions(dockerfile, "COPY"):
        *sources, _target = copy.split()
        for source in sources:
            assert source == "." or (ROOT / source).exists(), source
            assert source not in ignored, source
    for must_ignore in (".venv", ".env", "var", ".git"):
        assert must_ignore in ignored


def test_dockerfile_default_command_is_the_web_command(dockerfile, services):
    (cmd,) = instructions(dockerfile, "CMD")
    assert yaml.safe_load(cmd) == command_of(services["web"])


def test_image_has_the_programs_the_services_run():
    """`--no-dev` keeps only the main dependencies: they must provide every program used."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    main = " ".join(project["dependencies"])
    for package in ("daphne", "celery", "psycopg", "django-celery-beat", "whitenoise"):
        assert package in main, package
    scripts = {entry.name for entry in entry_points(group="console_scripts")}
    assert {"daphne", "celery"} <= scripts
