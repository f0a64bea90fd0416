"""Error answers: HTML pages in the site's layout for pages, JSON under the API."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from config import views
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_server_error_is_a_page_for_pages_and_json_for_the_api():
    factory = RequestFactory()
    page = views.server_error(factory.get("/dags"))
    assert page.status_code == 500
    assert page["Content-Type"].startswith("text/html")
    assert b"Something went wrong" in page.content
    api = views.server_error(factory.get("/api/v1/dags"))
    assert api["Content-Type"].startswith("application/json")
    assert b'"Internal server error"' in api.content


def test_forbidden_is_a_page_for_pages_and_json_for_the_api():
    factory = RequestFactory()
    assert b"Forbidden" in views.permission_denied(factory.get("/dags")).content
    assert views.permission_denied(factory.get("/api/v1/x"))["Content-Type"].startswith(
        "application/json"
    )


def test_unknown_page_paths_get_the_html_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert b"Page not found" in response.content
    response = client.get("/api/v1/nope")
    assert response.json()["message"] == "Route GET:/api/v1/nope not found"


def test_a_form_without_csrf_token_is_refused_with_an_explanation():
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="csrf"))
    response = client.post("/logout")
    assert response.status_code == 403
    assert b"security token is missing or expired" in response.content
    assert b'<main id="main"' in response.content


def test_login_page_logs_in_and_logout_is_post_only(client):
    user = UserFactory(username="lee")
    user.set_password("pw-123456789")
    user.save()
    assert client.get("/login").status_code == 200
    response = client.post("/login", {"username": "lee", "password": "pw-123456789"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200
    response = client.post("/logout")
    assert response.status_code == 302 and response["Location"] == "/login"
    assert client.get("/").status_code == 302
