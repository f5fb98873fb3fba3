"""Render docs/benchmarks.md from the figures the benchmarks wrote (`--json`), never by hand.

    .venv/bin/python -m benchmarks.publish [--figures docs/figures] [--out docs/benchmarks.md]

Reads `sync.json` (`benchmarks.sync_bench --telemetry both --json ...`), `appointments.json`
(`benchmarks.appointment_bench --json ...`) and, when present, `telemetry.json` and any other
`telemetry-*.json` (`benchmarks.sync_bench --telemetry both --rounds N [--sampling-ratio R] --json ...`:
telemetry comparisons, each its own section in file name order, instead of sync.json's one pair),
`series.json` (`benchmarks.series_sync_compare --json ...`: the migration with Outlook series against the
app before series, side by side in one run), `tasks.json` (`benchmarks.task_sync_bench --json ...`, the
To Do migration's cost) and `chaos.json` (`benchmarks.chaos --json ...`: the chaos run's figures) from the
figures directory; a file that is missing leaves its sections out, and says so. Each figure is shown with
the command that measured it, the machine, the date and the machine's calibration before and after the run.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
FIGURES: Final = ROOT / "docs" / "figures"
OUT: Final = ROOT / "docs" / "benchmarks.md"

# (section, figure key, label, unit, aim) per bench; a key a run did not record is skipped.
SYNC: Final = (
    ("Onboarding", "migration_users", "users migrated (consent to 100 %)", "", ""),
    ("Onboarding", "migration_seconds", "wall time, consent to 100 %", "s", ""),
    ("Onboarding", "migration_users_per_second", "users per second", "/s", ">= 20"),
    ("Onboarding", "graph_requests_per_user", "Graph requests per user", "", "<= 1.1x the minimum"),
    ("Onboarding", "graph_minimum_per_user", "the minimum per user", "", ""),
    ("Onboarding", "graph_throttled", "Graph 429s during the migration", "", ""),
    ("Webhook", "webhook_rate_per_second", "notification POSTs per second (open loop)", "/s", ""),
    ("Webhook", "webhook_ack_p50_ms", "answer time p50", "ms", ""),
    ("Webhook", "webhook_ack_p99_ms", "answer time p99", "ms", "< 50 ms (Graph allows 3 s)"),
    ("Webhook", "webhook_ack_max_ms", "answer time max", "ms", ""),
    ("Webhook", "webhook_forged_ack_p99_ms", "control: forged clientState, nothing queued, p99", "ms", ""),
    (
        "Outlook change to feed",
        "change_to_feed_p50_ms",
        "Graph's 201 to the change on the feed, p50",
        "ms",
        "",
    ),
    ("Outlook change to feed", "change_to_feed_p95_ms", "p95", "ms", "< 2,000 ms"),
    ("Outlook change to feed", "change_to_feed_max_ms", "max", "ms", ""),
    ("Outlook change to feed", "change_to_feed_missing", "changes not on the feed within 60 s", "", "0"),
)
APPOINTMENTS: Final = (
    ("Appointment to every calendar", "appointment_1_staff_p50_ms", "1 staff: PUT to synced, p50", "ms", ""),
    ("Appointment to every calendar", "appointment_1_staff_p95_ms", "1 staff: p95", "ms", ""),
    ("Appointment to every calendar", "appointment_5_staff_p50_ms", "5 staff: PUT to synced, p50", "ms", ""),
    ("Appointment to every calendar", "appointment_5_staff_p95_ms", "5 staff: p95", "ms", ""),
    ("Appointment to every calendar", "burst_appointments", "burst: appointment PUTs", "", ""),
    ("Appointment to every calendar", "burst_answer_p99_ms", "burst: API answer p99", "ms", ""),
    ("Appointment to every calendar", "burst_seconds", "burst: all synced after", "s", ""),
    ("Appointment to every calendar", "burst_per_second", "burst: appointments per second", "/s", ""),
    ("Appointment to every calendar", "burst_failed", "burst: failed", "", "0"),
    (
        "Requests per operation",
        "appointment_1_staff_graph_requests",
        "Graph requests, 1-staff appointment",
        "",
        "",
    ),
    ("Requests per operation", "appointment_1_staff_graph_minimum", "minimum (one create)", "", ""),
    (
        "Requests per operation",
        "appointment_5_staff_graph_requests",
        "Graph requests, 5-staff appointment",
        "",
        "",
    ),
    ("Requests per operation", "appointment_5_staff_graph_minimum", "minimum (five creates)", "", ""),
)
COMPARED: Final = (
    ("migration_users_per_second", "users per second", True),
    ("webhook_ack_p99_ms", "webhook answer p99 (ms)", False),
    ("change_to_feed_p95_ms", "change to feed p95 (ms)", False),
    ("migration_cpu_ms_per_user.host-jobs", "job workers' CPU per migrated user (ms)", False),
    ("migration_cpu_ms_per_user.host-http", "HTTP process's CPU per migrated user (ms)", False),
)


TASK_LISTS: Final = "Migration with To Do lists"
TASKS: Final = (
    (TASK_LISTS, "users", "users migrated", "", ""),
    (TASK_LISTS, "tasks_per_user", "To Do tasks per user", "", ""),
    (TASK_LISTS, "events_only_users_per_second", "users per second, events only", "/s", ""),
    (TASK_LISTS, "with_tasks_users_per_second", "users per second, with tasks", "/s", ""),
    (TASK_LISTS, "rounds", "rounds (events only and with tasks alternating; the median of each)", "", ""),
    (TASK_LISTS, "tasks_cost_percent", "tasks cost (time per user)", "%", "< 30 %"),
    (TASK_LISTS, "tasks_cost_percent_each", "tasks cost, each round", "%", ""),
    (TASK_LISTS, "list_requests_per_user", "Graph requests per user's list", "", "<= 1.1x"),
    (TASK_LISTS, "list_requests_minimum", "the minimum per list", "", ""),
    (TASK_LISTS, "change_to_feed_p50_ms", "To Do change to feed p50", " ms", ""),
    (TASK_LISTS, "change_to_feed_p95_ms", "To Do change to feed p95", " ms", "< 2 s"),
    # main's checkout run side by side with this one, when the figures say so
    (
        TASK_LISTS,
        "before_events_only_users_per_second",
        "main, same time: users/s, events only",
        "/s",
        "",
    ),
    (
        TASK_LISTS,
        "before_with_tasks_users_per_second",
        "main, same time: users/s, with tasks",
        "/s",
        "",
    ),
    (TASK_LISTS, "before_tasks_cost_percent", "main, same time: tasks cost", "%", ""),
)


def _get(figures: dict[str, Any], name: str) -> float:
    """A figure, a dotted name reaching into one (0 when absent)."""
    value: Any = figures
    for part in name.split("."):
        value = value.get(part, 0.0) if isinstance(value, dict) else 0.0
    return float(value)


def _value(value: Any, unit: str) -> str:
    if isinstance(value, list):
        return ", ".join(_value(v, unit) for v in value)
    if isinstance(value, float):
        text = f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text} {unit}".strip() if unit and unit != "/s" else f"{text}{unit}"


def _load_at_end(machine: dict[str, Any]) -> Any:
    # Files written before the key was named for when it is read called it `load_average_at_start`.
    return machine.get("load_average_at_end", machine.get("load_average_at_start"))


def _source(document: dict[str, Any]) -> str:
    m = document["machine"]
    calibration = document.get("calibration", {})
    return (
        f"`{document['command'].strip()}` on {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB, "
        f"{m['os']}, Python {m['python']}; load average at the end {_load_at_end(m)}), "
        f"{document['date']}; calibration (the fixed workload, fastest-slowest ms) "
        f"{calibration.get('before_ms')} before, {calibration.get('after_ms')} after"
    )


def _table(
    rows: tuple[tuple[str, str, str, str, str], ...], figures: dict[str, Any], section: str
) -> list[str]:
    lines = ["| figure | measured | aim |", "|---|---:|---|"]
    for where, key, label, unit, aim in rows:
        if where == section and key in figures:
            lines.append(f"| {label} | {_value(figures[key], unit)} | {aim} |")
    return lines


def _memory(figures: dict[str, Any]) -> list[str]:
    peaks = figures.get("peak_rss_mib") or figures.get("migration_peak_rss_mib") or {}
    cpu = figures.get("migration_cpu_ms_per_user") or {}
    lines = ["| process group | peak RSS over the run | CPU per migrated user |", "|---|---:|---:|"]
    for name, mib in peaks.items():
        per_user = f"{cpu[name]:.0f} ms" if name in cpu else ""
        lines.append(f"| {name} | {mib:,} MiB | {per_user} |")
    return lines


def _slower(off: float, on: float, higher_is_better: bool) -> float:
    if not off:
        return 0.0
    return ((off - on) / off if higher_is_better else (on - off) / off) * 100


def _pooled(runs: dict[str, dict[str, Any]], names: list[str], share: float) -> float:
    """The nearest-rank percentile of every change of these runs together, as the sync bench prints it."""
    pooled = sorted(float(v) for name in names for v in runs[name]["change_to_feed_ms"])
    if not pooled:
        return 0.0
    return pooled[min(len(pooled) - 1, max(0, math.ceil(share * len(pooled)) - 1))]


def _traced(settings: dict[str, Any]) -> str:
    ratio = float(settings.get("sampling_ratio", 1.0))
    return (
        "every trace"
        if ratio >= 1
        else f"{ratio:g} of the traces (TELEMETRY_SAMPLING_RATIO) and every failed span"
    )


def _telemetry(runs: dict[str, dict[str, Any]], settings: dict[str, Any]) -> list[str]:
    offs = [k for k in runs if k.startswith("off")]
    ons = [k for k in runs if k.startswith("on")]
    ratio = float(settings.get("sampling_ratio", 1.0))
    both = settings.get("monitor") == "follows"  # the message monitor on and off with telemetry
    subject = "Monitor and telemetry" if both else "Telemetry"
    out = [
        f"## {subject} on against off" + ("" if ratio >= 1 else f", {ratio:g} of the traces"),
        "",
        f"The same sync benchmark ({settings['users']:,} users) on fresh stacks in one session, "
        + ("the message monitor and telemetry" if both else "telemetry"),
        "off and on alternating (on: "
        + ("every message recorded by the monitor, " if both else "")
        + "every worker's metrics and log records, and "
        + _traced(settings)
        + ", exported",
        "over OTLP/HTTP to a local sink, batched as in production). Positive is slower; the aim is under",
        "10 %. Each run's load average is beside it: CPU time per migrated user is the figure the load of",
        "other work moves least.",
        "",
        "| run | load average at start / end | " + " | ".join(label for _, label, _ in COMPARED) + " |",
        "|---|---|" + "---:|" * len(COMPARED),
    ]
    for name in [*offs, *ons]:
        values = " | ".join(f"{_get(runs[name], key):,.1f}" for key, _, _ in COMPARED)
        start, end = runs[name].get("load_average_at_start"), runs[name].get("load_average_at_end")
        load = f"{start} / {end}" if start and end else "not recorded"
        out.append(f"| telemetry {name} | {load} | {values} |")
    out += ["", "| figure (median of the runs) | off | on | slower by |", "|---|---:|---:|---:|"]
    for key, label, higher_is_better in COMPARED:
        off = statistics.median(_get(runs[k], key) for k in offs)
        on = statistics.median(_get(runs[k], key) for k in ons)
        out.append(f"| {label} | {off:,.1f} | {on:,.1f} | {_slower(off, on, higher_is_better):+.1f} % |")
    if all("change_to_feed_ms" in runs[k] for k in runs):  # each change's time: the rounds pooled
        for share in (0.5, 0.95):
            off, on = (_pooled(runs, names, share) for names in (offs, ons))
            label = f"change to feed p{round(share * 100)}, every round's changes pooled (ms)"
            out.append(f"| {label} | {off:,.1f} | {on:,.1f} | {_slower(off, on, False):+.1f} % |")
    exported = runs[ons[0]].get("telemetry_exported") or {}
    if exported:
        sent = ", ".join(
            f"{k}: {v['posts']} posts, {v['bytes'] / 1024:,.0f} KiB" for k, v in exported.items()
        )
        out += ["", f"What the sink took over the first telemetry-on run: {sent}."]
    return [*out, ""]


SERIES_COMMAND: Final = (
    "python -m benchmarks.series_sync_compare --before <checkout of aff14fa> --users 200 --events 50 "
    "--rounds 3 --json docs/figures/series.json"
)


def _series(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The migration before series existed, with `recurring_events: series` and with `occurrences`."""
    from benchmarks.series_sync_compare import without_tasks  # the To Do list's requests, left out

    out = [
        "## Series against the app before series",
        "",
        f"`{SERIES_COMMAND}`: the sync benchmark's migration on a fresh stack per run, the three variants",
        "in one session, their order rotating round by round. `before` is the app before series existed (it",
        "has no To Do sync); `series` and `occurrences` are this app with the tenant's `recurring_events`,",
        "each migrated user's To Do list synced too (`tasks_from_outlook` is on for every user of an",
        "all-users tenant, and the bench cannot turn it off before they migrate), so the requests without",
        "To Do's are beside. CPU per migrated user (the job workers', and Azurite's for the storage they",
        "ask for) is the figure the load of other work moves least. `occurrences` is today's expanded form",
        "in today's app, so `series` against it is what series costs; `before` against both is what came",
        "since beside series (the To Do list's first sync, the message monitor, the mailbox claims).",
        "",
        "| variant | users/s (median; each round) | job-worker CPU ms/user | Azurite CPU ms/user "
        "| Graph requests/user | without To Do | load average at start / end |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name, found in runs.items():
        if not found:
            continue
        rates = [float(f["migration_users_per_second"]) for f in found]
        each = ", ".join(f"{r:.2f}" for r in rates)
        jobs = statistics.median(float(f["migration_cpu_ms_per_user"]["host-jobs"]) for f in found)
        storage = statistics.median(float(f["migration_cpu_ms_per_user"]["azurite"]) for f in found)
        requests = statistics.median(float(f["graph_requests_per_user"]) for f in found)
        bare = statistics.median(without_tasks(f) for f in found)
        loads = "; ".join(
            f"{f['load_average_at_start'][0]} / {f['load_average_at_end'][0]}"
            for f in found
            if f.get("load_average_at_start") and f.get("load_average_at_end")
        )
        out.append(
            f"| {name} | {statistics.median(rates):.2f} ({each}) | {jobs:,.1f} | {storage:,.1f} "
            f"| {requests:.2f} | {bare:.2f} | {loads or 'not recorded'} |"
        )
    return [*out, ""]


def _load_note(documents: list[dict[str, Any]]) -> list[str]:
    """What the recorded load averages say of the machine: quiet, or shared with other work."""
    loads = [
        float(values[0])
        for document in documents
        for run in document.get("runs", {}).values()
        for key in ("load_average_at_start", "load_average_at_end")
        if isinstance(values := run.get(key), list) and values
    ]
    loads += [
        float(d["machine"]["load_average_at_end"][0])
        for d in documents
        if d.get("machine", {}).get("load_average_at_end")
    ]
    if not loads:
        return []
    cores = max(int(d.get("machine", {}).get("cores") or 1) for d in documents)
    if max(loads) <= cores:
        return [f"The machine was quiet: load averages of at most {max(loads):.1f} on {cores} cores.", ""]
    return [
        f"The machine was shared with other work: load averages up to {max(loads):.1f} on {cores} cores. The",
        "latencies are inflated by it (compare a run's webhook control, forged notifications that queue",
        "nothing); they are what these runs measured, not guarantees.",
        "",
    ]


def _chaos(run: dict[str, Any]) -> list[str]:
    """The chaos run: what it did, the faults it met, and whether everything converged (a `*_mid_job` count
    is a part of its kind's, not more faults)."""
    m = run["machine"]
    faults = ", ".join(f"{kind} {n}" for kind, n in sorted(run["faults_chosen"].items()))
    notes = run.get("notifications", {})
    converged = run.get("converged_after_s")
    rows = [
        ("host writes (accepted by the API)", sum(run["host_writes"].values())),
        ("host writes by kind", ", ".join(f"{k} {n}" for k, n in sorted(run["host_writes"].items()))),
        ("Outlook changes through Graph", sum(run["outlook_changes"].values())),
        ("faults chosen", sum(n for k, n in run["faults_chosen"].items() if not k.endswith("_mid_job"))),
        ("faults by kind", faults),
        ("Graph requests answered with a fault", run.get("graph_faults_answered", 0)),
        (
            "notifications sent / dropped / duplicated / reordered",
            "/".join(str(notes.get(k, 0)) for k in ("sent", "dropped", "duplicated", "reordered")),
        ),
        ("lost", run["lost"]),
        ("duplicated", run["duplicated"]),
        ("staff members not converged", run["not_converged"]),
        ("converged after the faults stopped", "no" if converged is None else f"{converged} s"),
        ("needed an admin's resync", "yes" if run.get("needed_admin_resync") else "no"),
    ]
    return [
        "## Chaos run",
        "",
        f"`{run['command']}` on {m['cpu']} ({m['cores']} cores, load average at the end "
        f"{_load_at_end(m)}), {run['date']}; {run['minutes']} minutes of writes and faults.",
        "",
        "| figure | measured |",
        "|---|---|",
        *(f"| {label} | {value} |" for label, value in rows),
        "",
    ]


def render(
    sync: dict[str, Any] | None,
    appointments: dict[str, Any] | None,
    *telemetry: dict[str, Any],
    series: dict[str, list[dict[str, Any]]] | None = None,
    tasks: dict[str, Any] | None = None,
    chaos: dict[str, Any] | None = None,
) -> str:
    out = [
        "# Benchmarks",
        "",
        "Generated by `python -m benchmarks.publish` from the figures files in `docs/figures/`, which the",
        "benchmarks write with `--json` (`make bench` prints the same figures, and a `figures:` JSON line).",
        "Do not edit by hand: run the benchmark again and publish.",
        "",
        "The stack is the local one: Azurite, the Microsoft 365 emulator (every Graph, Entra and Key Vault",
        "request waits the stated latency) and the local function host running the real app, each queue",
        "function on two processes. Each source gives the machine and its load average as the run ended.",
        "The calibration is the CPU time of a fixed workload just before and after the run (lower is",
        "faster): it tells a slower CPU from a faster one, not how busy the machine was.",
        "",
        *_load_note([d for d in (sync, appointments, *telemetry, tasks) if d is not None]),
    ]
    if sync is None:
        out += ["No sync figures (`docs/figures/sync.json`) yet.", ""]
    else:
        runs = sync["runs"]
        base = runs.get("off") or runs.get("on") or {}
        out += [f"Sync figures: {_source(sync)}.", ""]
        for section in ("Onboarding", "Webhook", "Outlook change to feed"):
            out += [f"## {section}", "", *_table(SYNC, base, section), ""]
        out += [
            "## Memory and CPU",
            "",
            "Peak resident memory per process group (the sync run, telemetry off):",
            "",
        ]
        out += [*_memory(base), ""]
        if not telemetry and "on" in runs and "off" in runs:
            out += _telemetry(runs, sync["settings"])
    for comparison in telemetry:
        out += [f"Telemetry figures: {_source(comparison)}.", ""]
        out += _telemetry(comparison["runs"], comparison["settings"])
    if series is not None:
        out += _series(series)
    if appointments is None:
        out += ["No appointment figures (`docs/figures/appointments.json`) yet.", ""]
    else:
        figures = appointments["runs"].get("off", {})
        out += [f"Appointment figures: {_source(appointments)}.", ""]
        for section in ("Appointment to every calendar", "Requests per operation"):
            out += [f"## {section}", "", *_table(APPOINTMENTS, figures, section), ""]
    if tasks is not None:
        out += [f"To Do figures: {_source(tasks)}.", "", f"## {TASK_LISTS}", ""]
        out += [*_table(TASKS, tasks["figures"], TASK_LISTS), ""]
    if sync is not None:
        base = sync["runs"].get("off") or {}
        if "graph_requests_per_user" in base:
            out += [
                "Requests per migrated user (onboarding): "
                f"{base['graph_requests_per_user']:.2f} against a minimum of "
                f"{base['graph_minimum_per_user']:.2f}.",
                "",
            ]
    if chaos is not None:
        out += _chaos(chaos)
    return "\n".join(out).rstrip() + "\n"


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.publish", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--figures", type=Path, default=FIGURES, help="where sync.json and appointments.json are"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="the page to write (docs/benchmarks.md)")
    args = parser.parse_args(argv)
    comparisons = sorted(
        args.figures.glob("telemetry*.json"), key=lambda p: (p.name != "telemetry.json", p.name)
    )
    page = render(
        _read(args.figures / "sync.json"),
        _read(args.figures / "appointments.json"),
        *(json.loads(path.read_text(encoding="utf-8")) for path in comparisons),
        series=_read(args.figures / "series.json"),
        tasks=_read(args.figures / "tasks.json"),
        chaos=_read(args.figures / "chaos.json"),
    )
    args.out.write_text(page, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
