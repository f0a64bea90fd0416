"""Errors under /api/ are JSON for every status, Django's own refusals included; pages outside
the API keep Django's HTML error pages."""

from __future__ import annotations

import orjson
import pytest
import yaml
from django.core.exceptions import DisallowedHost, RequestDataTooBig, TooManyFieldsSent
from django.test import RequestFactory
from rest_framework.test import APIClient

from config import views
from tests.factories import GoalFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def session_client(user) -> APIClient:
    """A logged-in browser session that does not send the CSRF token."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def assert_json(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"]
    return body


@pytest.mark.parametrize("path", ["/api/v1/goals", "/api/v1/nope", "/api/v1/goals/"])
def test_a_session_post_without_csrf_token_is_a_json_403_or_404(session_client, path):
    response = session_client.post(path, data={"objective": "x" * 20}, format="json")
    if path == "/api/v1/goals":
        body = assert_json(response, 403)
        assert "CSRF" in body["error"]
    else:
        # An unknown path changes nothing: it answers its 404 whatever the CSRF state.
        assert_json(response, 404)


def test_the_csrf_failure_view_answers_json_under_the_api_and_html_elsewhere():
    request = RequestFactory().post("/api/v1/goals")
    response = views.csrf_failure(request, reason="CSRF cookie not set.")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/json")
    page = views.csrf_failure(RequestFactory().post("/admin/login/"), reason="x")
    assert page.status_code == 403
    assert page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
def test_a_trailing_slash_answers_json_404_naming_the_right_path(api, method):
    goal = GoalFactory()
    response = getattr(api, method)(f"/api/v1/goals/{goal.id}/", format="json")
    body = assert_json(response, 404)
    assert f"(paths have no trailing slash: /api/v1/goals/{goal.id})" in body["message"]


def test_an_unknown_path_with_a_token_is_json_404_for_writes_too(api):
    body = assert_json(api.post("/api/v1/goalz", {"objective": "x"}, format="json"), 404)
    assert body["message"] == "Route POST:/api/v1/goalz not found"


def test_a_method_not_allowed_is_json_405_with_allow(api):
    response = api.put("/api/v1/goals", {}, format="json")
    assert_json(response, 405)
    assert "GET" in response["Allow"] and "POST" in response["Allow"]


def test_a_session_form_post_is_json_415(session_client):
    session_client.cookies["csrftoken"] = "a" * 32
    response = session_client.post(
        "/api/v1/goals",
        data="&".join(f"f{index}=1" for index in range(1500)),
        content_type="application/x-www-form-urlencoded",
    )
    assert_json(response, 415)


@pytest.mark.parametrize(
    ("exception", "status"),
    [
        (RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE."), 413),
        (TooManyFieldsSent("The number of GET/POST parameters exceeded the limit."), 400),
        (DisallowedHost("Invalid HTTP_HOST header: '<script>'"), 400),
    ],
)
def test_djangos_own_refusals_are_json_under_the_api(exception, status):
    """Refusals raised outside a view (middleware reading a form, a bad Host) reach the 400
    handler."""
    response = views.bad_request(RequestFactory().post("/api/v1/goals"), exception)
    assert response.status_code == status
    body = orjson.loads(response.content)
    assert body["statusCode"] == status
    assert "<script>" not in body["message"]
    page = views.bad_request(RequestFactory().post("/admin/login/"), exception)
    assert page["Content-Type"].startswith("text/html")


def test_the_server_error_handler_is_json_under_the_api_and_html_elsewhere():
    api_error = views.server_error(RequestFactory().get("/api/v1/goals"))
    assert api_error.status_code == 500
    assert api_error["Content-Type"].startswith("application/json")
    page = views.server_error(RequestFactory().get("/admin/"))
    assert page.status_code == 500
    assert page["Content-Type"].startswith("text/html")


def test_an_unhandled_exception_in_an_api_view_is_json_500(api, monkeypatch):
    from goals import selectors

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "goal_list", broken)
    body = assert_json(api.get("/api/v1/goals"), 500)
    assert body == {"error": "Internal server error"}


def test_the_api_root_is_an_index_of_its_resources(anon_client):
    response = anon_client.get("/api/v1/")
    assert response.status_code == 200
    index = response.json()
    assert index["docs"] == "/api/docs/" and index["schema"] == "/api/schema/"
    resources = {item["path"]: item["methods"] for item in index["resources"]}
    assert resources["/api/v1/goals"] == ["GET", "POST"]
    assert resources["/api/v1/goals/{goal_id}"] == ["GET", "PATCH", "DELETE"]
    assert resources["/api/v1/dag-executions/{execution_id}/events"] == ["GET"]
    assert "/api/v1/create-dag" in resources


def test_the_api_index_is_built_once(anon_client):
    from config.views import api_resources

    first = api_resources()
    assert api_resources() is first  # not rebuilt for each request
    assert anon_client.get("/api/v1/").json()["resources"] == list(first)


# --- the schema says what the server does ------------------------------------------------------


@pytest.fixture
def schema(api) -> dict:
    return yaml.safe_load(api.get("/api/schema/").content)


def test_tools_answers_a_list_or_one_definition_as_documented(api, schema):
    documented = schema["paths"]["/api/v1/tools"]["get"]["responses"]["200"]
    one_of = documented["content"]["application/json"]["schema"]["oneOf"]
    assert [item.get("type") for item in one_of] == ["array", "object"]
    assert isinstance(api.get("/api/v1/tools").json(), list)
    assert isinstance(api.get("/api/v1/tools", {"name": ""}).json(), list)
    assert api.get("/api/v1/tools", {"name": "webSearch"}).json()["function"]["name"] == (
        "webSearch"
    )


def test_bodies_are_documented_as_json_only_and_text_is_a_json_400(api, schema):
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            assert "text/plain" not in content, path
    response = api.post("/api/v1/goals", data='{"objective": "x"}', content_type="text/plain")
    assert_json(response, 400)


def test_every_api_operation_documents_its_json_errors(schema):
    assert schema["components"]["schemas"]["Error"]["required"] == ["error"]
    goals = schema["paths"]["/api/v1/goals/{goal_id}"]["patch"]["responses"]
    for status in ("400", "401", "404", "413", "415", "429"):
        assert goals[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }


@pytest.mark.parametrize("accept", ["text/html", '+"', "application/xml;q=0.9, image/png"])
def test_an_accept_header_no_renderer_satisfies_still_gets_json(api, user, accept):
    goal = GoalFactory(owner=user)
    response = api.get("/api/v1/goals", HTTP_ACCEPT=accept)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    assert [listed["objective"] for listed in response.json()] == [goal.objective]


def test_the_schema_still_answers_yaml_when_asked_and_json_otherwise(anon_client):
    yaml_answer = anon_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    assert yaml_answer["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(yaml_answer.content)["openapi"]
    assert anon_client.get("/api/schema/", HTTP_ACCEPT="text/html")["Content-Type"].startswith(
        "application/vnd.oai.openapi+json"
    )
    assert anon_client.get("/api/schema/?format=nope").status_code == 404
