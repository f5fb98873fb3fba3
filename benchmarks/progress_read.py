"""A tenant's migration progress read from whole user rows (`list_all`, as `GET /tenants/{tid}` read it
before) against the four-property projection (`list_progress`), side by side in one run.

    .venv/bin/python -m benchmarks.progress_read [--users 1000] [--rounds 10]

One Azurite (in memory), `--users` users of one tenant stored as a migration leaves them (most synced,
with their delta links, subscriptions and To Do state; some migrating, in error, unmatched). Each round
reads the progress both ways, alternating; printed: the reader's CPU (this process: the SDK's paging,
JSON and the rows' conversion) and wall time, medians of `--rounds`, and `progress()` alone.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from devhost.azurite import Azurite
from shared.adapters.tables.users import TableUsers
from shared.domain.progress import progress
from shared.domain.tenants import TenantState
from shared.domain.users import MatchedBy, MatchStatus, StaffMember, SyncState, TaskSync, UserRecord
from tests.fixtures.azurite import storage_on

TID = "contoso.example"
T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def user(n: int) -> UserRecord:
    staff = StaffMember(
        f"s{n:05d}", f"user{n}@contoso.example", f"user{n}@contoso.onmicrosoft.com", f"User {n}"
    )
    base = UserRecord(TID, staff, MatchStatus.PENDING, T0)
    if n % 50 == 49:  # 2 % unmatched
        return replace(
            base, match=MatchStatus.UNMATCHED, sync_state=SyncState.DISABLED, match_reason="no such user"
        )
    ended = T0 + timedelta(seconds=n)
    state = SyncState.SYNCED if n < 900 else (SyncState.ERROR if n % 10 == 0 else SyncState.MIGRATING)
    return replace(
        base,
        match=MatchStatus.MATCHED,
        matched_by=MatchedBy.UPN,
        graph_user_id=f"{n:08d}-1111-2222-3333-444455556666",
        sync_state=state,
        last_sync_at=ended if state is SyncState.SYNCED else None,
        migrated_at=ended if state is SyncState.SYNCED else None,
        last_error="Graph answered 403 ErrorAccessDenied" if state is SyncState.ERROR else None,
        subscription_id=f"{n:08d}-aaaa-bbbb-cccc-ddddeeeeffff",
        subscription_expires_at=ended + timedelta(days=3),
        delta_link=(
            f"https://graph.microsoft.com/v1.0/users/{n:08d}-1111-2222-3333-444455556666/calendarView/delta"
            "?$deltatoken=" + "R0usmcCM996atia_s" * 12
        ),
        delta_since=ended,
        delta_window=(T0 - timedelta(days=30), T0 + timedelta(days=365)),
        task_sync=TaskSync(
            state=SyncState.SYNCED,
            list_id="AAMkAGI2TGuLAAA=" + f"{n:06d}" * 8,
            delta_link="https://graph.microsoft.com/v1.0/me/todo/lists/x/tasks/delta?$deltatoken="
            + "abc123" * 20,
            subscription_id=f"{n:08d}-9999-8888-7777-666655554444",
            subscription_expires_at=ended + timedelta(days=3),
            last_sync_at=ended,
            migrated_at=ended,
            tasks=12,
            zone="Europe/Berlin",
        ),
        todo_list_id="AAMkAGI2TGuLAAA=" + f"{n:06d}" * 8,
        todo_list_name="ERP",
        updated_at=ended,
    )


async def main(connection_string: str, users_count: int, rounds: int) -> None:
    storage = storage_on(type("A", (), {"connection_string": connection_string})(), "measure")
    users = TableUsers(storage)
    saved = await users.save_all([user(n) for n in range(users_count)])
    assert all(saved)
    now = T0 + timedelta(hours=1)

    async def whole() -> object:
        return progress(TenantState.MIGRATING, await users.list_all(TID), T0, now)

    async def projected() -> object:
        return progress(TenantState.MIGRATING, await users.list_progress(TID), T0, now)

    assert await whole() == await projected()
    times: dict[str, list[tuple[float, float]]] = {"list_all + progress": [], "list_progress + progress": []}
    for _ in range(rounds):
        for name, read in (("list_all + progress", whole), ("list_progress + progress", projected)):
            cpu, wall = time.process_time(), time.perf_counter()
            await read()
            times[name].append((time.process_time() - cpu, time.perf_counter() - wall))
    for name, samples in times.items():
        cpu_ms = statistics.median(c for c, _ in samples) * 1000
        wall_ms = statistics.median(w for _, w in samples) * 1000
        print(
            f"{name:26s} CPU median {cpu_ms:6.1f} ms  wall median {wall_ms:6.1f} ms  "
            f"(CPU min {min(c for c, _ in samples) * 1000:.1f}, max {max(c for c, _ in samples) * 1000:.1f})"
        )
    records, rows = await users.list_all(TID), await users.list_progress(TID)
    for name, listed in (("progress() alone, records", records), ("progress() alone, projected", rows)):
        samples = []
        for _ in range(rounds):
            cpu = time.process_time()
            progress(TenantState.MIGRATING, listed, T0, now)
            samples.append(time.process_time() - cpu)
        print(f"{name:26s} CPU median {statistics.median(samples) * 1000:6.2f} ms")
    await storage.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.progress_read", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--users", type=int, default=1000, help="users of the tenant (1000)")
    parser.add_argument("--rounds", type=int, default=10, help="reads of each kind, alternating (10)")
    args = parser.parse_args()
    with Azurite() as azurite:
        asyncio.run(main(azurite.connection_string, args.users, args.rounds))
