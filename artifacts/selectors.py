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
from typing import Any, NamedTuple

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


class ArtifactEntry(NamedTuple):
    """A file found in the folder: its name, and where to read its size and time (a
    symlink's target). A tuple: a listing makes one per file."""

    name: str
    path: str


@dataclass(frozen=True)
class ArtifactBrowse:
    entries: list[ArtifactEntry]
    # More files than BROWSE_LIMIT: only the first were looked at.
    truncated: bool


def _walk(root: Path, folder: str, prefix: str) -> Iterator[ArtifactEntry]:
    """Every file below `folder`. Sub-folders are entered only when they are real folders; a
    symlink counts when it leads to a file inside the folder."""
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
                    yield ArtifactEntry(name, str(real))
            elif entry.is_dir(follow_symlinks=False):
                yield from _walk(root, entry.path, name + "/")
            elif entry.is_file(follow_symlinks=False):
                yield ArtifactEntry(name, entry.path)
        except OSError:  # removed or unreadable while listing
            continue


def _stat(entry: ArtifactEntry) -> os.stat_result | None:
    try:
        return os.stat(entry.path)
    except OSError:
        return None


def artifact_browse(*, viewer: Any, text: str = "", sort: str = "name") -> ArtifactBrowse:
    """The files `viewer` may see, as `artifact_list` decides; `text` keeps names containing
    it (any case); `sort` is one of BROWSE_SORTS. Reads the folder's names once (sizes and
    times only to sort by them) and, for other users than staff, their records' names."""
    root = artifacts_root()
    found: list[ArtifactEntry] = []
    truncated = False
    needle = text.casefold()
    allowed = (
        None
        if sees_everything(viewer)
        else set(visible_to(Artifact.objects.all(), viewer).values_list("path", flat=True))
    )
    for count, entry in enumerate(_walk(root, str(root), "")):
        if count >= BROWSE_LIMIT:
            truncated = True
            break
        if allowed is not None and entry.name not in allowed:
            continue
        if needle and needle not in entry.name.casefold():
            continue
        found.append(entry)
    if sort in ("-modified", "-size"):
        field = "st_mtime" if sort == "-modified" else "st_size"
        stats = {entry.name: _stat(entry) for entry in found}
        found.sort(
            key=lambda entry: (getattr(stats[entry.name], field, 0), entry.name), reverse=True
        )
    else:
        # Code point order is the order of the UTF-8 bytes, as `artifact_list` sorts.
        found.sort()
    return ArtifactBrowse(entries=found, truncated=truncated)


def artifact_details(*, entries: list[ArtifactEntry]) -> list[ArtifactFile]:
    """Size, time and record (who wrote it) of each of `entries` (one page), the records read
    in one query; a file removed meanwhile is left out."""
    records = {
        record.path: record
        for record in Artifact.objects.filter(path__in=[entry.name for entry in entries]).only(
            "path", "owner_id", "execution_id", "run_id", "updated_at"
        )
    }
    files = []
    for entry in entries:
        stat = _stat(entry)
        if stat is not None:
            modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
            files.append(ArtifactFile(entry.name, stat.st_size, modified, records.get(entry.name)))
    return files


def artifact_get(*, name: str, viewer: Any) -> tuple[ArtifactFile, bytes]:
    """The file `name` with its record and bytes; NotFound (or InvalidInput for a path that
    leaves the folder) as `artifact_read` decides."""
    content = artifact_read(name=name, viewer=viewer)
    path = resolve_artifact_path(name)
    stat = path.stat()
    record = Artifact.objects.filter(path=relative_name(path)).first()
    modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
    return ArtifactFile(relative_name(path), stat.st_size, modified, record), content
