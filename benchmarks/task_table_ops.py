"""Table Storage requests per migrated user, events only against with the To Do list: what the list's first
sync adds in storage, exactly counted, by table and kind.

    .venv/bin/python -m benchmarks.task_table_ops [--users 50] [--events 5] [--tasks 20]

One Azurite (in memory), two migrations of `--users` users of one tenant, 16 at a time, each in tables of its
own: once with every user's `tasks_from_outlook` off, once on with `--tasks` tasks in each user's list. The
services are the app's handlers over its Table Storage adapters (the message monitor's too); Graph is the
in-memory fake of the unit tests, so every request counted is a table request (recorded by
`tests/fixtures/table_requests.py`; a transaction counts once, under `$batch`). Throughput benchmarks
(`task_sync_bench`) swing with the machine; these counts do not, so a change to the list's storage work
shows here exactly. Prints the requests per user by table and kind, side by side; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import uuid
from collections import Counter
from typing import Any, Final

from benchmarks.table_ops import _recorder, on_tables

CONCURRENCY: Final = 16
TABLES: Final = (
    "tenants",
    "users",
    "leases",
    "subscriptions",
    "changes",
    "outlookitems",
    "busy",
    "appointments",
    "messages",
    "tasks",
)


async def migration(args: argparse.Namespace, *, tasks_on: bool) -> Counter[tuple[str, str]]:
    """Table requests of one migration, by (table, kind)."""
    from shared.adapters.storage import StorageClients
    from shared.adapters.tables.messages import TableMessages
    from shared.domain.tenants import AuthMode, Tenant, TenantSettings, TenantState
    from shared.domain.users import MatchStatus, StaffMember, StaffSwitches, UserRecord
    from shared.service import jobs
    from shared.service.job_handlers import run_job
    from shared.settings import StorageSettings
    from tests.fakes.events import event
    from tests.fakes.outlook_tasks import task
    from tests.fakes.services import fake_world

    recorder = _recorder()
    prefix = ("on" if tasks_on else "off") + uuid.uuid4().hex[:8]
    storage = StorageClients(
        StorageSettings(args.connection, None, None),
        credential=None,  # type: ignore[arg-type]
        table_prefix=prefix,
    )
    world = fake_world()
    services = dataclasses.replace(on_tables(world.services, storage), messages=TableMessages(storage))
    for name in TABLES:
        await storage.table(name)  # created before anything is recorded
    now = world.clock.now()
    tenant_id, settings = "migrating.example", TenantSettings()
    await services.tenants.add(
        Tenant(
            tenant_id,
            f"dir-{tenant_id}",
            tenant_id,
            AuthMode.ADMIN_CONSENT,
            TenantState.MIGRATING,
            settings,
            now,
            now,
        )
    )
    switches = StaffSwitches(tasks_from_outlook=tasks_on)
    users = [
        UserRecord(
            tenant_id,
            StaffMember(f"s{n}", f"user{n}@{tenant_id}", None, f"User {n}", switches=switches),
            MatchStatus.MATCHED,
            now,
            graph_user_id=f"{tenant_id}-g{n}",
        )
        for n in range(1, args.users + 1)
    ]
    for start in range(0, len(users), 100):
        await services.users.save_all(users[start : start + 100])
    for user in users:
        assert user.graph_user_id is not None
        for _ in range(args.events):
            world.mailboxes.put(user.graph_user_id, event())
        if tasks_on:
            listed = await world.todo.connector_list(user.graph_user_id, settings.todo_list_name)
            for _ in range(args.tasks):
                world.todo.put(user.graph_user_id, listed, task())
    world.jobs.take()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def run(job: Any) -> None:
        async with gate:
            await run_job(services, job)

    with recorder.recorded_table_requests(args.table_endpoint) as log:
        pending: list[Any] = [jobs.migrate_user(tenant_id, u.staff_id) for u in users]
        while pending:
            await asyncio.gather(*(run(job) for job in pending))
            queued = [j for j in world.jobs.take() if j.queue in (jobs.SYNC_QUEUE, jobs.WRITE_QUEUE)]
            pending = [j for j in queued if not getattr(j, "delay_seconds", 0)]
    await storage.close()
    counts: Counter[tuple[str, str]] = Counter()
    for request in log.requests:
        counts[request.table.removeprefix(prefix), request.kind] += 1
    return counts


async def measure(args: argparse.Namespace) -> None:
    from devhost.azurite import Azurite

    with Azurite() as azurite:
        args.connection, args.table_endpoint = azurite.connection_string, azurite.table_endpoint
        off = await migration(args, tasks_on=False)
        on = await migration(args, tasks_on=True)
    users = args.users
    print(
        f"Table requests per migrated user ({users} users x {args.events} events, {args.tasks} tasks a list):"
    )
    print(f"  {'table / kind':28} {'events only':>12} {'with list':>10} {'added':>8}")
    for key in sorted(set(off) | set(on)):
        before, after = off[key] / users, on[key] / users
        print(f"  {key[0] + ' / ' + key[1]:28} {before:12.2f} {after:10.2f} {after - before:+8.2f}")
    total_off, total_on = sum(off.values()) / users, sum(on.values()) / users
    print(f"  {'all':28} {total_off:12.2f} {total_on:10.2f} {total_on - total_off:+8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.task_table_ops", description=__doc__)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=20)
    args = parser.parse_args(argv)
    asyncio.run(measure(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
