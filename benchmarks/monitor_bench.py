"""What the message monitor adds: bytes per message as Table Storage bills them, and table operations per
change on the feed, over a day's mix of work run through the real services (against the in-memory
ports; only the monitor's writes are counted).

The mix, per user: a migration (seeded events, linked or announced), Outlook changes each caught up by a
notification's sync run, host appointments written to their calendar, and the deliveries of every change
to the host's webhook. Each `record` call is one entity-group transaction per tenant and day (the table
adapter's `record`), so the operations are counted as those transactions.

    python -m benchmarks.monitor_bench [--users 200] [--changes 5] [--appointments 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.tables.messages import day_partition, message_to_entity
from shared.domain.appointments import Appointment
from shared.domain.tenants import TenantState
from shared.service import jobs
from shared.service.appointment_api import put_appointment
from shared.service.deliveries import deliver_changes
from shared.service.job_handlers import run_job
from shared.service.jobs import Deliver
from shared.service.keys import HOST_WEBHOOK_SECRET
from shared.service.monitor import Direction, MonitoredMessage
from tests.fakes.events import event
from tests.fakes.monitor import FakeMessages
from tests.fakes.services import FakeWorld, add_tenant, fake_world

TID = "contoso.example"


def billed_bytes(entity: dict[str, Any]) -> int:
    """Azure's entity size: 4 + 2 per key character + per property 8 + 2 per name character + its value
    (a string 4 + 2 per character, an Int32 4, a DateTime 8)."""
    size = 4 + 2 * (len(entity["PartitionKey"]) + len(entity["RowKey"]))
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey"):
            continue
        if isinstance(value, str):
            value_size = 4 + 2 * len(value)
        elif isinstance(value, datetime):
            value_size = 8
        else:
            value_size = 4
        size += 8 + 2 * len(name) + value_size
    return size


class CountingMessages(FakeMessages):
    """The fake store, counting the transactions the table adapter would send for each `record`."""

    def __init__(self) -> None:
        super().__init__()
        self.transactions = 0

    async def record(self, messages: Sequence[MonitoredMessage]) -> None:
        await super().record(messages)
        partitions: dict[str, int] = {}
        for message in messages:
            key = day_partition(message.tenant_id, message.at)
            partitions[key] = partitions.get(key, 0) + 1
        self.transactions += sum((count + 99) // 100 for count in partitions.values())


async def run_all(world: FakeWorld) -> None:
    for _ in range(10_000):
        batch = world.jobs.take()
        if not batch:
            return
        for job in batch:
            world.clock.advance(seconds=1)
            if isinstance(job, Deliver):
                await deliver_changes(world.services, job)
            else:
                await run_job(world.services, job)
    raise AssertionError("the queues never went quiet")


def appointment(n: int, staff: str, now: datetime) -> Appointment:
    start = (now + timedelta(days=1 + n % 20)).replace(minute=0, second=0, microsecond=0)
    return Appointment(
        appointment_id=f"a-{staff}-{n}",
        subject=f"Appointment {n}",
        start=start,
        end=start + timedelta(hours=1),
        time_zone="UTC",
        all_day=False,
        staff_ids=(staff,),
    )


async def measure(users: int, changes: int, appointments: int) -> dict[str, Any]:
    world = fake_world()
    counting = CountingMessages()
    world.messages = counting
    object.__setattr__(world.services, "messages", counting)
    world.secrets.values[HOST_WEBHOOK_SECRET] = "whsec-bench"
    await add_tenant(world, TID, TenantState.ACTIVE, matched=users)
    for n in range(1, users + 1):
        for e in range(3):
            world.mailboxes.put(f"g{n}", event(f"seed-{n}-{e}"))
    await world.jobs.enqueue([jobs.migrate_user(TID, f"s{n}") for n in range(1, users + 1)])
    started = time.perf_counter()
    await run_all(world)
    for round_ in range(changes):
        for n in range(1, users + 1):
            world.mailboxes.put(f"g{n}", event(f"change-{n}-{round_}"))
        await world.jobs.enqueue([jobs.sync_user(TID, f"s{n}") for n in range(1, users + 1)])
        await run_all(world)
    for a in range(appointments):
        for n in range(1, users + 1):
            await put_appointment(world.services, TID, appointment(a, f"s{n}", world.clock.now()))
        await run_all(world)
    elapsed = time.perf_counter() - started
    messages = counting.of(TID)
    sizes = [billed_bytes(message_to_entity(m)) for m in messages]
    by_direction = {d.value: sum(1 for m in messages if m.direction is d) for d in Direction}
    published = await world.feed.head(TID)
    return {
        "users": users,
        "changes on the feed": published,
        "messages": len(messages),
        "by direction": by_direction,
        "bytes per message (median)": int(statistics.median(sizes)),
        "bytes per message (p95)": int(sorted(sizes)[int(len(sizes) * 0.95) - 1]),
        "table operations": counting.transactions,
        "table operations per change": round(counting.transactions / max(published, 1), 2),
        "seconds": round(elapsed, 1),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--changes", type=int, default=5, help="Outlook changes per user")
    parser.add_argument("--appointments", type=int, default=3, help="host appointments per user")
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.users, args.changes, args.appointments))
    print("message monitor (python -m benchmarks.monitor_bench " + " ".join(argv) + ")")
    for name, value in figures.items():
        print(f"  {name}: {value}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
