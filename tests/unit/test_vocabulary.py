"""One home per word: no module of the app imports itself back through others, not even for its types
(context.py and deliveries.py once imported each other), and no adapter names an exception as the service
does (the Graph adapter's NotFound and PreconditionFailed once meant other things than the service's)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import shared.adapters
from shared.service import errors

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level(tree: ast.Module) -> list[ast.stmt]:
    """The module's own statements, with those of its `if` blocks (`if TYPE_CHECKING:`), not the imports
    a function makes when it runs (the factories' lazy ones)."""
    statements: list[ast.stmt] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        statement = pending.pop()
        statements.append(statement)
        if isinstance(statement, ast.If):
            pending.extend([*statement.body, *statement.orelse])
    return statements


def _imports() -> dict[str, set[str]]:
    """Each module of shared/ and functions/ and the app's modules it imports (type-checking ones too)."""
    paths = [*ROOT.glob("shared/**/*.py"), *ROOT.glob("functions/**/*.py")]
    modules = {_module_name(path): path for path in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in _module_level(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    found.add(child if child in modules else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {other for other in found if other in modules and other != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = [stack.pop()]
            while component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_module_of_the_app_imports_itself_back() -> None:
    assert _cycles(_imports()) == []


def test_an_adapters_exceptions_never_share_a_name_with_the_services() -> None:
    service = {name for name, value in vars(errors).items() if isinstance(value, type)}
    shared_names = []
    for info in pkgutil.walk_packages(shared.adapters.__path__, "shared.adapters."):
        module = importlib.import_module(info.name)
        for name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__ and name in service:
                shared_names.append(f"{module.__name__}.{name}")
    assert shared_names == []
