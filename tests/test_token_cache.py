"""The token lookup kept in Redis (`config.api.authentication`): a repeated request reads no
token from the database, and no revoked or rotated token, deactivated or deleted user is ever
let in by an entry stored before the change, in this process or another.

Writes are committed (transactional database) and every read runs on another thread with its
own database connection, as another web process would.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.api.authentication import TokenOrBearerAuthentication
from tests.bulk_writes import bulk_writes
from tests.elsewhere import run_elsewhere
from tests.factories import GoalFactory

pytestmark = pytest.mark.django_db(transaction=True)

LIST = "/api/v1/goals"


def status_elsewhere(key: str, *, bearer: bool = False) -> tuple[int, int]:
    """(status of GET /goals with `key`, statements it ran on tokens) from another thread."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{'Bearer' if bearer else 'Token'} {key}")
    response, statements = run_elsewhere(lambda: client.get(LIST))
    return response.status_code, sum("authtoken_token" in q["sql"] for q in statements)


@pytest.fixture
def cached(token):
    """The API user's token, looked up once (and so cached), with a goal to list."""
    GoalFactory(owner=token.user)
    assert status_elsewhere(token.key)[0] == 200
    return token


def test_a_repeated_request_reads_no_token(cached):
    assert status_elsewhere(cached.key) == (200, 0)
    assert status_elsewhere(cached.key, bearer=True) == (200, 0)


def test_a_repeated_goal_list_runs_no_statement_at_all(cached, api):
    api.get(LIST)
    with CaptureQueriesContext(connection) as queries:
        assert api.get(LIST).status_code == 200
    assert len(queries) == 0  # the token and the page both from Redis


def test_the_cached_user_is_the_user(cached):
    user, token = TokenOrBearerAuthentication().authenticate_credentials(cached.key)
    with CaptureQueriesContext(connection) as queries:
        user, token = TokenOrBearerAuthentication().authenticate_credentials(cached.key)
    assert len(queries) == 0
    assert (user.pk, user.username, user.is_active, user.is_staff, user.is_superuser) == (
        cached.user.pk,
        cached.user.username,
        True,
        False,
        False,
    )
    assert (token.key, token.user_id) == (cached.key, cached.user.pk)
    assert user.password == cached.user.password  # not kept: loaded when read


def test_a_deleted_token_is_refused_at_once(cached):
    cached.delete()
    assert status_elsewhere(cached.key)[0] == 401


def test_a_rotated_token_is_refused_at_once_and_the_new_one_works(cached):
    call_command("drf_create_token", "-r", cached.user.username, stdout=io.StringIO())
    new_key = Token.objects.get(user=cached.user).key
    assert new_key != cached.key
    assert status_elsewhere(cached.key)[0] == 401
    assert status_elsewhere(new_key)[0] == 200


def test_a_deactivated_user_is_refused_at_once(cached):
    user = cached.user
    user.is_active = False
    user.save()
    assert status_elsewhere(cached.key)[0] == 401


def test_a_deleted_user_is_refused_at_once(cached):
    cached.user.delete()
    assert status_elsewhere(cached.key)[0] == 401


def test_a_user_made_staff_is_seen_as_staff_at_once(cached, admin_user):
    other = GoalFactory(owner=admin_user)
    user = cached.user
    user.is_staff = True
    user.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {cached.key}")
    assert other.id in {goal["id"] for goal in client.get(LIST).json()}


def test_a_lookup_during_an_uncommitted_deactivation_is_not_kept(cached):
    """Another process looks the token up (and stores it) while the deactivation is not yet
    committed: it sees the old row; the commit retires what it stored."""
    user = cached.user
    with transaction.atomic():
        user.is_active = False
        user.save()
        assert status_elsewhere(cached.key)[0] == 200  # the committed row: still active
    assert status_elsewhere(cached.key)[0] == 401


def test_a_login_does_not_retire_the_cached_lookups(cached, client):
    user = cached.user
    last_login = user.last_login
    client.force_login(user)  # Django's login: saves last_login alone
    user.refresh_from_db()
    assert user.last_login != last_login
    assert status_elsewhere(cached.key) == (200, 0)


def test_an_unknown_token_is_refused_every_time(cached):
    assert status_elsewhere("0" * 40)[0] == 401
    assert status_elsewhere("0" * 40)[0] == 401


def test_without_redis_every_request_reads_the_token(cached, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    status, statements = status_elsewhere(cached.key)
    assert status == 200
    assert statements == 1


def test_every_bulk_write_to_users_or_tokens_retires_the_cached_lookups():
    """`.update()` and `bulk_*` send no signal: each such write to users or tokens must call
    `tokens_changed()` (there is none today; a new one fails here until it does)."""
    for site in bulk_writes().values():
        if site.models & {"User", "Token"}:
            assert "tokens_changed" in site.calls, f"{site.path}:{site.function} writes without it"
