"""scripts/lib.sh's choice of interpreter for `.venv` (README commands 1 and 2, CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def chosen(env: dict[str, str]) -> str:
    """UV_PYTHON after `use_system_python`, in a bash that sourced scripts/lib.sh."""
    script = '. scripts/lib.sh; use_system_python; printf "%s" "${UV_PYTHON:-}"'
    return subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_the_system_interpreter_is_chosen_when_it_works():
    # Any interpreter that imports ctypes, sqlite3 and ssl will do: this one.
    assert chosen({"SYSTEM_PYTHON": sys.executable}) == sys.executable


def test_an_interpreter_named_by_uv_python_is_kept():
    assert chosen({"SYSTEM_PYTHON": sys.executable, "UV_PYTHON": "3.11"}) == "3.11"


def test_no_system_interpreter_leaves_the_choice_to_uv(tmp_path):
    assert chosen({"SYSTEM_PYTHON": str(tmp_path / "python3.11")}) == ""


@pytest.mark.parametrize("broken", ["exit 1", "echo 'no module named _sqlite3' >&2; exit 1"])
def test_a_system_interpreter_missing_modules_is_passed_over(tmp_path, broken):
    python = tmp_path / "python3.11"
    python.write_text(f"#!/bin/sh\n{broken}\n")
    python.chmod(0o755)
    assert chosen({"SYSTEM_PYTHON": str(python)}) == ""
