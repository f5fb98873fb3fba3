"""What an idle mailbox costs in Graph requests a day, over a simulated week, before and after.

`python -m benchmarks.idle_week [--users 20] [--days 7] [--events 5] [--before /work/wt/base9]`

One Microsoft 365 emulator is started; then, one after the other, the connector's code of each checkout
(the baseline first, then this one) runs the same week against it in a child process of its own
(`PYTHONPATH` the checkout, so each imports its own `shared`): an organisation of its own, `--users`
mailboxes with `--events` events each and an empty To Do list, migrated (calendar and list, with their
subscriptions), then the clock (the emulator's and the connector's together) moved timer by timer
through `--days` days: the renewal timer's work every six hours (00:00, 06:00, 12:00, 18:00 UTC, the
default `RENEWAL_SCHEDULE`) and the nightly timer's at 02:00 (`NIGHTLY_RESYNC_SCHEDULE`), every job
they queue run to the end, lifecycle notifications Graph sends answered as the webhook answers them.
Nobody changes anything in Outlook or To Do: every Graph request counted is what idleness costs. The
emulator's stats count the requests (Graph's `/v1.0` endpoints, not Entra's token requests), from the
end of the migration to the end of the week.

State is the unit tests' fakes (`tests/fakes`), Graph is the real adapters (msgraph-sdk) against the
emulator, as in `tests/integration/graph`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RENEWAL_HOURS = (0, 6, 12, 18)
NIGHTLY_HOUR = 2


def graph_requests(stats: dict[str, Any]) -> Counter[str]:
    return Counter({k: v for k, v in stats["requests"].items() if " /v1.0" in k})


def timers(start: datetime, days: int) -> list[tuple[datetime, str]]:
    """Every timer firing after `start` for `days` days, in order."""
    first = start.replace(minute=0, second=0, microsecond=0)
    fired: list[tuple[datetime, str]] = []
    for hour in range(1, days * 24 + 1):
        at = first + timedelta(hours=hour)
        if at.hour in RENEWAL_HOURS:
            fired.append((at, "renewal"))
        if at.hour == NIGHTLY_HOUR:
            fired.append((at, "nightly"))
    return fired


async def simulate(ready: dict[str, Any], users: int, days: int, events: int) -> dict[str, Any]:
    """The child: one week of one checkout's connector against the emulator (imports from PYTHONPATH)."""
    from shared.adapters.graph.task_changes import GraphTaskChanges
    from shared.adapters.graph.todo import GraphTodo
    from shared.domain.tenants import TenantState
    from shared.domain.users import MatchStatus, StaffMember, UserRecord
    from shared.service import jobs
    from shared.service.job_handlers import run_job
    from shared.service.notifications import receive_lifecycle
    from shared.service.schedules import fan_out
    from tests.fakes.services import add_tenant, fake_world
    from tests.fixtures.emulator import info_from
    from tests.integration.graph.harness import open_emulator_graph

    info = info_from(ready, Path(os.devnull))
    async with open_emulator_graph(info) as graph:
        world = fake_world()
        world.clock.current = datetime.fromisoformat(await graph.control.clock())
        tenant = await add_tenant(
            world, graph.tenant.tenant_id, TenantState.ACTIVE, directory_id=graph.tenant.directory_id
        )
        services = replace(
            world.services,
            calendar=graph.calendar(),
            subscriptions=graph.subscriptions(),
            task_changes=GraphTaskChanges(
                graph.clients,
                graph.key_for,
                notification_url=graph.webhook.notification_url,
                lifecycle_url=graph.webhook.lifecycle_url,
            ),
            todo=GraphTodo(graph.clients, graph.key_for),
        )
        start = world.clock.now()
        for n in range(users):
            mailbox = await graph.new_mailbox()
            specs = [
                {
                    "event": {
                        "subject": f"Idle {n}.{e}",
                        "start": {
                            "dateTime": f"{(start + timedelta(days=e + 1)).date()}T09:00:00",
                            "timeZone": "UTC",
                        },
                        "end": {
                            "dateTime": f"{(start + timedelta(days=e + 1)).date()}T10:00:00",
                            "timeZone": "UTC",
                        },
                    }
                }
                for e in range(events)
            ]
            if specs:
                await graph.control.seed_events(graph.tenant.directory_id, mailbox, specs)
            staff = StaffMember(f"s{n}", f"s{n}@{tenant.tenant_id}", None, f"Staff {n}")
            await world.users.save(
                UserRecord(
                    tenant.tenant_id, staff, MatchStatus.MATCHED, world.clock.now(), graph_user_id=mailbox
                )
            )

        async def drain() -> int:
            ran = 0
            for _ in range(100):
                lifecycle = [n for n in graph.webhook.received if "lifecycleEvent" in n]
                graph.webhook.received.clear()
                if lifecycle:
                    await receive_lifecycle(services, json.dumps({"value": lifecycle}).encode())
                batch = [j for j in world.jobs.take() if j.queue != jobs.DELIVERY_QUEUE]
                if not batch:
                    return ran
                for job in batch:
                    await run_job(services, job)
                    ran += 1
            raise RuntimeError("the queues never went quiet")

        await world.jobs.enqueue([jobs.migrate_user(tenant.tenant_id, f"s{n}") for n in range(users)])
        await drain()
        feed_before = len(world.feed.entries.get(tenant.tenant_id, []))
        before = graph_requests(await graph.control.stats())
        jobs_run = 0
        for at, timer in timers(world.clock.now(), days):
            step = (at - world.clock.now()).total_seconds()
            if step > 0:
                await graph.control.advance_clock(seconds=step)
                world.clock.current = at
            await fan_out(services, jobs.renew_tenant if timer == "renewal" else jobs.nightly)
            jobs_run += await drain()
        after = graph_requests(await graph.control.stats())
        spent = after - before
        announced = world.feed.entries.get(tenant.tenant_id, [])[feed_before:]
        return {
            "requests": sum(spent.values()),
            "by_endpoint": dict(spent.most_common()),
            "jobs": jobs_run,
            "announced": sorted({c.type for c in announced}),
            "errors": [u.last_error for u in await world.users.list_all(tenant.tenant_id) if u.last_error],
        }


def run_child(checkout: Path, ready: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        json.dumps(ready),
        "--users",
        str(args.users),
        "--days",
        str(args.days),
        "--events",
        str(args.events),
    ]
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the run of {checkout} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--before", type=Path, default=Path("/work/wt/base9"), help="the baseline checkout")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(simulate(json.loads(args.child), args.users, args.days, args.events))))
        return

    from m365emulator.process import EmulatorProcess

    with tempfile.TemporaryDirectory(prefix="idle-week-") as workdir:
        emulator = EmulatorProcess(Path(workdir) / uuid.uuid4().hex)
        ready = emulator.start()
        try:
            runs = {
                "before": run_child(args.before.resolve(), ready, args),
                "after": run_child(ROOT, ready, args),
            }
        finally:
            emulator.stop()
    per_day = {name: run["requests"] / args.users / args.days for name, run in runs.items()}
    print(f"idle week: {args.users} idle users in one tenant, {args.days} days, {args.events} events each")
    print(f"  before = {args.before}, after = {ROOT}")
    print(f"{'Graph requests':<44}{'before':>10}{'after':>10}")
    endpoints = sorted(set(runs["before"]["by_endpoint"]) | set(runs["after"]["by_endpoint"]))
    for endpoint in endpoints:
        counts = [runs[n]["by_endpoint"].get(endpoint, 0) for n in ("before", "after")]
        print(f"  {endpoint[:42]:<42}{counts[0]:>10}{counts[1]:>10}")
    print(f"{'  in all':<44}{runs['before']['requests']:>10}{runs['after']['requests']:>10}")
    for name in ("before", "after"):
        run = runs[name]
        announced, errors = run["announced"] or "nothing", run["errors"] or "none"
        print(f"  {name}: {run['jobs']} jobs run, announced {announced}, errors {errors}")
    print(f"per idle user per day (aim <= 3): before {per_day['before']:.2f}, after {per_day['after']:.2f}")
    listing = "GET /v1.0/subscriptions"  # the renewal timer's, once per tenant a round: not per user
    own = {
        name: (run["requests"] - run["by_endpoint"].get(listing, 0)) / args.users / args.days
        for name, run in runs.items()
    }
    print(f"  without the tenant's listing ({listing}): before {own['before']:.2f}, after {own['after']:.2f}")


if __name__ == "__main__":
    main()
