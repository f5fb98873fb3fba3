"""checkov's Bicep policies pass, and every inline skip still suppresses a real finding.

checkov runs once per session (about 10 s) over two copies of infra/: as it is, and with the
`// checkov:skip=` lines removed. The first must have no failure; the second shows what each skip hides,
so a skip that no longer hides anything is reported as stale. checkov exits 0 on Bicep syntax errors, so
the tests read `parsing_errors` from its JSON report instead of trusting the exit code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.bicep import INFRA, ROOT, bicep_files

pytestmark = pytest.mark.infra

CHECKOV = os.environ.get("CHECKOV", ".venv-checkov/bin/checkov")
SKIP = re.compile(r"^\s*//\s*checkov:skip=(CKV2?_AZURE_\d+)")


@pytest.fixture(scope="session")
def checkov_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    binary = Path(CHECKOV) if Path(CHECKOV).is_absolute() else ROOT / CHECKOV
    if not binary.is_file():
        pytest.fail(f"checkov not found at {binary}: run `make install` (or set CHECKOV to its path)")
    root = tmp_path_factory.mktemp("checkov")
    shutil.copytree(INFRA, root / "as-is")
    shutil.copytree(INFRA, root / "stripped")
    for path in (root / "stripped").rglob("*.bicep"):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(line for line in lines if not SKIP.match(line)), encoding="utf-8")
    completed = subprocess.run(
        [str(binary), "-d", str(root), "--framework", "bicep", "--skip-download", "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        check=False,
    )
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov printed no JSON report (exit {completed.returncode}): {completed.stderr[-2000:]}"
        )
    return report[0] if isinstance(report, list) else report  # a list when several frameworks report


def _findings(report: dict[str, Any], kind: str, copy: str) -> set[tuple[str, str]]:
    return {
        (check["file_path"].removeprefix(f"/{copy}/"), check["check_id"])
        for check in report["results"][kind]
        if check["file_path"].startswith(f"/{copy}/")
    }


def test_checkov_parses_every_file(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0, checkov_report["results"].get("parsing_errors")
    assert summary["resource_count"] >= 2 * 20, (
        "checkov saw too few resources: did a module stop being scanned?"
    )


def test_checkov_passes(checkov_report: dict[str, Any]) -> None:
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
        for check in checkov_report["results"]["failed_checks"]
        if check["file_path"].startswith("/as-is/")
    ]
    assert not failed, "fix, or skip inside the resource with a reason:\n" + "\n".join(failed)


def test_every_skip_suppresses_a_real_finding(checkov_report: dict[str, Any]) -> None:
    skips = set()
    for path in bicep_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            if match := SKIP.match(line):
                skips.add((path.relative_to(INFRA).as_posix(), match.group(1)))
    applied = _findings(checkov_report, "skipped_checks", "as-is")
    hidden = _findings(checkov_report, "failed_checks", "stripped")
    assert skips == applied, f"skips checkov did not apply (misplaced?): {skips - applied}"
    assert skips <= hidden, f"stale skips, nothing fails without them: {skips - hidden}"
