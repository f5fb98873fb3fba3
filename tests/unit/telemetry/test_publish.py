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
