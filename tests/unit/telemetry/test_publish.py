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


def _migration(rate: float, jobs_ms: float, todo: float) -> dict[str, Any]:
    by_kind = {"To Do list lookup": todo, "subscription create": 1.0 + todo}
    return {
        "migration_users_per_second": rate,
        "migration_cpu_ms_per_user": {"host-jobs": jobs_ms, "azurite": 40.0},
        "graph_requests_per_user": 5.0 + 2 * todo,
        "graph_requests_per_user_by_kind": by_kind,
        "load_average_at_start": [12.0, 10.0, 9.0],
        "load_average_at_end": [14.0, 11.0, 9.5],
    }


def test_the_series_comparison_shows_each_variant_side_by_side() -> None:
    series = {
        "before": [_migration(2.0, 70.0, 0.0), _migration(2.2, 72.0, 0.0)],
        "series": [_migration(1.5, 110.0, 1.0), _migration(1.7, 112.0, 1.0)],
    }
    page = publish.render(None, None, series=series)
    assert "## Series against the app before series" in page
    assert "| before | 2.10 (2.00, 2.20) | 71.0 | 40.0 | 5.00 | 5.00 | 12.0 / 14.0; 12.0 / 14.0 |" in page
    assert "| series | 1.60 (1.50, 1.70) | 111.0 | 40.0 | 7.00 | 5.00 |" in page
    assert publish.SERIES_COMMAND in page


def test_the_to_do_migration_cost_is_shown_with_its_command_when_measured() -> None:
    tasks = {
        **_document("task_sync", {}),
        "figures": {
            "users": 500,
            "tasks_per_user": 20,
            "events_only_users_per_second": 2.0,
            "with_tasks_users_per_second": 1.6,
            "tasks_cost_percent": 25.0,
        },
    }
    page = publish.render(None, None, tasks=tasks)
    assert "## Migration with To Do lists" in page
    assert "python -m benchmarks.task_sync_bench --json x.json" in page
    assert "| tasks cost (time per user) | 25 % | < 30 % |" in page
    assert "## Migration with To Do lists" not in publish.render(None, None, tasks=None)


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
    page = publish.render(None, None, chaos=chaos)
    assert "## Chaos run" in page
    assert "`python -m benchmarks.chaos --seed 42 --minutes 10` on AMD EPYC" in page
    assert "| host writes (accepted by the API) | 1100 |" in page
    assert "| faults chosen | 11 |" in page  # the mid-job kills are some of the kills
    assert "| faults by kind | azurite_restarted 4, worker_killed 7, worker_killed_mid_job 5 |" in page
    assert "| duplicated | 1 |" in page
    assert "| converged after the faults stopped | no |" in page
    assert "| needed an admin's resync | yes |" in page


def test_each_telemetry_comparison_is_a_section_every_trace_first(tmp_path: Path) -> None:
    for name, ratio, feed_p95 in (("telemetry-sampled.json", 0.1, 1050.0), ("telemetry.json", 1.0, 1200.0)):
        document = _document(
            "sync", {"off": _figures(2.0, 80.0, 1000.0), "on": _figures(2.0, 80.0, feed_p95)}
        )
        document["command"] = f"python -m benchmarks.sync_bench --sampling-ratio {ratio:g}"
        document["settings"] = {"users": 60, "sampling_ratio": ratio}
        (tmp_path / name).write_text(publish.json.dumps(document), encoding="utf-8")
    out = tmp_path / "benchmarks.md"
    publish.main(["--figures", str(tmp_path), "--out", str(out)])
    page = out.read_text(encoding="utf-8")

    every, sampled = page.index("--sampling-ratio 1`"), page.index("--sampling-ratio 0.1`")
    assert every < page.index("## Telemetry on against off\n") < sampled
    assert sampled < page.index("## Telemetry on against off, 0.1 of the traces")
    assert "| change to feed p95 (ms) | 1,000.0 | 1,200.0 | +20.0 % |" in page
    assert "| change to feed p95 (ms) | 1,000.0 | 1,050.0 | +5.0 % |" in page


def test_the_changes_of_every_round_are_pooled_for_the_change_to_feed_percentiles() -> None:
    runs = {
        "off": {**_figures(2.0, 80.0, 900.0), "change_to_feed_ms": [100, 200, 300, 900]},
        "on": {**_figures(2.0, 80.0, 2000.0), "change_to_feed_ms": [110, 210, 320, 2000]},
        "off-2": {**_figures(2.0, 80.0, 400.0), "change_to_feed_ms": [120, 220, 330, 400]},
        "on-2": {**_figures(2.0, 80.0, 450.0), "change_to_feed_ms": [130, 230, 340, 450]},
    }
    document = {**_document("sync", runs), "settings": {"users": 60, "sampling_ratio": 1.0}}
    page = publish.render(None, None, document)

    # Eight changes a mode: the p50 is the 4th, the p95 the 8th (nearest rank).
    assert "| change to feed p50, every round's changes pooled (ms) | 220.0 | 230.0 | +4.5 % |" in page
    assert "| change to feed p95, every round's changes pooled (ms) | 900.0 | 2,000.0 | +122.2 % |" in page


def test_a_comparison_with_the_monitor_following_telemetry_says_so() -> None:
    document = _document("sync", {"off": _figures(2.0, 80.0, 1000.0), "on": _figures(2.0, 80.0, 1040.0)})
    document["settings"] = {"users": 60, "sampling_ratio": 1.0, "monitor": "follows"}
    page = publish.render(None, None, document)
    assert "## Monitor and telemetry on against off\n" in page
    assert "the message monitor and telemetry" in page
    plain = {**document, "settings": {"users": 60, "sampling_ratio": 1.0, "monitor": "on"}}
    assert "## Telemetry on against off\n" in publish.render(None, None, plain)
