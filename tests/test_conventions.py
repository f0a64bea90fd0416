"""Cross-cutting API conventions: auth, throttling, error shapes, formats, CORS, routing."""

import re

import pytest
from rest_framework.test import APIClient

from config.api.throttles import KEY_PREFIX, local_windows
from config.shared_redis import shared_redis
from tests.factories import (
    AgentFactory,
    DagExecutionFactory,
    GoalFactory,
    RunFactory,
    ScheduleFactory,
    SubStepFactory,
    TokenFactory,
)

pytestmark = pytest.mark.django_db

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PROTECTED_GETS = [
    "/api/v1/goals",
    "/api/v1/runs",
    "/api/v1/agents",
    "/api/v1/dags",
    "/api/v1/dags/scheduled",
    "/api/v1/dag-executions",
    "/api/v1/artifacts",
]


def _clear_throttle_counters() -> None:
    redis = shared_redis()
    for key in redis.scan_iter(f"{KEY_PREFIX}*"):
        redis.delete(key)
    local_windows.clear()


@pytest.fixture(autouse=True)
def _fresh_throttle_state():
    _clear_throttle_counters()
    yield
    _clear_throttle_counters()


@pytest.mark.parametrize("path", PROTECTED_GETS)
def test_everything_but_health_needs_authentication(anon_client, path):
    response = anon_client.get(path)
    assert response.status_code == 401
    assert "error" in response.json()


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
def test_health_needs_no_authentication(anon_client, path):
    assert anon_client.get(path).status_code in (200, 503)


@pytest.mark.parametrize("keyword", ["Token", "Bearer", "bearer"])
def test_token_and_bearer_headers_are_accepted(anon_client, token, keyword):
    anon_client.credentials(HTTP_AUTHORIZATION=f"{keyword} {token.key}")
    assert anon_client.get("/api/v1/goals").status_code == 200


def test_wrong_token_is_401(anon_client, token):
    anon_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = anon_client.get("/api/v1/goals")
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid token."}


def test_session_login_works(anon_client, user):
    anon_client.force_login(user)
    assert anon_client.get("/api/v1/goals").status_code == 200


def test_auth_opt_out_lets_anonymous_clients_in(anon_client, settings):
    settings.API_AUTH_REQUIRED = False
    assert anon_client.get("/api/v1/goals").status_code == 200


def test_throttle_is_per_user_and_answers_429(api, settings):
    settings.API_THROTTLE_RATE = "3/min"
    for _ in range(3):
        assert api.get("/api/v1/goals").status_code == 200

    limited = api.get("/api/v1/goals")

    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    body = limited.json()
    assert body["statusCode"] == 429
    assert body["error"] == "Too Many Requests"
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {TokenFactory().key}")
    assert other.get("/api/v1/goals").status_code == 200


def test_throttle_window_slides_and_refusals_do_not_count(api, settings, monkeypatch):
    from config.api.throttles import PerUserThrottle

    settings.API_THROTTLE_RATE = "4/min"
    clock = {"now": 6_000_000.0 + 10}  # 10 s into a minute window
    monkeypatch.setattr(PerUserThrottle, "timer", lambda self: clock["now"])

    assert [api.get("/api/v1/goals").status_code for _ in range(4)] == [200] * 4
    refused = api.get("/api/v1/goals")
    assert refused.status_code == 429 and refused["Retry-After"] == "50"  # the next window
    assert api.get("/api/v1/goals").status_code == 429  # refusals are not counted...

    # Half-way through the next window, half of the last one still counts: 2 of 4 are free.
    clock["now"] += 80
    assert [api.get("/api/v1/goals").status_code for _ in range(3)] == [200, 200, 429]
    # ...so the weight of the previous window alone decides: 4 * (1 - (30 + 15) / 60) + 3 = 4.
    assert api.get("/api/v1/goals")["Retry-After"] == "15"
    clock["now"] += 15
    assert api.get("/api/v1/goals").status_code == 200

    keys = list(shared_redis().scan_iter(f"{KEY_PREFIX}*"))
    assert keys and all(0 < shared_redis().ttl(key) <= 120 for key in keys)


def test_health_is_never_throttled(anon_client, settings):
    settings.API_THROTTLE_RATE = "1/min"
    for _ in range(5):
        assert anon_client.get("/health").status_code == 200


def test_throttle_limits_within_the_process_when_redis_is_down(api, settings):
    settings.API_THROTTLE_RATE = "2/min"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    statuses = [api.get("/api/v1/goals").status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]


@pytest.mark.django_db(transaction=True)
def test_a_burst_on_a_tiny_connection_pool_is_limited_exactly(settings, token):
    """Forty requests at once, two Redis connections: each waits for a connection, none is let
    through unlimited because the pool ran out."""
    import threading

    settings.API_THROTTLE_RATE = "25/min"
    settings.CACHE_REDIS_MAX_CONNECTIONS = 2
    settings.CACHE_REDIS_POOL_TIMEOUT_SECONDS = 10
    start = threading.Barrier(40)
    statuses: list[int] = []

    def one() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        start.wait(10)
        statuses.append(client.get("/api/v1/tools").status_code)

    threads = [threading.Thread(target=one) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200] * 25 + [429] * 15


def test_malformed_json_is_400(api):
    response = api.post("/api/v1/goals", data="{not json", content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["statusCode"] == 400
    assert body["error"] == "Bad Request"
    assert "JSON" in body["message"]


def test_unsupported_media_type_is_415(api):
    response = api.post(
        "/api/v1/goals", data="a=b", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.json()["code"] == "FST_ERR_CTP_INVALID_MEDIA_TYPE"


def test_text_plain_body_is_a_validation_error(api):
    response = api.post("/api/v1/goals", data="hello", content_type="text/plain")
    assert response.status_code == 400
    assert "validation_errors" in response.json()


def test_body_over_one_mebibyte_is_413(api):
    body = '{"objective": "' + "x" * (1024 * 1024) + '"}'
    response = api.post("/api/v1/goals", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"] == "Payload Too Large"


def test_unknown_route_is_json_404(api):
    response = api.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json() == {
        "statusCode": 404,
        "error": "Not Found",
        "message": "Route GET:/api/v1/nope not found",
    }


@pytest.mark.parametrize("path", ["/api/v1/goals/", "/api/v1/agents/", "/health/"])
def test_trailing_slash_is_never_redirected(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert "Location" not in response


def test_head_answers_like_get_without_body(api):
    GoalFactory()
    response = api.head("/api/v1/goals")
    assert response.status_code == 200
    assert response.content == b""


def test_ids_and_timestamps_have_the_original_format(api):
    goal = GoalFactory(agent=AgentFactory())
    ScheduleFactory(goal=goal)
    RunFactory(goal=goal)
    SubStepFactory(execution=DagExecutionFactory())

    payloads = [
        api.get("/api/v1/goals").json()[0],
        api.get("/api/v1/runs").json()[0],
        api.get("/api/v1/dag-executions").json()["executions"][0],
    ]
    timestamps = [
        payloads[0]["createdAt"],
        payloads[0]["schedules"][0]["createdAt"],
        payloads[0]["agent"]["updatedAt"],
        payloads[1]["createdAt"],
        payloads[2]["createdAt"],
    ]
    assert all(ISO_MS.match(value) for value in timestamps), timestamps
    assert re.match(r"^goal_[A-Za-z0-9_-]{16}$", payloads[0]["id"])
    assert re.match(r"^sched_[A-Za-z0-9_-]{16}$", payloads[0]["schedules"][0]["id"])
    assert re.match(r"^run_[A-Za-z0-9_-]{16}$", payloads[1]["id"])
    assert re.match(r"^dag-exec_[A-Za-z0-9_-]{16}$", payloads[2]["id"])
    assert re.match(r"^[A-Za-z0-9_-]{16}$", payloads[2]["dagId"])
    # Nullable columns are present as null, never missing.
    assert payloads[1]["startedAt"] is None
    assert payloads[2]["finalResult"] is None


def test_json_content_type_has_charset(api):
    assert api.get("/api/v1/goals")["Content-Type"] == "application/json; charset=utf-8"


def test_cors_allows_configured_origins_only(api, settings):
    settings.CORS_ALLOWED_ORIGINS = ["http://ui.example.test"]
    allowed = api.get("/api/v1/goals", HTTP_ORIGIN="http://ui.example.test")
    assert allowed["Access-Control-Allow-Origin"] == "http://ui.example.test"
    assert allowed["Access-Control-Allow-Credentials"] == "true"
    other = api.get("/api/v1/goals", HTTP_ORIGIN="http://evil.example.test")
    assert "Access-Control-Allow-Origin" not in other


def test_cors_preflight(anon_client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["http://ui.example.test"]
    response = anon_client.options(
        "/api/v1/goals",
        HTTP_ORIGIN="http://ui.example.test",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )
    assert response.status_code == 200
    assert "authorization" in response["Access-Control-Allow-Headers"].lower()


GARBAGE_BODIES = [
    "null",
    "[]",
    "0",
    '"text"',
    '{"objective": null}',
    '{"objective": {"a": 1}}',
    '{"params": []}',
    '{"schedule": "daily"}',
    '{"name": ["x"], "version": {}, "promptTemplate": 1}',
    '{"cronSchedule": 5, "scheduleActive": null, "timezone": []}',
    "\u0000",
    "{" * 5000,
]
WRITE_ENDPOINTS = [
    ("post", "/api/v1/goals"),
    ("post", "/api/v1/agents"),
    ("patch", "/api/v1/goals/{goal}"),
    ("patch", "/api/v1/agents/{agent}"),
    ("patch", "/api/v1/dags/{dag}"),
    ("post", "/api/v1/goals/{goal}/pause"),
    ("post", "/api/v1/agents/{agent}/activate"),
]


@pytest.mark.parametrize(("method", "template"), WRITE_ENDPOINTS)
def test_garbage_bodies_never_produce_a_server_error(api, method, template):
    from tests.factories import DagFactory

    ids = {"goal": GoalFactory().id, "agent": AgentFactory().id, "dag": DagFactory().id}
    path = template.format(**ids)
    for body in GARBAGE_BODIES:
        response = getattr(api, method)(path, data=body, content_type="application/json")
        assert response.status_code < 500, (path, body, response.content)


def test_static_files_are_served_without_authentication(anon_client):
    response = anon_client.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert b"".join(response.streaming_content if response.streaming else [response.content])
    assert anon_client.get("/static/nothing-here.css").status_code == 404
