"""docs/benchmarks.md is rendered from the benchmarks' figures files: every figure with its command, the
machine and the date, and the telemetry comparison from the runs it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import publish

pytestmark = pytest.mark.unit

MACHINE = {"cpu": "AMD EPYC", "cores": 2, "memory_gib": 23.5, "os": "Linux", "python": "3.11.7",
           "load_average_at_start": [17.9, 16.2, 10.7]}  # fmt: skip


def _document(bench: str, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "bench": bench,
        "command": f"python -m benchmarks.{bench}_bench --json x.json",
        "date": "2026-12-05T12:31:50+00:00",
        "machine": MACHINE,
        "calibration": {"before_ms": [41, 43], "after_ms": [44, 60]},
        "settings": {"users": 1000},
        "runs": runs,
    }


def _figures(users_per_second: float, ack_p99: float, feed_p95: float) -> dict[str, float]:
    return {
        "migration_users_per_second": users_per_second,
        "webhook_ack_p99_ms": ack_p99,
        "change_to_feed_p95_ms": feed_p95,
    }


def test_the_page_shows_each_figure_with_its_command_machine_and_date(tmp_path: Path) -> None:
    sync = _document(
        "sync",
        {
            "off": _figures(2.8, 650.0, 900.0),
            "on": _figures(2.6, 700.0, 990.0),
        },
    )
    appointments = _document("appointment", {"off": {"appointment_1_staff_p95_ms": 1234.0}})
    (tmp_path / "sync.json").write_text(publish.json.dumps(sync), encoding="utf-8")
    (tmp_path / "appointments.json").write_text(publish.json.dumps(appointments), encoding="utf-8")
    out = tmp_path / "benchmarks.md"
    publish.main(["--figures", str(tmp_path), "--out", str(out)])
    page = out.read_text(encoding="utf-8")
    assert "`python -m benchmarks.sync_bench --json x.json` on AMD EPYC (2 cores" in page
    assert "2026-12-05T12:31:50+00:00" in page
    assert "| users per second | 2.80/s | >= 20 |" in page
    assert "| 1 staff: p95 | 1,234 ms |  |" in page
    assert "| users per second | 2.8 | 2.6 | +7.1 % |" in page  # fewer users a second is slower
    assert "| webhook answer p99 (ms) | 650.0 | 700.0 | +7.7 % |" in page


def test_the_page_says_what_the_recorded_loads_say_of_the_machine(tmp_path: Path) -> None:
    """Regression: the page said the machine was a busy shared VM whatever the runs recorded, so a run on
    a quiet machine would have been published under a false description."""
    quiet = {**_figures(20.0, 30.0, 900.0), "load_average_at_start": [0.4, 0.5, 0.6]}
    sync = _document("sync", {"off": quiet, "on": {**quiet, "load_average_at_end": [1.2, 0.8, 0.7]}})
    sync["machine"] = {**MACHINE, "load_average_at_end": [1.1, 0.9, 0.7]}
    assert "The machine was quiet: load averages of at most 1.2 on 2 cores." in publish.render(sync, None)
    assert "shared" not in publish.render(sync, None)
    busy = _document("sync", {"off": {**quiet, "load_average_at_end": [19.5, 12.0, 9.0]}})
    assert "shared with other work: load averages up to 19.5 on 2 cores" in publish.render(busy, None)


def test_the_chaos_run_is_shown_with_its_command_faults_and_verdict() -> None:
    chaos = {
        "command": "python -m benchmarks.chaos --seed 42 --minutes 10",
        "date": "2026-12-05T19:20:00+00:00",
        "machine": {"cpu": "AMD EPYC", "cores": 2, "load_average_at_end": [20.1, 19.0, 18.2]},
        "minutes": 10.0,
        "host_writes": {"appointment": 500, "task": 400, "mail": 200},
        "outlook_changes": {"event": 300, "task": 290},
        "faults_chosen": {"worker_killed": 7, "worker_killed_mid_job": 5, "azurite_restarted": 4},
        "notifications": {"sent": 900, "dropped": 9, "duplicated": 11, "reordered": 18},
        "lost": 0,
        "duplicated": 1,
        "not_converged": 0,
        "converged_after_s": None,
        "needed_admin_resync": True,
    }
    page = publish.render(None, None, None, chaos)
    assert "## Chaos run" in page
    assert "`python -m benchmarks.chaos --seed 42 --minutes 10` on AMD EPYC" in page
    assert "| host writes (accepted by the API) | 1100 |" in page
    assert "| faults chosen | 11 |" in page  # the mid-job kills are some of the kills
    assert "| faults by kind | azurite_restarted 4, worker_killed 7, worker_killed_mid_job 5 |" in page
    assert "| duplicated | 1 |" in page
    assert "| converged after the faults stopped | no |" in page
    assert "| needed an admin's resync | yes |" in page
