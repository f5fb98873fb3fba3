"""Every Bicep file parses (checkov alone counts syntax errors but still exits 0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lark.exceptions import LarkError

from tests.infra.bicep import INFRA, ROOT, bicep_files, parse

pytestmark = pytest.mark.infra


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_infra_has_the_expected_files() -> None:
    names = {_name(path) for path in bicep_files()}
    assert {"infra/main.bicep", "infra/app/api.bicep", "infra/app/rbac.bicep"} <= names


@pytest.mark.parametrize("path", bicep_files(), ids=_name)
def test_bicep_file_parses_with_pycep(path: Path) -> None:
    try:
        tree = parse(path)
    except LarkError as error:
        pytest.fail(f"{_name(path)} does not parse: {error}")
    assert tree.get("resources") or tree.get("modules"), f"{_name(path)} declares nothing"


@pytest.mark.parametrize("path", bicep_files(), ids=_name)
def test_bicep_file_parses_with_tree_sitter(path: Path) -> None:
    """A second grammar; runs when the `tree-sitter` runtime is installed next to tree-sitter-bicep."""
    tree_sitter = pytest.importorskip("tree_sitter", reason="tree-sitter is not installed (pycep still ran)")
    import tree_sitter_bicep

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))
    root = parser.parse(path.read_bytes()).root_node
    errors, stack = [], [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            errors.append(f"line {node.start_point[0] + 1}, column {node.start_point[1] + 1}")
        stack.extend(node.children)
    assert not errors, f"{_name(path)}: tree-sitter-bicep syntax errors at {errors}"


@pytest.mark.parametrize("path", sorted(INFRA.rglob("*.json")), ids=_name)
def test_json_file_is_valid(path: Path) -> None:
    json.loads(path.read_text(encoding="utf-8"))
