"""The OpenAPI schema: it generates and documents every endpoint (responses are checked against
it by tests/test_api_fuzz.py)."""

import pytest
import yaml
from django.urls import get_resolver

from config.api.schema import refuses_blank
from goals.serializers import GoalOut

pytestmark = pytest.mark.django_db


def test_schema_generates_and_lists_the_api(api):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in [
        "/api/v1/goals",
        "/api/v1/goals/{goal_id}",
        "/api/v1/goals/{goal_id}/pause",
        "/api/v1/runs/{run_id}/steps",
        "/api/v1/agents/resolve/{name}",
        "/api/v1/dags/scheduled",
        "/api/v1/dag-executions/{execution_id}/sub-steps",
        "/api/v1/artifacts/{name}",
        "/health/ready",
    ]:
        assert path in paths, path
    goal_schema = schema["components"]["schemas"]["GoalOut"]["properties"]
    assert set(goal_schema) == set(GoalOut().fields)


def test_swagger_ui_and_schema_are_open_to_anyone_who_then_authorizes_with_a_bare_token(
    anon_client, user
):
    page = anon_client.get("/api/docs/")
    assert page.status_code == 200
    assert b"swagger" in page.content.lower()
    schema = yaml.safe_load(anon_client.get("/api/schema/").content)
    # A bearer scheme: the user pastes the key alone and the UI sends `Bearer <key>`.
    assert schema["components"]["securitySchemes"]["tokenAuth"]["scheme"] == "bearer"
    assert (
        "Paste only the API token"
        in (schema["components"]["securitySchemes"]["tokenAuth"]["description"])
    )
    assert user.is_staff is False


def test_every_api_route_is_in_the_schema(api):
    schema = yaml.safe_load(api.get("/api/schema/").content)
    documented = set(schema["paths"])
    routes = set()
    for pattern in get_resolver().url_patterns:
        if str(pattern.pattern) == "api/v1/":
            for included in pattern.url_patterns:
                for inner in included.url_patterns:
                    route = "/api/v1/" + str(inner.pattern)
                    routes.add(route.replace("<str:", "{").replace("<path:", "{").replace(">", "}"))
    assert routes <= documented, routes - documented


def test_schema_generates_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_a_blank_query_parameter_is_documented_as_allowed_and_read_as_absent(api):
    """Clients send empty filters (`?status=&limit=`): the schema says a blank value may be
    sent for every query parameter, and the API answers it with the default."""
    schema = yaml.safe_load(api.get("/api/schema/").content)
    query = [
        (path, parameter)
        for path, operations in schema["paths"].items()
        if not path.endswith("/events")  # the streams read their own parameters
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query"
    ]
    assert {"/api/v1/runs", "/api/v1/goals"} <= {path for path, _parameter in query}
    # Every parameter accepts a blank value: by its schema (a plain string) or by the flag.
    for _path, parameter in query:
        assert parameter.get("allowEmptyValue", False) is refuses_blank(parameter["schema"])
    flagged = {(path, p["name"]) for path, p in query if p.get("allowEmptyValue")}
    assert {("/api/v1/runs", "limit"), ("/api/v1/runs", "offset")} <= flagged
    assert ("/api/v1/dag-executions", "status") in flagged  # an enum
    assert ("/api/v1/agents", "active") not in flagged  # any string, "" included

    response = api.get("/api/v1/runs?goalId=&status=&offset=&limit=")
    assert response.status_code == 200
    assert response["X-Limit"] == "50" and response["X-Offset"] == "0"
