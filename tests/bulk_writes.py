"""Where the code writes rows without sending model signals (`.update()`, `bulk_update()`,
`bulk_create()`), found by reading the source: the caches retired by signals list these sites
and check that each retires them by hand."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

BULK = {"update", "bulk_update", "bulk_create"}
SKIPPED_DIRS = {".venv", "tests", "migrations", "node_modules", "bench", ".git"}


@dataclass
class BulkWrite:
    path: str  # relative to the project root
    function: str
    # The model class named before `.objects`; "" when the queryset is held in a variable or
    # reached through a relation (see `relations`).
    models: set[str] = field(default_factory=set)
    relations: set[str] = field(default_factory=set)
    generic: bool = False
    calls: set[str] = field(default_factory=set)  # plain function names called in the function


def _receiver(node: ast.Call) -> str:
    assert isinstance(node.func, ast.Attribute)
    return ast.unparse(node.func.value)


def bulk_writes() -> dict[tuple[str, str], BulkWrite]:
    """Every function outside tests, migrations and benchmarks that writes without signals."""
    root = Path(settings.BASE_DIR)
    found: dict[tuple[str, str], BulkWrite] = {}
    for path in root.rglob("*.py"):
        relative = path.relative_to(root)
        if SKIPPED_DIRS & set(relative.parts) or relative.name.startswith("test_"):
            continue
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            writes = [
                node
                for node in ast.walk(function)
                if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in BULK
            ]
            if not writes:
                continue
            site = BulkWrite(relative.as_posix(), function.name)
            for node in writes:
                receiver = _receiver(node)
                if ".objects" in receiver:
                    model = receiver.split(".objects")[0].split(".")[-1]
                    if model[:1].isupper():
                        site.models.add(model)
                    else:
                        site.generic = True
                else:
                    site.relations.add(receiver.split(".")[-1])
            if not (site.models or site.generic or site.relations):
                continue
            site.calls = {
                node.func.id
                for node in ast.walk(function)
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            }
            found[(site.path, site.function)] = site
    return found
