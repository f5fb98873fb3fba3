"""The chaos run at a small size (`make chaos` at full size): host writes and Outlook changes under injected
faults for 20 seconds, then nothing lost, nothing duplicated, every staff member converged by the
connector's own mechanisms: no admin's resync (the run asks for one only when the check failed, and that
fails here). A notification dropped for a mailbox's last change heals by the catch-up queued after the
mailbox's last notification (`shared/service/follow_ups.py`), so the check waits through it (`--settle`
180). A new seed each run (printed; replay with `python -m benchmarks.chaos --seed N`), so over many runs
the suite meets many orders of faults.

Every kind of fault, a worker killed mid-job and an answer slower than the client's timeout included: their
finding (an appointment's copy left in a calendar it no longer names, seeds 101 and 186243717) was a write
pass that went on with the revision it had read when the host re-staffed or deleted the appointment before
the pass noted its creates, and a worker killed after Graph's answer left that copy unnoted (DESIGN.md,
"What it found and is fixed"). `make chaos` runs the same at full size."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.chaos import FAULT_KINDS

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

ROOT = Path(__file__).resolve().parents[2]
FAULTS = ",".join(FAULT_KINDS)


def test_a_short_chaos_run_loses_nothing_duplicates_nothing_and_converges(tmp_path: Path) -> None:
    seed = secrets.randbelow(10**9)
    figures_path = tmp_path / "figures.json"
    run = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.chaos", "--seed", str(seed), "--minutes", "0.3",
            "--users", "2", "--rate", "1.5", "--fault-every", "3", "--settle", "180", "--faults", FAULTS,
            "--json", str(figures_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert figures_path.exists(), f"seed {seed}\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    figures = json.loads(figures_path.read_text(encoding="utf-8"))
    outcome = {k: figures[k] for k in ("lost", "duplicated", "not_converged", "needed_admin_resync")}
    assert outcome == {"lost": 0, "duplicated": 0, "not_converged": 0, "needed_admin_resync": False}, (
        f"seed {seed}: {figures}\n{run.stdout[-4000:]}"
    )
    assert run.returncode == 0, run.stdout[-4000:]
    assert sum(figures["host_writes"].values()) > 0 and sum(figures["faults_chosen"].values()) > 0, figures
