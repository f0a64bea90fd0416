"""The artifacts folder as a sandbox: every path a tool or the API touches stays inside it.

Rejected: empty paths, NUL bytes, absolute paths, `..` segments, and anything whose real
location (after following symlinks) is outside ARTIFACTS_DIR. Sub-folders are allowed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from django.conf import settings


class SandboxError(ValueError):
    """A path that would leave the artifacts folder, or is not a usable relative path."""


def artifacts_root() -> Path:
    root = Path(settings.ARTIFACTS_DIR)
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def resolve_artifact_path(relative: str) -> Path:
    """The absolute, symlink-free path of `relative` inside the artifacts folder."""
    if not isinstance(relative, str) or not relative.strip():
        raise SandboxError("The path is empty.")
    if "\x00" in relative:
        raise SandboxError("The path contains a NUL byte.")
    normalized = relative.replace("\\", "/")
    pure = PurePosixPath(normalized)
    if pure.is_absolute() or (len(normalized) > 1 and normalized[1] == ":"):
        raise SandboxError(
            "Absolute paths are not allowed; give a path inside the artifacts folder."
        )
    if any(part == ".." for part in pure.parts):
        raise SandboxError("'..' is not allowed in artifact paths.")
    root = artifacts_root()
    resolved = root.joinpath(*pure.parts).resolve()
    if resolved != root and not resolved.is_relative_to(root):
        raise SandboxError("The path leads outside the artifacts folder.")
    return resolved


def relative_name(path: Path) -> str:
    """How a sandboxed path is shown to users: relative, with forward slashes."""
    return path.relative_to(artifacts_root()).as_posix()


def iter_artifact_files(limit: int = 10_000) -> Iterator[str]:
    """Relative names of the files in the artifacts folder, sub-folders included."""
    root = artifacts_root()
    count = 0
    for path in root.rglob("*"):
        try:
            real = path.resolve()
        except OSError:
            continue
        if not real.is_relative_to(root) or not real.is_file():
            continue
        yield path.relative_to(root).as_posix()
        count += 1
        if count >= limit:
            return
