"""Reading the artifacts folder through the ownership rule (config/access.py).

A file is visible to the owner of its record (artifacts.models.Artifact) and to staff; files
without a record are visible to staff only. Paths go through tools/sandbox as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model

from artifacts.models import Artifact
from config.access import sees_everything, visible_to
from config.errors import InvalidInput, NotFound
from tools.sandbox import (
    SandboxError,
    artifacts_root,
    iter_artifact_files,
    relative_name,
    resolve_artifact_path,
)

ARTIFACT_NOT_FOUND = "Artifact not found"


def artifact_list(*, viewer: Any) -> list[str]:
    """File names relative to the artifacts folder that `viewer` may see, sorted bytewise as
    the original does."""
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


# --- browsing (the artifacts page) --------------------------------------------------------------
BROWSE_LIMIT = 50_000
BROWSE_SORTS = {"name": "Name", "-modified": "Newest first", "-size": "Largest first"}


@dataclass(frozen=True)
class ArtifactFile:
    """A file of the folder as the browser lists it; `record` says who wrote it (None for a
    file put there by hand)."""

    name: str
    size: int
    modified: datetime
    record: Artifact | None = None


@dataclass(frozen=True)
class ArtifactBrowse:
    files: list[ArtifactFile]
    # More files than BROWSE_LIMIT: only the first were looked at.
    truncated: bool


def _walk(root: Path, folder: Path, prefix: str) -> Iterator[tuple[str, os.stat_result]]:
    """(relative name, stat) of every file below `folder`. Sub-folders are entered only when
    they are real folders; a symlink counts when it leads to a file inside the folder."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        name = prefix + entry.name
        try:
            if entry.is_symlink():
                real = Path(entry.path).resolve()
                if real.is_relative_to(root) and real.is_file():
                    yield name, real.stat()
            elif entry.is_dir(follow_symlinks=False):
                yield from _walk(root, Path(entry.path), name + "/")
            elif entry.is_file(follow_symlinks=False):
                yield name, entry.stat(follow_symlinks=False)
        except OSError:  # removed or unreadable while listing
            continue


def artifact_browse(*, viewer: Any, text: str = "", sort: str = "name") -> ArtifactBrowse:
    """The files `viewer` may see, as `artifact_list` decides, with size and modification time;
    `text` keeps names containing it (any case); `sort` is one of BROWSE_SORTS. Reads the
    folder once and, for other users than staff, the names of their records in one query."""
    root = artifacts_root()
    found: list[ArtifactFile] = []
    truncated = False
    needle = text.casefold()
    allowed = (
        None
        if sees_everything(viewer)
        else set(visible_to(Artifact.objects.all(), viewer).values_list("path", flat=True))
    )
    for count, (name, stat) in enumerate(_walk(root, root, "")):
        if count >= BROWSE_LIMIT:
            truncated = True
            break
        if allowed is not None and name not in allowed:
            continue
        if needle and needle not in name.casefold():
            continue
        modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
        found.append(ArtifactFile(name=name, size=stat.st_size, modified=modified))
    if sort == "-modified":
        found.sort(key=lambda item: (item.modified, item.name), reverse=True)
    elif sort == "-size":
        found.sort(key=lambda item: (item.size, item.name), reverse=True)
    else:
        found.sort(key=lambda item: item.name.encode("utf-8"))
    return ArtifactBrowse(files=found, truncated=truncated)


def artifact_records(*, files: list[ArtifactFile]) -> list[ArtifactFile]:
    """`files` with their records (who wrote each one), read in one query."""
    records = {
        record.path: record
        for record in Artifact.objects.filter(path__in=[item.name for item in files]).only(
            "path", "owner_id", "execution_id", "run_id", "updated_at"
        )
    }
    return [
        ArtifactFile(item.name, item.size, item.modified, records.get(item.name)) for item in files
    ]


def artifact_get(*, name: str, viewer: Any) -> tuple[ArtifactFile, bytes]:
    """The file `name` with its record and bytes; NotFound (or InvalidInput for a path that
    leaves the folder) as `artifact_read` decides."""
    content = artifact_read(name=name, viewer=viewer)
    path = resolve_artifact_path(name)
    stat = path.stat()
    record = Artifact.objects.filter(path=relative_name(path)).first()
    modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
    return ArtifactFile(relative_name(path), stat.st_size, modified, record), content
