"""writeFile / readFile stay inside the artifacts folder: escapes are refused, nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tools.base import ToolError
from tools.services import tool_run


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry below `folder` with its content (or link target)."""
    state: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        if path.is_symlink():
            state[key] = "link->" + os.readlink(path)
        elif path.is_file():
            state[key] = path.read_bytes()
        else:
            state[key] = "dir"
    return state


def test_write_then_read(tool_settings):
    written = tool_run(
        name="writeFile", params={"path": "reports/2026/summary.md", "content": "# Résumé\n"}
    )

    assert written == {
        "path": "reports/2026/summary.md",
        "fullPath": "artifacts/reports/2026/summary.md",
        "bytesWritten": len("# Résumé\n".encode()),
        "size": len("# Résumé\n".encode()),
        "mode": "overwrite",
    }
    assert (tool_settings.ARTIFACTS_DIR / "reports/2026/summary.md").read_text() == "# Résumé\n"

    read = tool_run(name="readFile", params={"path": "reports/2026/summary.md"})

    assert read == {
        "path": "reports/2026/summary.md",
        "content": "# Résumé\n",
        "size": len("# Résumé\n".encode()),
        "truncated": False,
    }
    # The server's own folder layout never appears in results.
    assert str(tool_settings.ARTIFACTS_DIR) not in json.dumps([written, read])


def test_append_and_overwrite(tool_settings):
    tool_run(name="writeFile", params={"path": "log.txt", "content": "one\n"})
    tool_run(name="writeFile", params={"path": "log.txt", "content": "two\n", "mode": "append"})
    assert (tool_settings.ARTIFACTS_DIR / "log.txt").read_text() == "one\ntwo\n"

    result = tool_run(name="writeFile", params={"path": "log.txt", "content": "three\n"})

    assert (tool_settings.ARTIFACTS_DIR / "log.txt").read_text() == "three\n"
    assert result["size"] == 6


def test_append_to_a_missing_file_creates_it(tool_settings):
    tool_run(name="writeFile", params={"path": "new.txt", "content": "x", "mode": "append"})

    assert (tool_settings.ARTIFACTS_DIR / "new.txt").read_text() == "x"


def test_read_max_length_counts_bytes_and_keeps_characters_whole(tool_settings):
    (tool_settings.ARTIFACTS_DIR / "accents.txt").write_text("ééé", encoding="utf-8")  # 6 bytes

    result = tool_run(name="readFile", params={"path": "accents.txt", "maxLength": 3})

    assert result == {"path": "accents.txt", "content": "é", "size": 6, "truncated": True}


def test_read_missing_file(tool_settings):
    with pytest.raises(ToolError, match=r"File not found: nothing\.txt"):
        tool_run(name="readFile", params={"path": "nothing.txt"})


def test_read_a_folder_is_refused(tool_settings):
    (tool_settings.ARTIFACTS_DIR / "folder").mkdir()

    with pytest.raises(ToolError, match="not a file"):
        tool_run(name="readFile", params={"path": "folder"})


def test_file_size_limit(tool_settings):
    tool_settings.TOOLS_FILE_MAX_BYTES = 10
    tool_run(name="writeFile", params={"path": "a.txt", "content": "12345678"})

    with pytest.raises(ToolError, match="10-byte limit"):
        tool_run(name="writeFile", params={"path": "a.txt", "content": "abc", "mode": "append"})

    assert (tool_settings.ARTIFACTS_DIR / "a.txt").read_text() == "12345678"


@pytest.fixture
def sandbox_escape(tool_settings, tmp_path):
    """An artifacts folder with a same-prefix sibling, an outside folder and links leading out."""
    artifacts = tool_settings.ARTIFACTS_DIR
    sibling = tmp_path / (artifacts.name + "2")
    sibling.mkdir()
    (sibling / "x").write_text("sibling original")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_text("outside original")
    (artifacts / "link-dir").symlink_to(outside, target_is_directory=True)
    (artifacts / "link-file.txt").symlink_to(outside / "target.txt")
    (artifacts / "nested").mkdir()
    (artifacts / "nested" / "up").symlink_to(tmp_path, target_is_directory=True)
    return {"tmp": tmp_path, "artifacts": artifacts, "sibling": sibling, "outside": outside}


ESCAPES = [
    ("../x", "'..' is not allowed"),
    ("../../x", "'..' is not allowed"),
    ("reports/../../x", "'..' is not allowed"),
    ("..\\x", "'..' is not allowed"),
    ("/etc/passwd", "Absolute paths are not allowed"),
    ("{sibling}/x", "Absolute paths are not allowed"),
    ("../{sibling_name}/x", "'..' is not allowed"),
    ("link-dir/new.txt", "outside the artifacts folder"),
    ("link-dir/target.txt", "outside the artifacts folder"),
    ("link-file.txt", "outside the artifacts folder"),
    ("nested/up/outside/target.txt", "outside the artifacts folder"),
    ("a\x00b.txt", "NUL byte"),
    ("report.md\x00.txt", "NUL byte"),
    ("", "Must not be empty"),
    ("   ", "Must not be empty"),
    (".", "the artifacts folder itself"),
]


def _path(template: str, escape: dict) -> str:
    return template.format(sibling=escape["sibling"], sibling_name=escape["sibling"].name)


@pytest.mark.parametrize(("template", "message"), ESCAPES)
@pytest.mark.parametrize("mode", ["overwrite", "append"])
def test_write_escapes_are_refused_and_nothing_is_written(sandbox_escape, template, message, mode):
    before = snapshot(sandbox_escape["tmp"])

    with pytest.raises(ToolError, match=message):
        tool_run(
            name="writeFile",
            params={"path": _path(template, sandbox_escape), "content": "PWNED", "mode": mode},
        )

    assert snapshot(sandbox_escape["tmp"]) == before


@pytest.mark.parametrize(("template", "message"), ESCAPES)
def test_read_escapes_are_refused(sandbox_escape, template, message):
    with pytest.raises(ToolError, match=message) as caught:
        tool_run(name="readFile", params={"path": _path(template, sandbox_escape)})

    assert "original" not in caught.value.message


def test_symlink_inside_the_folder_is_followed_when_it_stays_inside(tool_settings):
    artifacts = tool_settings.ARTIFACTS_DIR
    (artifacts / "real").mkdir()
    (artifacts / "alias").symlink_to(artifacts / "real", target_is_directory=True)

    result = tool_run(name="writeFile", params={"path": "alias/file.txt", "content": "ok"})

    assert result["path"] == "real/file.txt"
    assert (artifacts / "real" / "file.txt").read_text() == "ok"
