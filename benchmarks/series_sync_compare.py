"""The sync bench's migration with Outlook series as series, against the app as it was before series existed
and against `recurring_events: occurrences` on this code, side by side in one run.

    .venv/bin/python -m benchmarks.series_sync_compare --before PATH [--users 200] [--events 50]
                                                       [--rounds 3] [--json FILE]

`--before` is a checkout of the app before series (e.g. `git worktree add --detach ../series-base aff14fa`,
with `.venv` linked); its host runs from there (`running_stack(app_root=...)`), on this checkout's emulator
and bulk tenant. Each round runs the three variants on a fresh stack, in an order that rotates from round
to round (so none always runs first on a machine whose load drifts): `before` (the old app, no setting),
`series` and `occurrences` (this app, the tenant's `recurring_events`). Only part 1 of the sync bench
(migration) runs. Prints, per variant, the median and each round's users per second, Graph requests per
user, the job workers' CPU per migrated user, and the requests per user without the To Do list's (the
old app has no To Do sync; this one syncs each migrated user's list, `tasks_from_outlook` being on for
every user of an all-users tenant): the list's lookup, creation, delta pages and its subscription. With
`--json`, `benchmarks.publish` renders the figures into docs/benchmarks.md (`docs/figures/series.json`).
Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
from pathlib import Path
from typing import Any, Final

from benchmarks.sync_bench import (
    FIGURES,
    ROOT,
    add_stack_arguments,
    figure,
    interrupt,
    machine_speed,
    migrate,
    running_stack,
)
from devhost.launcher import HostStartError

TODO_ROWS: Final = ("To Do list lookup", "To Do list create", "To Do tasks delta pages")


def without_tasks(figures: dict[str, Any]) -> float:
    """Graph requests per user less the To Do list's: its rows and its subscription (one per user beyond
    the calendar's)."""
    by_kind: dict[str, float] = figures.get("graph_requests_per_user_by_kind", {})
    todo = sum(by_kind.get(row, 0.0) for row in TODO_ROWS)
    todo += max(0.0, by_kind.get("subscription create", 0.0) - 1.0)
    return float(figures.get("graph_requests_per_user", 0.0)) - todo


def run_variant(args: argparse.Namespace, root: Path, recurring: str | None) -> dict[str, Any]:
    """One migration on a fresh stack; a stack that fails to start is started once more (the figures are
    the migration's, which begins once everything runs)."""
    args.recurring_events = recurring
    args.telemetry_exporter = None
    for attempt in range(2):
        FIGURES.clear()
        figure("load_average_at_start", [round(v, 1) for v in os.getloadavg()])
        try:
            with running_stack(args, root) as stack:
                asyncio.run(migrate(stack, args))
        except HostStartError as error:
            if attempt:
                raise
            print(f"the stack did not start ({str(error)[:200]}); starting it again", flush=True)
            continue
        break
    figure("load_average_at_end", [round(v, 1) for v in os.getloadavg()])
    return dict(FIGURES)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.series_sync_compare")
    add_stack_arguments(parser, users=200, events=50)
    parser.add_argument("--before", required=True, help="a checkout of the app before series")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three variants (3)")
    parser.add_argument("--timeout", type=float, default=1800, help="give up on a migration after (1800 s)")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    variants: list[tuple[str, Path, str | None]] = [
        ("before", Path(args.before).resolve(), None),
        ("series", ROOT, "series"),
        ("occurrences", ROOT, "occurrences"),
    ]
    fastest, slowest = machine_speed()
    print(f"machine: {fastest:.0f}-{slowest:.0f} ms for a fixed workload; {args.users} users x {args.events}")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
    try:
        for round_number in range(args.rounds):
            shift = round_number % len(variants)
            for name, root, recurring in variants[shift:] + variants[:shift]:
                print(f"\n=== round {round_number + 1}: {name} ({root}) ===", flush=True)
                runs[name].append(run_variant(args, root, recurring))
                if args.json:  # what is measured so far survives an interrupted run
                    Path(args.json).write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")
    except KeyboardInterrupt:
        print("\ninterrupted; every process is stopped", file=sys.stderr)
        raise SystemExit(130) from None
    print(f"\n{args.users} users x {args.events} events, {args.rounds} round(s), variants alternating:")
    header = f"  {'variant':<12} {'users/s (median; each round)':<40} {'requests/user':>14}"
    print(f"{header} {'without To Do':>14} {'job CPU ms/user':>16}")
    for name, found in runs.items():
        if not found:
            continue
        rates = [float(f["migration_users_per_second"]) for f in found]
        requests = statistics.median(float(f["graph_requests_per_user"]) for f in found)
        bare = statistics.median(without_tasks(f) for f in found)
        cpu = statistics.median(float(f["migration_cpu_ms_per_user"]["host-jobs"]) for f in found)
        each = ", ".join(f"{r:.2f}" for r in rates)
        rate = f"{statistics.median(rates):6.2f} ({each})"
        print(f"  {name:<12} {rate:<40} {requests:14.2f} {bare:14.2f} {cpu:16.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
