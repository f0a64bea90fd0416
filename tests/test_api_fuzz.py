"""Schemathesis over the served OpenAPI schema: every documented operation is called with
generated valid and invalid input, and every answer must be documented (status, content type,
headers, body schema) and never a server error."""

from __future__ import annotations

import orjson
import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.test import Client, override_settings
from hypothesis import HealthCheck, Phase, settings

from config.wsgi import application


def _served_schema() -> dict:
    # Read at import (no database yet): the schema needs no login when auth is off.
    with override_settings(API_AUTH_REQUIRED=False):
        response = Client(HTTP_HOST="localhost").get("/api/schema/")
    assert response.status_code == 200, response.content
    return orjson.loads(response.content)


# The two Server-Sent Event streams are left out: they answer an endless `text/event-stream`
# (the fuzzer would wait on it) from async views. Their errors and frames are covered by
# dags/tests/test_events_sse.py, runs/tests/test_events.py and tests/test_events_e2e.py.
STREAMS = r"^/api/v1/(dag-executions|runs)/\{[a-z_]+\}/events$"

# Every check runs. A schema-valid request may still get a 400 where a rule cannot be said in
# OpenAPI (a time zone must exist, a cron expression must fire, a provider must be configured,
# text must hold no NUL): the positive-data check accepts 400 (with its JSON error) besides the
# usual statuses, and no longer accepts 5xx.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "429"]
            },
            # A body over the size limit is refused with 413 before it is validated.
            "negative_data_rejection": {
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406"),
                    *("409", "413", "415", "422", "428", "429"),
                ]
            },
        }
    }
)

schema = schemathesis.openapi.from_dict(_served_schema(), config=CONFIG).exclude(path_regex=STREAMS)
schema.app = application


@pytest.fixture
def wsgi_requests_in_test_transaction(db):
    # As with Django's test client: the handler must not close the connection of the test's
    # transaction between requests.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def beat_ticking(db):
    """Readiness answers 503 while beat or every worker is silent; this test runs neither, so
    one beat tick and one worker heartbeat are recorded (the 503s are tested in
    tests/test_health.py)."""
    import time

    from django.utils.timezone import now

    from config.workers import heartbeat_record
    from goals.models import SchedulerHeartbeat

    moment = now()
    SchedulerHeartbeat.objects.update_or_create(
        name="beat", defaults={"ticked_at": moment, "started_at": moment, "hostname": "tests"}
    )
    heartbeat_record(name="fuzz@tests", concurrency=1, tasks={}, started_at=time.time())


@schema.parametrize()
@settings(
    max_examples=4,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(
    case, wsgi_requests_in_test_transaction, beat_ticking, token, fake_llm, artifacts_dir
):
    case.call_and_validate(headers={"Authorization": f"Token {token.key}"})
