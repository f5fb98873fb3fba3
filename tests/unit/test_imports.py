"""Every import the app makes of its own code names a module and a name that exist, the lazy ones inside
factories and handlers included. mypy cannot tell (it runs with ignore_missing_imports for the SDKs), so a
module removed or renamed while a caller still imported it lazily would only fail when that code first ran
in a worker."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
OWN = ("shared", "functions")


def _sources() -> list[Path]:
    return sorted([ROOT / "function_app.py", *(p for top in OWN for p in (ROOT / top).rglob("*.py"))])


def _own_imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(module, name or None, line) of every import of the app's own code in `path`, at any depth."""
    found: list[tuple[str, str | None, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(OWN):
            found += [(node.module or "", alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names if a.name.startswith(OWN)]
    return found


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_own_import_names_what_exists(path: Path) -> None:
    missing = []
    for module, name, line in _own_imports(path):
        if importlib.util.find_spec(module) is None:
            missing.append(f"line {line}: no module {module}")
            continue
        if name is None or hasattr(importlib.import_module(module), name):
            continue
        if importlib.util.find_spec(f"{module}.{name}") is None:
            missing.append(f"line {line}: {module} has no {name}")
    assert missing == []
