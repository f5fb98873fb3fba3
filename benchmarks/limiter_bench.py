"""A tenant Graph throttles as a whole, migrated before and after the per-tenant request budget, in one run.

    .venv/bin/python -m benchmarks.limiter_bench [--users 60] [--events 20] [--budget 150] [--window 10]
                                                  [--latency-ms 20] [--concurrency 16]
                                                  [--before /work/wt/base9]

Starts the Microsoft 365 emulator (`--bulk USERSxEVENTS`), consents the connector app in the bulk tenant,
sets Graph's latency and a request budget per app + tenant (`--budget` requests per `--window` seconds,
refused requests counted, as Graph does), then migrates the tenant twice, each time with the code of one
checkout (`benchmarks/limiter_child.py` run with that checkout first on PYTHONPATH): `--before` (the
baseline), then this one. The emulator's throttling and stats are reset before each side, and the budget
set again. A side's migration: every user's `migrate` job through the job table (`run_job`), `--concurrency`
at once as one worker takes the sync queue's messages, the Graph adapters real and the storage fakes;
a job Graph throttled past the adapter's retries is queued again with its delay and run once it passes.
Prints, per side: wall time, 429s the emulator answered (the tenant's budget and Outlook's mailbox
limits apart), Graph requests, jobs re-queued, users migrated. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from m365emulator.control import ControlClient
from m365emulator.process import EmulatorProcess

HERE = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "limiter_child.py"


def run_side(checkout: Path, args: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    done = subprocess.run(
        [sys.executable, str(CHILD), json.dumps(args)],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{checkout}: {done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--budget", type=int, default=150)
    parser.add_argument("--window", type=float, default=10)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--before", type=Path, default=Path("/work/wt/base9"))
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="limiter-bench-"))
    emulator = EmulatorProcess(
        workdir, seed="demo", extra_args=["--bulk", f"{options.users}x{options.events}"]
    )
    ready = emulator.start()
    try:
        tenant = ready["bulk_tenant_id"]
        async with ControlClient(ready["control"], ready["ca_file"]) as control:
            await control.consent(tenant, ready["client_id"])
            users = [(u["id"], u["upn"]) for u in await control.users(tenant) if u["mailbox_enabled"]]
            print(
                f"{len(users)} users x {options.events} events; Graph at {options.latency_ms:g} ms; "
                f"the tenant's budget {options.budget} requests / {options.window:g} s (refused ones count); "
                f"{options.concurrency} jobs at once"
            )
            print(
                f"{'side':<34} {'wall':>8} {'429 tenant':>11} {'429 mailbox':>12} {'requests':>9} "
                f"{'re-queued':>10} {'migrated':>9}"
            )
            for name, checkout in (
                ("before " + str(options.before), options.before),
                ("after (this checkout)", HERE),
            ):
                await control.reset()
                await control.set_settings(
                    latency_ms=options.latency_ms,
                    throttle_tenant_budget=options.budget,
                    throttle_tenant_window_s=options.window,
                )
                side = {
                    "graph": ready["graph"],
                    "authority": ready["authority"],
                    "ca_file": ready["ca_file"],
                    "tenant_id": tenant,
                    "client_id": ready["client_id"],
                    "client_secret": ready["client_secret"],
                    "now": await control.clock(),
                    "users": users,
                    "concurrency": options.concurrency,
                }
                result = await asyncio.to_thread(run_side, checkout, side)
                stats = await control.stats()
                reasons = stats.get("throttled_by_reason", {})
                mailbox = reasons.get("concurrency", 0) + reasons.get("budget", 0)
                print(
                    f"{name:<34} {result['wall_s']:>7.1f}s {reasons.get('tenant', 0):>11} {mailbox:>12} "
                    f"{stats['requests_total']:>9} {result['requeued']:>10} "
                    f"{result['synced']:>4}/{len(users)}"
                )
    finally:
        emulator.stop()


if __name__ == "__main__":
    asyncio.run(main())
