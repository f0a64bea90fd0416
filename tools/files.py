"""writeFile and readFile: text files inside the artifacts folder only.

Paths go through `tools.sandbox.resolve_artifact_path` (no absolute paths, `..`, NUL bytes or
symlinks leading out); the final open also refuses to follow a symlink, so a link swapped in
after the check cannot redirect the write. Results name files relative to the folder.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings

from tools.base import DependencyInput, References, ToolContext, ToolError
from tools.sandbox import SandboxError, artifacts_root, relative_name, resolve_artifact_path
from tools.schemas import ReadFileParams, WriteFileParams

ARTIFACTS_PREFIX = "artifacts/"


def sandboxed_path(path: str) -> Path:
    try:
        resolved = resolve_artifact_path(path)
    except SandboxError as error:
        raise ToolError(f"Refused path '{_shown(path)}': {error}") from None
    if resolved == artifacts_root():
        raise ToolError("The path names the artifacts folder itself, not a file.")
    return resolved


def _shown(path: str) -> str:
    return path.replace("\x00", "\\0")[:300]


def _open_flags(*extra: int) -> int:
    flags = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for flag in extra:
        flags |= flag
    return flags


def write_file(params: WriteFileParams, context: ToolContext) -> dict[str, Any]:
    target = sandboxed_path(params.path)
    data = params.content.encode("utf-8")
    limit = settings.TOOLS_FILE_MAX_BYTES
    existing = target.stat().st_size if params.mode == "append" and target.is_file() else 0
    if existing + len(data) > limit:
        raise ToolError(f"The file would exceed the {limit}-byte limit for artifacts.")
    if target.is_dir():
        raise ToolError(f"'{relative_name(target)}' is a folder, not a file.")
    if target.exists() and not context.artifact_allowed(relative_name(target)):
        raise ToolError(
            f"Refused path '{relative_name(target)}': the file belongs to another user."
        )
    context.cancel.check()
    target.parent.mkdir(parents=True, exist_ok=True)
    # The parents may have been created just now: check the real location once more.
    sandboxed_path(params.path)
    mode_flag = os.O_APPEND if params.mode == "append" else os.O_TRUNC
    try:
        descriptor = os.open(target, _open_flags(os.O_WRONLY, os.O_CREAT, mode_flag), 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ToolError("Refused path: it is a symbolic link.") from None
        raise ToolError(f"Could not write '{relative_name(target)}': {error.strerror}") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    name = relative_name(target)
    context.report(f"Wrote {len(data)} bytes to {name}", completed=True)
    return {
        "path": name,
        # The original gave the server's absolute path; this is the artifacts-relative form.
        "fullPath": ARTIFACTS_PREFIX + name,
        "bytesWritten": len(data),
        "size": target.stat().st_size,
        "mode": params.mode,
    }


def read_file(params: ReadFileParams, context: ToolContext) -> dict[str, Any]:
    target = sandboxed_path(params.path)
    name = relative_name(target)
    if target.exists() and not context.artifact_allowed(name):
        # Another user's file reads exactly like a missing one.
        raise ToolError(f"File not found: {name}")
    try:
        descriptor = os.open(target, _open_flags(os.O_RDONLY))
    except FileNotFoundError:
        raise ToolError(f"File not found: {name}") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ToolError("Refused path: it is a symbolic link.") from None
        raise ToolError(f"Could not read '{name}': {error.strerror}") from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)
        raise ToolError(f"'{name}' is not a file.")
    with os.fdopen(descriptor, "rb") as handle:
        data = handle.read(params.maxLength)
    size = status.st_size
    truncated = size > params.maxLength
    return {
        "path": name,
        "content": _decode_prefix(data, truncated),
        "size": size,
        "truncated": truncated,
    }


def _decode_prefix(data: bytes, cut: bool) -> str:
    """UTF-8 text of `data`; a character split by the cut is dropped rather than mangled."""
    if cut:
        for trim in range(min(3, len(data)) + 1):
            try:
                return data[: len(data) - trim].decode("utf-8")
            except UnicodeDecodeError as error:
                if error.start < len(data) - 4:
                    break
    return data.decode("utf-8", errors="replace")


# --- writeFile in a DAG and in a run ------------------------------------------------------------
def content_with_dependencies(
    params: dict[str, Any], dependency_results: list[Any], references: References
) -> dict[str, Any]:
    """`content` with references filled in; without references, the dependencies' results
    (text as is, anything else as indented JSON), separated by blank lines."""
    resolved = dict(params)
    content = resolved.get("content")
    if isinstance(content, str) and references.present(content):
        resolved["content"] = references.substitute(content)
    elif dependency_results:
        resolved["content"] = "\n\n".join(
            result if isinstance(result, str) else json.dumps(result, indent=2, ensure_ascii=False)
            for result in dependency_results
        )
    rest = {key: value for key, value in resolved.items() if key != "content"}
    return {**references.substitute(rest), "content": resolved.get("content", "")}


CONTENT_FROM_DEPENDENCIES = DependencyInput(
    param="content",
    missing_message="Required (or depend on the task to be written)",
    given=lambda params: "content" in params,
    resolve=content_with_dependencies,
)


def written_file_output(result: dict[str, Any], arguments: Mapping[str, Any]) -> tuple[str, str]:
    return "file", str(result.get("path"))
