"""Settings, read from the environment (and a `.env` file at the project root).

Every variable is documented with its default in `.env.example`.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config.embedded_redis import default_redis_url

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if not env.bool("ASYNC_AGENT_SKIP_DOTENV", default=False):
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Core ---------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-change-me-0f6f1d0e8f9a4b7c")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# JSON under /api/, Django's page elsewhere.
CSRF_FAILURE_VIEW = "config.views.csrf_failure"
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "channels",
    "axes",
    "django_htmx",
    "agents",
    "goals",
    "runs",
    "dags",
    "tools",
    "artifacts",
    "ops",
    "ui",
]

MIDDLEWARE = [
    # First, so that everything after it (and every task the request sends) logs its id.
    "config.logs.request_id_middleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.static.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
# API paths have no trailing slashes (docs/api-differences.md); never redirect to add one.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
# SQLite by default (WAL, busy timeout, immediate transactions so writers queue instead of
# failing with "database is locked"); PostgreSQL through DATABASE_URL.
SQLITE_PATH = Path(env.str("SQLITE_PATH", default=str(VAR_DIR / "db.sqlite3")))
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": env.int("SQLITE_BUSY_TIMEOUT_SECONDS", default=30),
            "transaction_mode": "IMMEDIATE",
            "init_command": (
                "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=ON;"
            ),
        }
    )
    if env.str("SQLITE_TEST_PATH", default=""):
        # A file (not :memory:) so that worker processes started by the tests share it.
        DATABASES["default"]["TEST"] = {"NAME": env.str("SQLITE_TEST_PATH")}
# Persistent connections: closing a SQLite connection checkpoints the WAL (slow), and
# PostgreSQL connections are costly to open.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=600))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ---------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The browser UI's own login page (the admin and the API docs use it too).
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# Password logins (admin, browser UI) are rate limited by django-axes: after
# LOGIN_FAILURE_LIMIT failures for one username from one IP address, that pair is locked out
# (HTTP 429, even with the right password) for LOGIN_COOLOFF_MINUTES; a success resets the
# count; `manage.py axes_reset` lifts every lockout. Token authentication never goes through
# these backends, so API clients are unaffected.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_COOLOFF_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The API needs a token or a session unless a trusted local set-up opts out.
API_AUTH_REQUIRED = env.bool("API_AUTH_REQUIRED", default=True)
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="600/min")

# --- I18N / time --------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static -------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# --- Redis, cache, channels ---------------------------------------------------------------------
# Without REDIS_URL, the embedded Redis that `start_all` runs, on the port it recorded in var/.
REDIS_URL = env.str("REDIS_URL", default=default_redis_url(VAR_DIR))
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "aa",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}
# No Channels layer: live events travel on Redis pub/sub directly (config/live_events/), and
# nothing else sends to consumers.
# The pool of this process's own Redis client (config/shared_redis.py: the API throttle's
# counters), shared by every request thread. A burst of requests waits briefly for a free
# connection instead of failing with "Too many connections".
CACHE_REDIS_MAX_CONNECTIONS = env.int("CACHE_REDIS_MAX_CONNECTIONS", default=64)
CACHE_REDIS_POOL_TIMEOUT_SECONDS = env.float("CACHE_REDIS_POOL_TIMEOUT_SECONDS", default=2.0)

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# Results are off for every task except those that set ignore_result=False (dag-experiments
# waits for its planning group); they live in Redis only until read, at most an hour.
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# django-celery-beat's DatabaseScheduler, disabling (not dying on) a row it cannot schedule and
# recording a heartbeat in the database on each tick.
CELERY_BEAT_SCHEDULER = "goals.beat:GuardedDatabaseScheduler"
SCHEDULER_HEARTBEAT_SECONDS = env.float("SCHEDULER_HEARTBEAT_SECONDS", default=10.0)
# /health/ready is not ready when beat has not ticked for this long. Set SCHEDULER_REQUIRED=false
# where no beat runs at all (schedules then never fire; readiness stops asking).
SCHEDULER_STALE_SECONDS = env.float("SCHEDULER_STALE_SECONDS", default=60.0)
SCHEDULER_REQUIRED = env.bool("SCHEDULER_REQUIRED", default=True)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_WORKER_POOL = env.str("CELERY_WORKER_POOL", default="threads")
# Threads per worker process. Nodes and runs spend nearly all their time waiting on LLM and HTTP
# calls, so threads are cheap and a 20-wide fan-out should not wait for a free one. Each busy
# thread holds one database connection: two such workers plus web and beat stay under
# PostgreSQL's default max_connections (100); see docs/operations.md before raising it there.
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=32)
# One message per thread at a time: a long node cannot hold others back in this worker's buffer.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup would close each thread's database connection around every task;
# config/celery.py applies CONN_MAX_AGE instead (this only turns the fixup's closing off).
CELERY_DB_REUSE_MAX = 10**9
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Named queues, so that one kind of work cannot hold up another: minutes-long goal runs queue
# apart from DAG nodes. A worker started without `-Q` consumes every queue listed here;
# docs/operations.md shows how to give each queue workers of its own.
CELERY_TASK_QUEUES = [
    Queue(name, routing_key=name) for name in ("nodes", "runs", "planning", "housekeeping")
]
CELERY_TASK_DEFAULT_QUEUE = "housekeeping"
CELERY_TASK_ROUTES = {
    "dags.run_sub_step": {"queue": "nodes"},
    "dags.run_sub_steps": {"queue": "nodes"},
    "runs.run_goal": {"queue": "runs"},
    "runs.deliver_run_webhook": {"queue": "runs"},
    "dags.plan_experiment": {"queue": "planning"},
    "dags.sweep_stalled_nodes": {"queue": "housekeeping"},
    "runs.sweep_stalled_runs": {"queue": "housekeeping"},
    # Schedule ticks only start a run or an execution, whose own tasks go to their queues.
    "goals.*": {"queue": "housekeeping"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Above the hard time limit, so a long task is never redelivered while still running.
    "visibility_timeout": CELERY_TASK_TIME_LIMIT + 15 * 60,
    "socket_connect_timeout": 5,
}
DJANGO_CELERY_BEAT_TZ_AWARE = True
# Every worker process checks this often that ready work has a message in the broker
# (config/dispatcher.py): work resumes within about this long of the broker being back.
DISPATCH_INTERVAL_SECONDS = env.float("DISPATCH_INTERVAL_SECONDS", default=2.0)
EXECUTION_SWEEP_SECONDS = env.float("EXECUTION_SWEEP_SECONDS", default=30.0)
CELERY_BEAT_SCHEDULE = {
    "sweep-stalled-nodes": {
        "task": "dags.sweep_stalled_nodes",
        "schedule": EXECUTION_SWEEP_SECONDS,
    },
    "sweep-stalled-runs": {
        "task": "runs.sweep_stalled_runs",
        "schedule": EXECUTION_SWEEP_SECONDS,
    },
}

# --- DAG execution ------------------------------------------------------------------------------
# Nodes of one execution running or queued at once. A fairness bound between executions, not a
# copy of the pool size: nodes beyond the workers' free threads simply wait in the queue.
EXECUTION_MAX_PARALLEL_NODES = env.int("EXECUTION_MAX_PARALLEL_NODES", default=64)
# Nodes that become ready together (the first of a fan-out) travel in messages of up to this
# many, as even as possible: the worker that takes one claims its nodes in one transaction and
# starts them at once, on its thread and on node threads. 1 sends a message per node.
EXECUTION_NODES_PER_MESSAGE = env.int("EXECUTION_NODES_PER_MESSAGE", default=16)
# Threads per worker process for the nodes of such a message beyond the first, made as needed.
# A message takes only as many nodes as there are threads free and sends the rest on, a message
# each. Like the worker's own threads, each keeps a database connection once used.
WORKER_NODE_THREADS = env.int("WORKER_NODE_THREADS", default=32)
# A running node's lease is renewed every heartbeat by its worker; a node whose lease lapsed
# lost its worker and is sent to another one by the next dispatcher pass (so within about
# NODE_LEASE_SECONDS + DISPATCH_INTERVAL_SECONDS of the worker's death).
NODE_LEASE_SECONDS = env.float("NODE_LEASE_SECONDS", default=10.0)
NODE_HEARTBEAT_SECONDS = env.float("NODE_HEARTBEAT_SECONDS", default=2.0)
NODE_MAX_ATTEMPTS = env.int("NODE_MAX_ATTEMPTS", default=3)
NODE_DISPATCH_STALE_SECONDS = env.float("NODE_DISPATCH_STALE_SECONDS", default=600.0)
NODE_DEPENDENCY_RESULT_CHARS = env.int("NODE_DEPENDENCY_RESULT_CHARS", default=2000)
NODE_ERROR_MAX_CHARS = env.int("NODE_ERROR_MAX_CHARS", default=4000)
SYNTHESIS_AGENT_NAME = env.str("SYNTHESIS_AGENT_NAME", default="Synthesizer")
SYNTHESIS_RESULT_CHARS = env.int("SYNTHESIS_RESULT_CHARS", default=8000)
SYNTHESIS_TOTAL_CHARS = env.int("SYNTHESIS_TOTAL_CHARS", default=60000)
# How long POST /dag-experiments waits for its parallel planning runs.
DAG_EXPERIMENTS_TIMEOUT_SECONDS = env.float("DAG_EXPERIMENTS_TIMEOUT_SECONDS", default=600.0)

# --- CORS ---------------------------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
if DEBUG:
    # The original web app's dev servers.
    CORS_ALLOWED_ORIGINS += ["http://localhost:5173", "http://localhost:5174"]
CORS_ALLOW_CREDENTIALS = True
CORS_EXPOSE_HEADERS = [
    "Content-Type",
    "Cache-Control",
    "Retry-After",
    # the run list's paging (its body is a bare array)
    "X-Total-Count",
    "X-Limit",
    "X-Offset",
    "Link",
]

# --- REST framework -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.api.authentication.TokenOrBearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["config.api.permissions.ApiAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["config.api.throttles.PerUserThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": API_THROTTLE_RATE},
    "DEFAULT_RENDERER_CLASSES": ["config.api.renderers.JsonRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.api.negotiation.DefaultRenderingNegotiation",
    "DEFAULT_PARSER_CLASSES": [
        "config.api.parsers.LimitedJsonParser",
        "config.api.parsers.PlainTextParser",
    ],
    "EXCEPTION_HANDLER": "config.api.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
API_JSON_BODY_LIMIT = 1024 * 1024

SPECTACULAR_SETTINGS = {
    "TITLE": "Async Agent API",
    "DESCRIPTION": (
        "Runs LLM agents in the background: goals with runs, versioned agents, planned DAGs "
        "executed on Celery workers, tools, artifacts and costs. Authenticate with "
        "`Authorization: Token <token>` (or `Bearer <token>`).\n\n"
        "**Who may do what.** Goals, runs, DAGs, executions, their costs, event streams and "
        "artifact files belong to the user who made them (runs to their goal's owner, "
        "scheduled work to the schedule's owner). Regular users see and change only their own; "
        "staff users see and change everything. Another user's row answers 404 exactly like a "
        "missing one. Lists and `/costs/summary` cover only what the caller may see. Agents "
        "and tools are readable by every user; creating, changing, activating or deleting an "
        "agent needs the Django model permission (`agents.add_agent`, `agents.change_agent`, "
        "`agents.delete_agent`; the 'Agent managers' group has them), else 403. With "
        "`API_AUTH_REQUIRED=false`, requests without a token act as the first superuser."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.schema.mark_blank_query_parameters",
        "config.api.schema.add_streaming_endpoints",
        "config.api.schema.add_error_responses",
        "config.api.schema.add_request_examples",
    ],
    # Bodies are JSON (and multipart for /task). text/plain is parsed only for older
    # clients, into a string that no endpoint accepts, so it is not offered as a body format.
    "PARSER_WHITELIST": [
        "config.api.parsers.LimitedJsonParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "ENUM_NAME_OVERRIDES": {
        "GoalStatusEnum": ["active", "paused", "archived"],
        "RunStatusEnum": ["pending", "running", "completed", "failed"],
        "ExecutionStatusEnum": [
            "pending",
            "running",
            "waiting",
            "completed",
            "failed",
            "partial",
            "suspended",
            "cancelled",
        ],
        "SubStepStatusEnum": ["pending", "running", "waiting", "completed", "failed", "cancelled"],
        "ReadinessStatusEnum": ["ready", "degraded", "unavailable", "not ready"],
    },
}

# --- Application --------------------------------------------------------------------------------
ARTIFACTS_DIR = Path(env.str("ARTIFACTS_DIR", default=str(BASE_DIR / "artifacts_data")))
MAX_MESSAGE_LENGTH = env.int("MAX_MESSAGE_LENGTH", default=10000)
DEFAULT_STEP_BUDGET = env.int("DEFAULT_STEP_BUDGET", default=20)
MAX_CONCURRENT_RUNS = env.int("MAX_CONCURRENT_RUNS", default=3)
# Goal runs (runs/loop.py): a running run's lease is renewed by its worker; a lapsed lease means
# the worker died and the run is marked failed, so it never blocks MAX_CONCURRENT_RUNS.
RUN_LEASE_SECONDS = env.float("RUN_LEASE_SECONDS", default=10.0)
RUN_HEARTBEAT_SECONDS = env.float("RUN_HEARTBEAT_SECONDS", default=2.0)
# A pending run whose message could not be sent (or whose caller never ran it) is sent again by
# the dispatcher after this long.
RUN_UNSENT_GRACE_SECONDS = env.float("RUN_UNSENT_GRACE_SECONDS", default=10.0)
# A pending run not picked up for this long has lost its queue message and is queued again.
RUN_DISPATCH_STALE_SECONDS = env.float("RUN_DISPATCH_STALE_SECONDS", default=600.0)
# Bounds of what the step loop sends to the model (characters).
RUN_CONTEXT_MAX_CHARS = env.int("RUN_CONTEXT_MAX_CHARS", default=60000)
RUN_TOOL_RESULT_MAX_CHARS = env.int("RUN_TOOL_RESULT_MAX_CHARS", default=8000)
RUN_WORKING_MEMORY_MAX_CHARS = env.int("RUN_WORKING_MEMORY_MAX_CHARS", default=6000)
RUN_MEMORY_NOTES = env.int("RUN_MEMORY_NOTES", default=5)
RUN_WEBHOOK_ATTEMPTS = env.int("RUN_WEBHOOK_ATTEMPTS", default=4)
# How many recent schedule ticks (started/skipped/failed) are kept per schedule.
SCHEDULE_TICKS_KEPT = env.int("SCHEDULE_TICKS_KEPT", default=100)
LLM_PROVIDER = env.str("LLM_PROVIDER", default="openai")
LLM_MODEL = env.str("LLM_MODEL", default="gpt-4o-mini")
OPENAI_MODEL = env.str("OPENAI_MODEL", default="")
OPENROUTER_MODEL = env.str("OPENROUTER_MODEL", default="")
OLLAMA_MODEL = env.str("OLLAMA_MODEL", default="")
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENROUTER_API_KEY = env.str("OPENROUTER_API_KEY", default="")
HEALTH_CACHE_SECONDS = env.float("HEALTH_CACHE_SECONDS", default=5.0)
HEALTH_CHECK_TIMEOUT_SECONDS = env.float("HEALTH_CHECK_TIMEOUT_SECONDS", default=1.0)
# Each worker records a heartbeat in Redis this often (config/workers.py); /health/ready is not
# ready when no worker's is younger than WORKER_HEARTBEAT_STALE_SECONDS. Entries older than
# WORKER_HEARTBEAT_KEEP_SECONDS are dropped (until then the system page shows them as stale).
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=5.0)
WORKER_HEARTBEAT_STALE_SECONDS = env.float("WORKER_HEARTBEAT_STALE_SECONDS", default=20.0)
WORKER_HEARTBEAT_KEEP_SECONDS = env.float("WORKER_HEARTBEAT_KEEP_SECONDS", default=3600.0)
# Idle SSE streams send a `: heartbeat` comment this often, so proxies keep them open.
SSE_HEARTBEAT_SECONDS = env.float("SSE_HEARTBEAT_SECONDS", default=15.0)
# Requests a web process runs at once (config/asgi_http.py): each has a thread of the process's
# pool while it runs, and the threads keep their database connections. The event streams do
# not count (they run on the event loop).
WEB_THREADS = env.int("WEB_THREADS", default=32)
# daphne processes that ./scripts/start runs on the one port (one core each; at most 4 by default).
WEB_PROCESSES = env.int("WEB_PROCESSES", default=max(1, min(os.cpu_count() or 1, 4)))

# --- LLM providers (agents/llm) -------------------------------------------------------------------
# Each provider is reached through its OpenAI-compatible endpoint with the `openai` SDK.
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="https://api.openai.com/v1")
OPENROUTER_BASE_URL = env.str("OPENROUTER_BASE_URL", default="https://openrouter.ai/api/v1")
# Ollama's OpenAI-compatible API lives under /v1 (added when a bare host URL is given).
OLLAMA_BASE_URL = env.str("OLLAMA_BASE_URL", default="http://localhost:11434/v1")
DEFAULT_MAX_TOKENS = env.int("DEFAULT_MAX_TOKENS", default=10000)
DEFAULT_TEMPERATURE = env.float("DEFAULT_TEMPERATURE", default=0.7)
DEFAULT_REASONING_EFFORT = env.str("DEFAULT_REASONING_EFFORT", default="medium")
LLM_REQUEST_TIMEOUT_SECONDS = env.float("LLM_REQUEST_TIMEOUT_SECONDS", default=120.0)
# Retries of 429/5xx/timeouts/connection errors: at most this many after the first attempt,
# and never past LLM_RETRY_MAX_SECONDS since the first attempt started.
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=4)
LLM_RETRY_MAX_SECONDS = env.float("LLM_RETRY_MAX_SECONDS", default=90.0)
LLM_RETRY_BASE_DELAY_SECONDS = env.float("LLM_RETRY_BASE_DELAY_SECONDS", default=1.0)
LLM_RETRY_MAX_DELAY_SECONDS = env.float("LLM_RETRY_MAX_DELAY_SECONDS", default=30.0)
# A JSON price table (USD per million tokens) laid over the bundled agents/llm/prices.json;
# `manage.py refresh_llm_prices` writes OpenRouter's prices into it.
LLM_PRICES_FILE = env.str("LLM_PRICES_FILE", default=str(VAR_DIR / "llm-prices.json"))

# --- POST /api/v1/task uploads --------------------------------------------------------------------
TASK_MAX_FILE_BYTES = env.int("TASK_MAX_FILE_BYTES", default=10 * 1024 * 1024)
TASK_MAX_REQUEST_BYTES = env.int("TASK_MAX_REQUEST_BYTES", default=25 * 1024 * 1024)
TASK_MAX_FILES = env.int("TASK_MAX_FILES", default=20)

# --- Tools --------------------------------------------------------------------------------------
# Host names (or addresses) tools may reach even when they resolve to private addresses, with
# an optional port (`127.0.0.1:8081`) limiting the entry to it; `.example.internal` also allows
# sub-domains. Empty: only public addresses.
TOOLS_ALLOWED_HOSTS = env.list("TOOLS_ALLOWED_HOSTS", default=[])
# This service's web ports: tools never reach them (nor Redis) on a non-public address, even
# when allow-listed. `manage.py start_all` sets it for its processes to the port it serves on.
APP_PORTS = env.list("APP_PORTS", cast=int, default=[8000])
TOOL_TIMEOUT_SECONDS = env.float("TOOL_TIMEOUT_SECONDS", default=60.0)
TOOLS_FETCH_TIMEOUT_SECONDS = env.float("TOOLS_FETCH_TIMEOUT_SECONDS", default=15.0)
TOOLS_FETCH_MAX_BYTES = env.int("TOOLS_FETCH_MAX_BYTES", default=10 * 1024 * 1024)
TOOLS_FETCH_CONCURRENCY = env.int("TOOLS_FETCH_CONCURRENCY", default=4)
TOOLS_FETCH_MAX_URLS = env.int("TOOLS_FETCH_MAX_URLS", default=20)
TOOLS_FILE_MAX_BYTES = env.int("TOOLS_FILE_MAX_BYTES", default=10 * 1024 * 1024)
# Extra trusted CA certificates (PEM file) for https requests made by tools, e.g. an internal CA.
TOOLS_CA_BUNDLE = env.str("TOOLS_CA_BUNDLE", default="")
WEBHOOK_SECRET = env.str("WEBHOOK_SECRET", default="")
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
TOOLS_RETRY_BACKOFF_SECONDS = env.float("TOOLS_RETRY_BACKOFF_SECONDS", default=1.0)
WEBHOOK_RESPONSE_MAX_BYTES = env.int("WEBHOOK_RESPONSE_MAX_BYTES", default=1024 * 1024)
# webSearch: `duckduckgo` (HTML results page) or `searxng` (its JSON API).
WEB_SEARCH_BACKEND = env.str("WEB_SEARCH_BACKEND", default="duckduckgo").strip().lower()
SEARXNG_BASE_URL = env.str("SEARXNG_BASE_URL", default="")
# Overrides the chosen backend's base URL (for DuckDuckGo: https://html.duckduckgo.com).
WEB_SEARCH_BASE_URL = env.str("WEB_SEARCH_BASE_URL", default="")
WEB_SEARCH_TIMEOUT_SECONDS = env.float("WEB_SEARCH_TIMEOUT_SECONDS", default=10.0)

# --- E-mail (sendEmail tool, goal-run e-mails) ---------------------------------------------------
# Django's names win; SMTP_* names (older deployments' .env files) are accepted as fallbacks.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default=env.str("SMTP_HOST", default=""))
EMAIL_PORT = env.int("EMAIL_PORT", default=env.int("SMTP_PORT", default=587))
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default=env.str("SMTP_USER", default=""))
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default=env.str("SMTP_PASS", default=""))
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=EMAIL_PORT == 465)
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=EMAIL_PORT == 587 and not EMAIL_USE_SSL)
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=30.0)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=env.str("SMTP_FROM", default=""))
EMAIL_MAX_ATTACHMENT_BYTES = env.int("EMAIL_MAX_ATTACHMENT_BYTES", default=20 * 1024 * 1024)

# --- Logging ------------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
# `text` for people, `json` (one object per line) for log collectors. Both carry the id of the
# request or task each line comes from (config/logs.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="text").lower()
_TASK_LOG_LEVEL = "DEBUG" if LOG_LEVEL == "DEBUG" else "WARNING"
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.logs.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
        # The HTTP clients log every request with its full URL at INFO: LLM calls, fetched
        # pages and webhook URLs, whose query strings may carry secrets.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        # Celery's "Task ... received" and "... succeeded" lines: two per DAG node at INFO. The
        # execution's events already record every node; LOG_LEVEL=DEBUG shows them again.
        "celery.worker.strategy": {"level": _TASK_LOG_LEVEL},
        "celery.app.trace": {"level": _TASK_LOG_LEVEL},
    },
}

if not API_AUTH_REQUIRED:
    logging.getLogger("config").warning(
        "API_AUTH_REQUIRED=false: the API accepts requests without a token. "
        "Use this only on a trusted local machine."
    )
