"""Set-up files: `.env.example` documents every setting; the commands are executable scripts."""

from __future__ import annotations

import os
import re
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
READ_IN_SETTINGS = re.compile(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""")
DOCUMENTED = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def test_every_setting_variable_is_in_env_example():
    read = set(READ_IN_SETTINGS.findall((ROOT / "config" / "settings.py").read_text()))
    documented = set(DOCUMENTED.findall((ROOT / ".env.example").read_text()))
    assert read, "no variables found: has settings.py changed how it reads them?"
    assert sorted(read - documented) == []


def test_each_documented_variable_has_a_comment_line_above():
    lines = (ROOT / ".env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if DOCUMENTED.match(line):
            before = lines[:index]
            # The nearest line that is not another variable is its comment.
            comment = next((text for text in reversed(before) if not DOCUMENTED.match(text)), "")
            assert comment.startswith("# ") and len(comment) > 4, line


def test_the_commands_are_executable_bash_scripts():
    for name in ("scripts/start", "scripts/test", ".ci/run"):
        path = ROOT / name
        assert os.access(path, os.X_OK), name
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env bash\n"), name
        assert "set -euo pipefail" in text, name
