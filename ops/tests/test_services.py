from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from rest_framework.authtoken.models import Token

from ops.services import local_admin_ensure
from tests.factories import UserFactory


@pytest.fixture
def password_file(tmp_path):
    return tmp_path / "var" / "admin-password.txt"


def test_first_start_creates_admin_password_file_and_token(db, password_file):
    login = local_admin_ensure(password_file=password_file)

    user = get_user_model().objects.get(username="admin")
    assert login.created and login.username == "admin"
    assert user.is_superuser and user.is_staff
    assert user.check_password(login.password)
    assert password_file.read_text().strip() == login.password
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert Token.objects.get(user=user).key == login.token


def test_later_starts_show_the_same_login_and_never_rewrite_the_file(db, password_file):
    first = local_admin_ensure(password_file=password_file)
    stamp = password_file.stat().st_mtime_ns

    again = local_admin_ensure(password_file=password_file)

    assert not again.created
    assert (again.password, again.token) == (first.password, first.token)
    assert password_file.stat().st_mtime_ns == stamp
    assert get_user_model().objects.filter(is_superuser=True).count() == 1


def test_a_changed_password_is_not_shown(db, password_file):
    local_admin_ensure(password_file=password_file)
    user = get_user_model().objects.get(username="admin")
    user.set_password("chosen-by-the-owner-123")
    user.save()

    login = local_admin_ensure(password_file=password_file)

    assert login.password is None
    assert password_file.exists()


def test_an_existing_superuser_is_used_instead_of_a_new_admin(db, password_file):
    owner = UserFactory(username="owner", is_staff=True, is_superuser=True)

    login = local_admin_ensure(password_file=password_file)

    assert login.username == "owner" and login.password is None and not login.created
    assert not get_user_model().objects.filter(username="admin").exists()
    assert not password_file.exists()
    assert Token.objects.get(user=owner).key == login.token


def test_a_kept_password_file_is_reused_for_a_fresh_database(db, password_file):
    password_file.parent.mkdir(parents=True)
    password_file.write_text("kept-from-before-0123\n")

    login = local_admin_ensure(password_file=password_file)

    assert login.created and login.password == "kept-from-before-0123"
    assert get_user_model().objects.get(username="admin").check_password("kept-from-before-0123")


def test_prepare_command_is_idempotent(transactional_db, capsys):
    assert "prepare" in get_commands()
    call_command("prepare", "--no-static", verbosity=0)
    call_command("prepare", "--no-static", verbosity=0)
    assert "Database ready." in capsys.readouterr().out
