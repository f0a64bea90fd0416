"""Reading the artifacts folder through the ownership rule (config/access.py).

A file is visible to the owner of its record (artifacts.models.Artifact) and to staff; files
without a record are visible to staff only. Paths go through tools/sandbox as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model

from artifacts.models import Artifact
from config.access import sees_everything, visible_to
from config.errors import InvalidInput, NotFound
from tools.sandbox import SandboxError, iter_artifact_files, relative_name, resolve_artifact_path

ARTIFACT_NOT_FOUND = "Artifact not found"


def artifact_list(*, viewer: Any) -> list[str]:
    """File names relative to the artifacts folder that `viewer` may see, sorted bytewise (the
    order clients expect)."""
    names = iter_artifact_files()
    if not sees_everything(viewer):
        allowed = set(visible_to(Artifact.objects.all(), viewer).values_list("path", flat=True))
        names = (name for name in names if name in allowed)
    return sorted(names, key=lambda name: name.encode("utf-8"))


def artifact_read(*, name: str, viewer: Any) -> bytes:
    """The file's bytes; NotFound when it does not exist or `viewer` may not see it."""
    try:
        path = resolve_artifact_path(name)
    except SandboxError as error:
        raise InvalidInput(f"Invalid artifact path: {error}") from None
    if not path.is_file():
        raise NotFound(ARTIFACT_NOT_FOUND)
    if not sees_everything(viewer):
        records = visible_to(Artifact.objects.filter(path=relative_name(path)), viewer)
        if not records.exists():
            raise NotFound(ARTIFACT_NOT_FOUND)
    try:
        return path.read_bytes()
    except OSError as error:
        raise NotFound(ARTIFACT_NOT_FOUND) from error


def artifact_access_check(*, owner_id: int | None) -> Callable[[str], bool] | None:
    """For tools run on behalf of user `owner_id`: a check of whether that user may read (or
    overwrite) the existing artifact with a given relative name, under the same rule as the
    API. None (no check) for work without an owner, from before owners existed."""
    if owner_id is None:
        return None
    user = get_user_model().objects.filter(pk=owner_id).first()
    if user is None:
        return None
    if sees_everything(user):
        return lambda name: True

    def may_access(name: str) -> bool:
        return visible_to(Artifact.objects.filter(path=name), user).exists()

    return may_access
