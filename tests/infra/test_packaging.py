"""What `azd deploy` would package: the repository root minus .funcignore must be the app and nothing else.

azd applies .funcignore with gitignore rules. The matcher below implements the part of gitignore that
.funcignore uses (anchored `/x`, directory-only `x/`, globs within one path segment) and the first test
rejects any other syntax, so that the two cannot silently disagree.
"""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from tests.infra.bicep import FUNCIGNORE, ROOT

pytestmark = pytest.mark.infra

# The function app: what the worker imports and the host reads. Everything else stays out.
PACKAGE = ("function_app.py", "host.json", "requirements.txt", "functions/", "shared/")
# Named in the issue: must be excluded even while the folder does not exist yet.
MUST_EXCLUDE = (
    "tests/",
    "infra/",
    "devhost/",
    "m365emulator/",
    "benchmarks/",
    "docs/",
    "node_modules/",
    ".venv/",
    ".venv-checkov/",
    "local.settings.json",
    "local.settings.sample.json",
    "__azurite_db_queue__.json",
    "__blobstorage__/",
    "__queuestorage__/",
    ".devstack/",
    ".azure/",
    ".git/",
    "azure.yaml",
    "shared/__pycache__/",
)


def _patterns() -> list[str]:
    lines = FUNCIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(relative: str, is_dir: bool) -> bool:
    """gitignore semantics for the subset .funcignore uses; `relative` uses '/' and has no trailing '/'."""
    parts = relative.split("/")
    for raw in _patterns():
        pattern = raw.rstrip("/")
        if raw.endswith("/") and not is_dir:
            continue
        if "/" in pattern:  # anchored to the root: match segment by segment
            segments = pattern.lstrip("/").split("/")
            if len(segments) == len(parts) and all(map(fnmatchcase, parts, segments)):
                return True
        elif fnmatchcase(parts[-1], pattern):  # no slash: the name, at any depth
            return True
    return False


def _packaged() -> list[str]:
    """Files azd would put in the zip, walking the working tree like azd does (ignored folders pruned)."""
    files = []
    for directory, subdirs, names in os.walk(ROOT):
        base = Path(directory).relative_to(ROOT).as_posix()
        prefix = "" if base == "." else f"{base}/"
        subdirs[:] = [d for d in subdirs if not _ignored(prefix + d, is_dir=True)]
        files += [prefix + name for name in names if not _ignored(prefix + name, is_dir=False)]
    return sorted(files)


def test_funcignore_uses_only_the_syntax_this_test_understands() -> None:
    for pattern in _patterns():
        assert not pattern.startswith("!"), f"{pattern}: no negation (re-inclusion differs between tools)"
        assert "**" not in pattern and "\\" not in pattern, pattern
        assert "/" not in pattern.strip("/") or pattern.startswith("/"), (
            f"{pattern}: anchor it with a leading /"
        )


@pytest.mark.parametrize("path", MUST_EXCLUDE)
def test_funcignore_excludes(path: str) -> None:
    parts = path.rstrip("/").split("/")
    is_dir = path.endswith("/")
    # Excluded itself, or under an excluded folder.
    assert any(
        _ignored("/".join(parts[: i + 1]), is_dir=is_dir or i < len(parts) - 1) for i in range(len(parts))
    ), path


def test_package_holds_only_the_function_app() -> None:
    stray = [path for path in _packaged() if not path.startswith(PACKAGE)]
    assert not stray, f"these would be deployed; add them to .funcignore: {stray}"


def test_package_holds_the_function_app_entry_points() -> None:
    packaged = set(_packaged())
    assert {"host.json", "requirements.txt"} <= packaged
    assert not any(path.endswith(".pyc") for path in packaged)
