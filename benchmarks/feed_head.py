"""Contention on one tenant's feed head: appends per second to ONE tenant's change feed from N worker
processes at once, on Azurite.

    .venv/bin/python -m benchmarks.feed_head --workers 1,2,4,8 --jobs 8 --changes 3 --seconds 10

Every append writes the tenant's `head` row with If-Match (`TableChangeFeed`); inside a worker, appends
that wait go together in the next transaction (group commit), across workers they race for the head and
the loser reads it again and retries. For each N, N processes (each its own `TableChangeFeed`, as N
Functions workers) start together, each running `--jobs` concurrent jobs that append `--changes` changes
(about 600 bytes each, a typical event change) back to back for `--seconds`. Printed per N: changes and
appends per second, transactions per second, lost races (retries) per transaction, append time p50/p95/
max, and a check that the sequence numbers are gapless and unique. With `--control`, each N is measured
again with every worker on a tenant of its own (`Nx1`: the same load, no race on a head), which separates
the head's contention from what the machine and Azurite can do. The table is that of a fresh tenant
per N. Figures are Azurite on this machine (one Node process serves the table service): the shape, not
Azure's numbers (Azure Table Storage: about 2,000 entities/s per partition, a transaction's round trip
some 10-30 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parents[1]
PAYLOAD: Final = "x" * 450  # with the change's other fields, about 600 bytes as stored


async def _child(args: argparse.Namespace) -> dict[str, Any]:
    from shared.adapters import storage as storage_module
    from shared.adapters.tables import change_feed as feed_module
    from shared.adapters.tables.change_feed import TableChangeFeed
    from shared.adapters.tables.transactions import TransactionFailed
    from shared.service.records import Change
    from shared.settings import StorageSettings

    counts = {"transactions": 0, "lost_races": 0}
    submit = feed_module.submit

    async def counted(table: Any, operations: Any) -> Any:
        counts["transactions"] += 1
        try:
            return await submit(table, operations)
        except TransactionFailed as error:
            if error.lost_race:
                counts["lost_races"] += 1
            raise

    feed_module.submit = counted  # type: ignore[assignment]
    clients = storage_module.StorageClients(
        StorageSettings(args.connection, None, None),
        credential=None,  # type: ignore[arg-type]
        table_prefix=args.prefix,
    )
    feed = TableChangeFeed(clients)
    await clients.table(feed_module.CHANGES)
    tenant = args.tenant
    latencies: list[float] = []
    sequences: list[int] = []
    print("ready", flush=True)  # connected, the table made: the parent starts every worker at once
    start = float(await asyncio.to_thread(sys.stdin.readline))
    stop_at = start + args.seconds
    await asyncio.sleep(max(0.0, start - time.time()))

    async def job(number: int) -> None:
        n = 0
        while time.time() < stop_at:
            now = datetime.now(UTC)
            changes = [
                Change(
                    "event.updated",
                    tenant,
                    {"event": {"id": f"w{args.index}-j{number}-{n}-{k}", "subject": PAYLOAD}},
                    now,
                    staff_id=f"s{number}",
                )
                for k in range(args.changes)
            ]
            started = time.perf_counter()
            written = await feed.append(tenant, changes)
            latencies.append((time.perf_counter() - started) * 1000)
            sequences.extend(c.sequence or 0 for c in written)
            n += 1

    await asyncio.gather(*(job(j) for j in range(args.jobs)))
    await clients.close()
    return {"latencies": latencies, "sequences": sequences, **counts}


def _run(
    azurite: Any, workers: int, args: argparse.Namespace, *, shared: bool = True, tree: Path = HERE
) -> dict[str, Any]:
    prefix = f"head{uuid.uuid4().hex[:8]}"
    children = [
        subprocess.Popen(
            [
                str(HERE / ".venv" / "bin" / "python"),
                str(Path(__file__).resolve()),  # this script, over the measured tree's code
                "--child",
                f"--connection={azurite.connection_string}",
                f"--prefix={prefix}",
                f"--tenant=contoso{workers}{'' if shared else f'-{i}'}.example",
                f"--index={i}",
                f"--seconds={args.seconds}",
                f"--jobs={args.jobs}",
                f"--changes={args.changes}",
            ],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(workers)
    ]
    for child in children:  # each imported, connected and its table made
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("a worker failed to start (its errors above)")
    start = time.time() + 0.5
    for child in children:  # the same start for all, given before any is waited for
        assert child.stdin is not None
        child.stdin.write(f"{start}\n")
        child.stdin.close()
    results = []
    for child in children:
        assert child.stdout is not None
        out = child.stdout.read()
        if child.wait() != 0:
            raise RuntimeError("a worker failed (its errors above)")
        results.append(json.loads(out.strip().splitlines()[-1]))
    latencies = sorted(x for r in results for x in r["latencies"])
    sequences = sorted(x for r in results for x in r["sequences"])
    count = len(sequences)
    gapless = all(sorted(r["sequences"]) == list(range(1, len(r["sequences"]) + 1)) for r in results)
    if shared:
        gapless = sequences == list(range(1, count + 1))
    transactions = sum(r["transactions"] for r in results)
    lost = sum(r["lost_races"] for r in results)
    return {
        "workers": (f"{workers}" if shared else f"{workers}x1") + (" before" if tree != HERE else ""),
        "changes_per_s": count / args.seconds,
        "appends_per_s": len(latencies) / args.seconds,
        "transactions_per_s": transactions / args.seconds,
        "lost_per_transaction": lost / transactions if transactions else 0.0,
        "p50_ms": statistics.median(latencies) if latencies else 0.0,
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] if latencies else 0.0,
        "max_ms": latencies[-1] if latencies else 0.0,
        "gapless": gapless,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts, each measured in turn")
    parser.add_argument("--jobs", type=int, default=8, help="concurrent appending jobs per worker")
    parser.add_argument("--changes", type=int, default=3, help="changes per append (one job's publish)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--before", help="a checkout measured too, row by row before this one")
    parser.add_argument(
        "--control",
        action="store_true",
        help="also each worker count on a tenant per worker (`Nx1`): what the machine does without the race",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--connection", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--tenant", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args))))
        return
    from devhost.azurite import Azurite

    rows = []
    with Azurite() as azurite:
        for workers in (int(n) for n in args.workers.split(",")):
            print(f"measuring {workers} worker(s) ...", file=sys.stderr, flush=True)
            if args.before:  # the same load on the checkout measured as "before", then on this one
                rows.append(_run(azurite, workers, args, tree=Path(args.before).resolve()))
            rows.append(_run(azurite, workers, args))
            if args.control and workers > 1:  # the same workers, each on a tenant of its own: no race
                rows.append(_run(azurite, workers, args, shared=False))
    print(
        f"one tenant's feed, {args.jobs} jobs per worker appending {args.changes} changes each, "
        f"{args.seconds:g} s per row (Azurite)"
    )
    header = ("workers", "changes/s", "appends/s", "txns/s", "lost/txn", "p50 ms", "p95 ms", "max ms")
    header += ("gapless",)
    print(f"{header[0]:<12}" + " ".join(f"{h:>10}" for h in header[1:]))
    for r in rows:
        print(
            f"{r['workers']:<12}{r['changes_per_s']:>10.0f} {r['appends_per_s']:>10.0f} "
            f"{r['transactions_per_s']:>10.1f} {r['lost_per_transaction']:>10.2f} {r['p50_ms']:>10.0f} "
            f"{r['p95_ms']:>10.0f} {r['max_ms']:>10.0f} {r['gapless']!s:>10}"
        )


if __name__ == "__main__":
    main()
