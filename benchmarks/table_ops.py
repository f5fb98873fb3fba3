"""Table Storage operations, exactly counted, before and after in one run: what each unit of work costs, which
partition runs hottest, and what one tenant's renewal and console cost as the number of tenants grows.

    .venv/bin/python -m benchmarks.table_ops [--before /work/wt/base9] [--users 1000] [--events 3]
                                             [--tenants 20] [--notifications 2000] [--rate 200]
                                             [--writes 50] [--layouts 100,1000,10000]

Starts one Azurite (in memory) and runs the same measurements twice, each in a process of its own with its
own tables: once with the code at `--before` (its directory first on the import path) and once with this
checkout. The services are the app's handlers and its Table Storage adapters; Graph is the in-memory fake
of the unit tests, so every request counted is a table request. Each request is recorded by a wrapper
around azure-core's aiohttp transport (`tests/fixtures/table_requests.py`, loaded from this checkout in
both processes): its table, kind and the partition of every entity it touched (a query: each entity it
answered; a transaction: each operation). A query that no `PartitionKey eq` bounds is a scan: the service
reads every row of the table to answer it, and the figures count those rows as read.

1. Migration: `--users` matched users of one tenant, `--events` events each, migrated 16 at a time: table
   entities per migrated user, and the hottest partition's entities per second (the busiest one-second
   window) with its share of all entities.
2. Notifications: `--tenants` tenants of 10 migrated users; `--notifications` Graph notifications, each
   after one changed event, open loop at `--rate` per second (up to 64 in flight): entities per
   notification, the hottest partition (its share, its entities per notification, and so what it carries
   at 200 notifications/s), and the achieved rate.
3. Appointment writes: `--writes` appointments for one staff member, each stored and its write job run:
   entities per write.
4. Many tenants: tenants of 2 users each (a subscription per user) added until each size of `--layouts`;
   at each size, one tenant's renewal (`renew_tenant_subscriptions`, Graph holding its subscriptions) and
   its console poll (progress and the first page of `GET /users`): requests and entities per tenant.

Prints the figures side by side; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
RECORDER = HERE / "tests" / "fixtures" / "table_requests.py"
MIGRATION_CONCURRENCY = 16
MAX_IN_FLIGHT = 64
USERS_PER_NOTIFIED_TENANT = 10
USERS_PER_LAYOUT_TENANT = 2
SEED_CONCURRENCY = 32


# --- the child: one code version against one set of tables ----------------------------------------


def _recorder() -> Any:
    spec = importlib.util.spec_from_file_location("table_requests", RECORDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["table_requests"] = module
    spec.loader.exec_module(module)
    return module


def on_tables(services: Any, storage: Any) -> Any:
    """The fake world's services with the app's Table Storage adapters for everything the connector keeps in
    tables but the message monitor (Graph, queues, Key Vault and the monitor stay fakes)."""
    from shared.adapters.tables.appointments import TableAppointments
    from shared.adapters.tables.busy import TableBusy
    from shared.adapters.tables.change_feed import TableChangeFeed
    from shared.adapters.tables.consent_states import TableConsentStates
    from shared.adapters.tables.dead_letters import TableDeadLetters
    from shared.adapters.tables.item_statuses import TableItemStatuses
    from shared.adapters.tables.leases import TableLeases
    from shared.adapters.tables.subscription_index import TableSubscriptionIndex
    from shared.adapters.tables.tasks import TableTasks
    from shared.adapters.tables.tenants import TableTenants
    from shared.adapters.tables.users import TableUsers

    return dataclasses.replace(
        services,
        tenants=TableTenants(storage),
        users=TableUsers(storage),
        consent_states=TableConsentStates(storage),
        feed=TableChangeFeed(storage),
        item_statuses=TableItemStatuses(storage),
        leases=TableLeases(storage),
        subscription_index=TableSubscriptionIndex(storage),
        dead_letters=TableDeadLetters(storage),
        appointments=TableAppointments(storage),
        busy=TableBusy(storage),
        tasks=TableTasks(storage),
    )


def _hottest(log: Any, table_sizes: dict[str, int]) -> dict[str, Any]:
    """Entities per (table, partition), scans counted as every row of their table, and the busiest
    one-second window of the hottest partition."""
    counts: Counter[tuple[str, str]] = Counter()
    windows: Counter[tuple[str, str, int]] = Counter()
    for request in log.requests:
        if request.scan:
            size = table_sizes.get(request.table, len(request.partitions))
            key = (request.table, "(whole table)")
            counts[key] += size
            windows[(*key, int(request.at))] += size
            continue
        for partition in request.partitions:
            counts[(request.table, partition)] += 1
            windows[(request.table, partition, int(request.at))] += 1
    total = sum(counts.values())
    if not counts:
        return {"total": 0}
    (table, partition), entities = counts.most_common(1)[0]
    peak = max(n for (t, p, _), n in windows.items() if (t, p) == (table, partition))
    return {
        "total": total,
        "requests": len(log.requests),
        "scans": len(log.scans()),
        "hottest": f"{_short(table)} / {partition}",
        "hottest_entities": entities,
        "hottest_share": entities / total,
        "hottest_peak_per_s": peak,
    }


def _short(table: str) -> str:
    return table[len(os.environ.get("TABLE_OPS_PREFIX", "")) :] or table


async def _table_sizes(storage: Any, names: list[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for name in names:
        table = await storage.table(name)
        count = 0
        async for _ in table.query_entities("RowKey ge ''", select=["RowKey"], results_per_page=1000):
            count += 1
        sizes[storage.table_name(name)] = count
    return sizes


async def _child(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, os.getcwd())
    recorder = _recorder()
    from shared.adapters.storage import StorageClients
    from shared.domain.appointments import Appointment
    from shared.domain.tenants import AuthMode, Tenant, TenantSettings, TenantState
    from shared.domain.users import MatchStatus, StaffMember, SyncState, UserRecord
    from shared.service import jobs
    from shared.service.appointment_api import put_appointment
    from shared.service.job_handlers import run_job
    from shared.service.records import GraphSubscription, SubscriptionRecord, UserQuery, Watched
    from shared.service.schedules import renew_tenant_subscriptions
    from shared.service.tenants import tenant_progress
    from shared.service.users import list_users
    from shared.settings import StorageSettings
    from tests.fakes.events import event
    from tests.fakes.services import fake_world

    storage = StorageClients(
        StorageSettings(args.connection, None, None),
        credential=None,  # type: ignore[arg-type]
        table_prefix=args.prefix,
    )
    os.environ["TABLE_OPS_PREFIX"] = args.prefix
    world = fake_world()
    services = on_tables(world.services, storage)
    now = world.clock.now()
    names = ["tenants", "users", "leases", "subscriptions", "changes", "outlookitems", "busy", "appointments"]
    for name in names:
        await storage.table(name)  # created before anything is recorded

    async def add_tenant(tenant_id: str, users: int, state: TenantState = TenantState.ACTIVE) -> None:
        directory = f"dir-{tenant_id}"
        await services.tenants.add(
            Tenant(tenant_id, directory, tenant_id, AuthMode.ADMIN_CONSENT, state, TenantSettings(), now, now)
        )
        records = [
            UserRecord(
                tenant_id,
                StaffMember(f"s{n}", f"user{n}@{tenant_id}", None, f"User {n}"),
                MatchStatus.MATCHED,
                now,
                graph_user_id=f"{tenant_id}-g{n}",
            )
            for n in range(1, users + 1)
        ]
        for start in range(0, len(records), 100):
            await services.users.save_all(records[start : start + 100])

    delayed: Counter[str] = Counter()

    async def run_quiet(first: list[Any], concurrency: int) -> None:
        """Run the jobs and those they queue (sync and write queues) until none is left."""
        pending = list(first)
        semaphore = asyncio.Semaphore(concurrency)

        async def one(job: Any) -> None:
            async with semaphore:
                await run_job(services, job)

        while pending:
            await asyncio.gather(*(one(job) for job in pending))
            queued = [j for j in world.jobs.take() if j.queue in (jobs.SYNC_QUEUE, jobs.WRITE_QUEUE)]
            # A check-back (a job that found its lease taken, queued with a delay) would run after the
            # lease's lifetime and find it free: left out, and counted.
            delayed["check-backs"] += sum(1 for j in queued if getattr(j, "delay_seconds", 0))
            pending = [j for j in queued if not getattr(j, "delay_seconds", 0)]

    figures: dict[str, Any] = {}

    def phase(text: str) -> None:
        print(f"  {args.prefix}: {text}", file=sys.stderr, flush=True)

    phase(f"migrating {args.users} users")
    tenant_id = "migrating.example"
    await add_tenant(tenant_id, args.users, TenantState.MIGRATING)
    for n in range(1, args.users + 1):
        for _ in range(args.events):
            world.mailboxes.put(f"{tenant_id}-g{n}", event())
    world.jobs.take()
    with recorder.recorded_table_requests(args.table_endpoint) as log:
        started = time.monotonic()
        await run_quiet([jobs.migrate_user(tenant_id, f"s{n}") for n in range(1, args.users + 1)], 16)
        elapsed = time.monotonic() - started
    done = sum(1 for u in await services.users.list_all(tenant_id) if u.sync_state is not SyncState.PENDING)
    hot = _hottest(log, await _table_sizes(storage, names))
    figures["migration"] = {
        **hot,
        "users": args.users,
        "migrated": done,
        "seconds": elapsed,
        "per_user": hot["total"] / max(1, args.users),
        "users_per_s": args.users / elapsed,
    }

    phase(f"{args.notifications} notifications")
    notified = [f"t{n:03d}.example" for n in range(args.tenants)]
    for tid in notified:
        await add_tenant(tid, USERS_PER_NOTIFIED_TENANT)
    await run_quiet(
        [jobs.migrate_user(t, f"s{n}") for t in notified for n in range(1, USERS_PER_NOTIFIED_TENANT + 1)], 16
    )
    targets: list[tuple[str, str, str]] = []
    for tid in notified:
        for record in await services.subscription_index.for_tenant(tid):
            if record.watches is Watched.EVENTS:
                targets.append((f"dir-{tid}", record.subscription_id, record.graph_user_id))
    rng = random.Random(7)
    world.jobs.take()
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def notify(directory: str, subscription_id: str, graph_user_id: str) -> None:
        async with in_flight:
            world.mailboxes.put(graph_user_id, event())
            await run_quiet([jobs.notified(directory, subscription_id, graph_user_id)], 1)

    delayed.clear()
    with recorder.recorded_table_requests(args.table_endpoint) as log:
        started = time.monotonic()
        tasks = []
        for i in range(args.notifications):
            delay = started + i / args.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(notify(*rng.choice(targets))))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    hot = _hottest(log, await _table_sizes(storage, names))
    figures["notifications"] = {
        **hot,
        "notifications": args.notifications,
        "seconds": elapsed,
        "achieved_per_s": args.notifications / elapsed,
        "per_notification": hot["total"] / args.notifications,
        "hottest_per_notification": hot["hottest_entities"] / args.notifications,
        "hottest_at_200_per_s": 200 * hot["hottest_entities"] / args.notifications,
        "check_backs": delayed["check-backs"],
    }

    phase(f"{args.writes} appointment writes")
    writer = "writes.example"
    await add_tenant(writer, 3)
    await run_quiet([jobs.migrate_user(writer, f"s{n}") for n in range(1, 4)], 4)
    world.jobs.take()
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Amsterdam")
    begins = now.astimezone(zone).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=1)
    with recorder.recorded_table_requests(args.table_endpoint) as log:
        for n in range(args.writes):
            appointment = Appointment(
                appointment_id=f"a-{n}",
                subject=f"Intake {n}",
                start=begins + timedelta(hours=n % 8),
                end=begins + timedelta(hours=n % 8, minutes=30),
                time_zone="Europe/Amsterdam",
                all_day=False,
                staff_ids=("s1",),
            )
            await put_appointment(services, writer, appointment)
            await run_quiet(world.jobs.take(), 1)
    hot = _hottest(log, await _table_sizes(storage, names))
    figures["writes"] = {**hot, "writes": args.writes, "per_write": hot["total"] / args.writes}

    # 4. many tenants
    layouts: list[dict[str, Any]] = []
    seeded = 0
    semaphore = asyncio.Semaphore(SEED_CONCURRENCY)
    expires = now + timedelta(days=2)

    async def seed(index: int) -> None:
        tid = f"l{index:05d}.example"
        async with semaphore:
            await add_tenant(tid, USERS_PER_LAYOUT_TENANT)
            for n in range(1, USERS_PER_LAYOUT_TENANT + 1):
                sub = f"sub-{tid}-{n}"
                await services.subscription_index.put(
                    SubscriptionRecord(sub, tid, f"s{n}", f"{tid}-g{n}", expires, last_notified_at=now)
                )

    sample = "l00000.example"
    for size in sorted(int(s) for s in args.layouts.split(",") if s):
        phase(f"{size} tenants")
        started = time.monotonic()
        await asyncio.gather(*(seed(i) for i in range(seeded, size)))
        seeded = size
        seeding = time.monotonic() - started
        tenant = await services.tenants.get(sample)
        assert tenant is not None
        for n in range(1, USERS_PER_LAYOUT_TENANT + 1):  # Graph holds the sample's subscriptions
            sub = GraphSubscription(f"sub-{sample}-{n}", expires, f"users/{sample}-g{n}/events")
            world.mailboxes.subscriptions[sub.id] = (f"{sample}-g{n}", sub, "state")
            world.mailboxes.subscription_tenants[sub.id] = tenant.directory_id
        sizes = await _table_sizes(storage, names)
        with recorder.recorded_table_requests(args.table_endpoint) as renewal:
            await renew_tenant_subscriptions(services, sample)
        world.jobs.take()
        with recorder.recorded_table_requests(args.table_endpoint) as console:
            await tenant_progress(services, tenant)
            await list_users(services, sample, UserQuery())
        layouts.append(
            {
                "tenants": size,
                "seed_seconds": seeding,
                "renewal": _cost(renewal, sizes),
                "console": _cost(console, sizes),
            }
        )
    figures["layouts"] = layouts
    await storage.close()
    return figures


def _cost(log: Any, sizes: dict[str, int]) -> dict[str, int]:
    """Requests, and entities read or written (a scan: every row of its table)."""
    entities = 0
    for request in log.requests:
        entities += sizes.get(request.table, 0) if request.scan else len(request.partitions)
    return {"requests": len(log.requests), "entities": entities, "scans": len(log.scans())}


# --- the parent: Azurite, both versions, the figures side by side ---------------------------------


def _run_version(name: str, tree: Path, azurite: Any, args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"ops{name}{uuid.uuid4().hex[:6]}"
    command = [
        str(HERE / ".venv" / "bin" / "python"),
        str(Path(__file__).resolve()),
        "--child",
        "--connection",
        azurite.connection_string,
        "--table-endpoint",
        azurite.table_endpoint,
        "--prefix",
        prefix,
        *_passed(args),
    ]
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    print(f"measuring {name} ({tree}) ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=tree, env=environment, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed (its errors above)")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _passed(args: argparse.Namespace) -> list[str]:
    return [
        f"--users={args.users}",
        f"--events={args.events}",
        f"--tenants={args.tenants}",
        f"--notifications={args.notifications}",
        f"--rate={args.rate}",
        f"--writes={args.writes}",
        f"--layouts={args.layouts}",
    ]


def _print(before: dict[str, Any], after: dict[str, Any]) -> None:
    def row(label: str, b: Any, a: Any) -> None:
        print(f"  {label:<52} {_fmt(b):>28} {_fmt(a):>28}")

    print(f"\n  {'':<52} {'before':>28} {'after':>28}")
    m_b, m_a = before["migration"], after["migration"]
    print(f"1. migration of {m_a['users']} users")
    row("users migrated", m_b["migrated"], m_a["migrated"])
    row("table entities per migrated user", m_b["per_user"], m_a["per_user"])
    row("requests / scans", f"{m_b['requests']} / {m_b['scans']}", f"{m_a['requests']} / {m_a['scans']}")
    row("hottest partition", m_b["hottest"], m_a["hottest"])
    row("  its share of all entities", f"{m_b['hottest_share']:.1%}", f"{m_a['hottest_share']:.1%}")
    row("  its busiest second (entities/s)", m_b["hottest_peak_per_s"], m_a["hottest_peak_per_s"])
    mean_b, mean_a = (m["hottest_entities"] / m["seconds"] for m in (m_b, m_a))
    row("  its mean (entities/s)", mean_b, mean_a)
    row("users per second (this machine)", m_b["users_per_s"], m_a["users_per_s"])
    n_b, n_a = before["notifications"], after["notifications"]
    print(f"2. {n_a['notifications']} notifications, open loop at {_fmt(n_a['achieved_per_s'])}/s achieved")
    row("table entities per notification", n_b["per_notification"], n_a["per_notification"])
    row("hottest partition", n_b["hottest"], n_a["hottest"])
    row("  its share of all entities", f"{n_b['hottest_share']:.1%}", f"{n_a['hottest_share']:.1%}")
    row("  its entities per notification", n_b["hottest_per_notification"], n_a["hottest_per_notification"])
    row("  so at 200 notifications/s (entities/s)", n_b["hottest_at_200_per_s"], n_a["hottest_at_200_per_s"])
    row("  its busiest second (measured, entities/s)", n_b["hottest_peak_per_s"], n_a["hottest_peak_per_s"])
    row("check-backs queued (lease taken; not run)", n_b["check_backs"], n_a["check_backs"])
    w_b, w_a = before["writes"], after["writes"]
    print(f"3. {w_a['writes']} appointment writes (one staff member each)")
    row("table entities per appointment write", w_b["per_write"], w_a["per_write"])
    row("hottest partition", w_b["hottest"], w_a["hottest"])
    print("4. one tenant's renewal and console poll as tenants grow (requests / entities read or written)")
    for lb, la in zip(before["layouts"], after["layouts"], strict=True):
        row(
            f"{la['tenants']:>6} tenants: renewal",
            f"{lb['renewal']['requests']} / {lb['renewal']['entities']}",
            f"{la['renewal']['requests']} / {la['renewal']['entities']}",
        )
        row(
            f"{la['tenants']:>6} tenants: console (progress + GET /users)",
            f"{lb['console']['requests']} / {lb['console']['entities']}",
            f"{la['console']['requests']} / {la['console']['entities']}",
        )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", default="/work/wt/base9", help="the checkout measured as 'before'")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--events", type=int, default=3)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--notifications", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--writes", type=int, default=50)
    parser.add_argument("--layouts", default="100,1000,10000")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--connection", help=argparse.SUPPRESS)
    parser.add_argument("--table-endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args))))
        return
    from devhost.azurite import Azurite

    with Azurite() as azurite:
        before = _run_version("before", Path(args.before).resolve(), azurite, args)
        after = _run_version("after", HERE, azurite, args)
    _print(before, after)


if __name__ == "__main__":
    main()
