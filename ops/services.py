"""Getting a database and a local login ready: migrate, collect static files, seed, admin user."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from io import TextIOBase
from pathlib import Path
from typing import TextIO

from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.db import transaction
from rest_framework.authtoken.models import Token

logger = logging.getLogger(__name__)

SEED_COMMAND = "seed_agents"
LOCAL_ADMIN_USERNAME = "admin"


def system_prepare(
    *,
    stdout: TextIO | TextIOBase | None = None,
    collect_static: bool = True,
    verbosity: int = 1,
) -> None:
    """Apply migrations, collect static files and seed the default agents (idempotent)."""
    call_command("migrate", interactive=False, verbosity=verbosity, stdout=stdout)
    if collect_static:
        call_command("collectstatic", interactive=False, verbosity=0, stdout=stdout)
    if SEED_COMMAND in get_commands():
        call_command(SEED_COMMAND, verbosity=verbosity, stdout=stdout)
    else:
        logger.warning("no %s command in this version; default agents not seeded", SEED_COMMAND)


@dataclass(frozen=True)
class LocalLogin:
    username: str
    # None when the stored password is unknown (another superuser, or changed since).
    password: str | None
    token: str
    created: bool


def local_admin_ensure(*, password_file: Path, username: str = LOCAL_ADMIN_USERNAME) -> LocalLogin:
    """Make sure a superuser and its API token exist; create `admin` when there is none.

    The generated password is kept in `password_file` (mode 0600, never overwritten) so later
    starts can show it again.
    """
    user_model = get_user_model()
    stored_password = _read_password(password_file)
    created = False
    with transaction.atomic():
        user = user_model.objects.filter(username=username).first()
        if user is None and not user_model.objects.filter(is_superuser=True).exists():
            if stored_password is None:
                stored_password = secrets.token_urlsafe(18)
                _write_password(password_file, stored_password)
            user = user_model.objects.create_superuser(
                username=username, email="", password=stored_password
            )
            created = True
            logger.info("created local superuser %s", username)
        if user is None:
            # Someone set up their own superuser: use it, and do not invent another login.
            user = user_model.objects.filter(is_superuser=True).order_by("pk").first()
        assert user is not None  # made above, or an existing superuser
        token, _ = Token.objects.get_or_create(user=user)
    password = stored_password if user.get_username() == username else None
    if password is not None and not created and not user.check_password(password):
        password = None  # changed since it was generated
    return LocalLogin(
        username=user.get_username(), password=password, token=token.key, created=created
    )


def _read_password(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text or None


def _write_password(path: Path, password: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.read_text(encoding="utf-8").strip():
        path.unlink()  # an empty file holds nothing to keep
    # O_EXCL: never overwrite a password someone may still rely on.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
