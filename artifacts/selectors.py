from __future__ import annotations

from config.errors import InvalidInput, NotFound
from tools.sandbox import SandboxError, iter_artifact_files, resolve_artifact_path

ARTIFACT_NOT_FOUND = "Artifact not found"


def artifact_list() -> list[str]:
    """File names relative to the artifacts folder, sorted bytewise as the original does."""
    return sorted(iter_artifact_files(), key=lambda name: name.encode("utf-8"))


def artifact_read(*, name: str) -> bytes:
    try:
        path = resolve_artifact_path(name)
    except SandboxError as error:
        raise InvalidInput(f"Invalid artifact path: {error}") from None
    if not path.is_file():
        raise NotFound(ARTIFACT_NOT_FOUND)
    try:
        return path.read_bytes()
    except OSError as error:
        raise NotFound(ARTIFACT_NOT_FOUND) from error
