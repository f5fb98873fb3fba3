"""The user repository's saves, written once and run against the in-memory fake and the Table Storage
repository on Azurite: `save_all` (up to 100 rows per transaction) saves as `save` does, in order, and
reports exactly the rows that lost a race, whatever else shares their transaction; `list_progress` (a
projection of four properties) answers what the whole rows hold."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.tables.users import TableUsers
from shared.domain.progress import UserProgress
from shared.domain.users import (
    LegacyLink,
    MatchStatus,
    StaffMember,
    StaffSwitches,
    SyncState,
    TaskSync,
    UserRecord,
)
from shared.service.errors import AlreadyExists, StaleWrite
from shared.service.ports.tenancy import UserRepository
from tests.fakes.storage import FakeUsers
from tests.fixtures.azurite import fresh_storage

pytestmark = pytest.mark.contract

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CONTOSO = "contoso.example"
FABRIKAM = "fabrikam.example"


@pytest.fixture(params=["fake", "azurite"])
async def users(request: pytest.FixtureRequest) -> AsyncIterator[UserRepository]:
    if request.param == "fake":
        yield FakeUsers()
        return
    async with fresh_storage(request.getfixturevalue("azurite"), "users") as storage:
        yield TableUsers(storage)


def record(
    n: int, tenant: str = CONTOSO, legacy_ids: tuple[LegacyLink, ...] = (), **changes: Any
) -> UserRecord:
    staff = StaffMember(f"s{n:04d}", f"user{n}@contoso.example", None, f"User {n}", legacy_ids=legacy_ids)
    return replace(UserRecord(tenant, staff, MatchStatus.PENDING, T0), **changes)


async def test_save_all_inserts_and_replaces_more_than_one_transaction_of_users(
    users: UserRepository,
) -> None:
    created = await users.save_all([record(n) for n in range(250)])

    assert all(u is not None and u.etag for u in created)
    stored = {u.staff_id: u for u in await users.list_all(CONTOSO)}
    assert sorted(stored) == [f"s{n:04d}" for n in range(250)]

    updated = await users.save_all(
        [replace(u, match=MatchStatus.MATCHED, graph_user_id=f"g{i}") for i, u in enumerate(created) if u]
    )

    assert [u.graph_user_id if u else None for u in updated] == [f"g{i}" for i in range(250)]
    assert {u.staff_id: (u.match, u.graph_user_id) for u in await users.list_all(CONTOSO)} == {
        f"s{n:04d}": (MatchStatus.MATCHED, f"g{n}") for n in range(250)
    }
    # The etags it returned guard the next save.
    first = updated[0]
    assert first is not None
    again = await users.save(replace(first, sync_state=SyncState.SYNCED))
    assert again.sync_state is SyncState.SYNCED
    with pytest.raises(StaleWrite):
        await users.save(first)


async def test_save_all_reports_only_the_users_that_lost_a_race(users: UserRepository) -> None:
    created = [u for u in await users.save_all([record(n) for n in range(150)]) if u is not None]
    raced = await users.save(replace(created[42], last_error="changed by someone else"))
    await users.save(record(1000))

    results = await users.save_all(
        [
            *[replace(u, match=MatchStatus.MATCHED) for u in created],  # 42 carries a stale etag
            record(1000, match=MatchStatus.UNMATCHED),  # a create that finds the row taken
            record(1001, match=MatchStatus.UNMATCHED),
        ]
    )

    lost = [i for i, u in enumerate(results) if u is None]
    assert lost == [42, 150]
    stored = {u.staff_id: u for u in await users.list_all(CONTOSO)}
    assert stored[created[42].staff_id].last_error == raced.last_error
    assert stored[created[42].staff_id].match is MatchStatus.PENDING
    assert stored["s1000"].match is MatchStatus.PENDING
    assert stored["s1001"].match is MatchStatus.UNMATCHED
    assert sum(1 for u in stored.values() if u.match is MatchStatus.MATCHED) == 149
    with pytest.raises(AlreadyExists):
        await users.save(record(1001))


async def test_save_all_keeps_tenants_apart_and_large_rows_whole(users: UserRepository) -> None:
    legacy = tuple(LegacyLink(f"appt-{i}", f"AAMkEWS{i:05d}" + "x" * 120, f"uid-{i}") for i in range(600))
    batch = [record(n, legacy_ids=legacy) if n % 10 == 0 else record(n) for n in range(120)]
    batch += [record(n, FABRIKAM) for n in range(3)]

    saved = await users.save_all(batch)

    assert all(u is not None for u in saved)
    contoso = {u.staff_id: u for u in await users.list_all(CONTOSO)}
    assert len(contoso) == 120
    assert contoso["s0010"].staff.legacy_ids == legacy
    assert [u.staff_id for u in await users.list_all(FABRIKAM)] == ["s0000", "s0001", "s0002"]


async def test_save_all_of_nothing_saves_nothing(users: UserRepository) -> None:
    assert await users.save_all([]) == []
    assert await users.list_all(CONTOSO) == []


async def test_when_a_users_migration_ended_is_stored_apart_from_its_last_sync(users: UserRepository) -> None:
    migrated = datetime(2026, 11, 22, 9, 5, tzinfo=UTC)
    caught_up = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)
    synced = record(1, sync_state=SyncState.SYNCED, migrated_at=migrated, last_sync_at=caught_up)
    await users.save(synced)
    [stored] = await users.list_all(CONTOSO)
    assert (stored.migrated_at, stored.last_sync_at) == (migrated, caught_up)
    assert (await users.get(CONTOSO, "s0001")) == stored


async def test_the_to_do_list_and_the_task_switches_are_kept(users: UserRepository) -> None:
    staff = replace(
        record(1).staff,
        todo_list_name="ERP+",
        switches=StaffSwitches(tasks_to_outlook=False, tasks_from_outlook=False),
    )
    listed = replace(record(1), staff=staff, todo_list_id="AAMkList", todo_list_name="ERP+")
    await users.save(listed)
    stored = await users.get(CONTOSO, "s0001")
    assert stored is not None
    assert (stored.staff.todo_list_name, stored.todo_list_id, stored.todo_list_name) == (
        "ERP+",
        "AAMkList",
        "ERP+",
    )
    assert stored.staff.switches == StaffSwitches(tasks_to_outlook=False, tasks_from_outlook=False)
    refused = await users.save(replace(stored, todo_list_id=None, todo_list_reason="To Do refused the list"))
    again = await users.get(CONTOSO, "s0001")
    assert again == refused and again is not None and again.todo_list_reason == "To Do refused the list"


async def test_since_when_a_delta_link_is_held_is_stored_beside_it(users: UserRepository) -> None:
    since = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    await users.save(
        record(1, sync_state=SyncState.SYNCED, delta_link="https://graph/delta?token=x", delta_since=since)
    )
    stored = await users.get(CONTOSO, "s0001")
    assert stored is not None and (stored.delta_link, stored.delta_since) == (
        "https://graph/delta?token=x",
        since,
    )


NOT_MATCHED = [MatchStatus.UNMATCHED, MatchStatus.NO_MAILBOX, MatchStatus.FORBIDDEN, MatchStatus.DISABLED]


def migrated(n: int, state: SyncState, ended: datetime | None, **changes: Any) -> UserRecord:
    """A matched user as a migration leaves its row: delta link, subscription and the To Do list's state."""
    return record(
        n,
        match=MatchStatus.MATCHED,
        graph_user_id=f"g{n}",
        sync_state=state,
        migrated_at=ended,
        last_sync_at=ended,
        subscription_id=f"sub-{n}",
        subscription_expires_at=T0 + timedelta(days=3),
        delta_link=f"https://graph.microsoft.com/v1.0/users/g{n}/calendarView/delta?$deltatoken={n:040d}",
        delta_since=T0,
        task_sync=TaskSync(SyncState.SYNCED, f"list-{n}", f"https://graph/todo/delta?token={n}", tasks=3),
        **changes,
    )


async def test_the_progress_listing_answers_the_four_values_the_whole_rows_hold(
    users: UserRepository,
) -> None:
    ended = T0 + timedelta(minutes=30)
    saved = [
        record(1),  # not looked up yet
        record(2, match=MatchStatus.MATCHED, graph_user_id="g2"),  # matched, its migration not begun
        migrated(3, SyncState.MIGRATING, None),
        migrated(4, SyncState.SYNCED, ended),
        migrated(5, SyncState.SYNCED, None),  # synced before the row kept when a migration ended
        migrated(6, SyncState.ERROR, None, last_error="the mailbox is gone"),
        *(record(n, match=status, sync_state=SyncState.DISABLED) for n, status in enumerate(NOT_MATCHED, 7)),
    ]
    # Each user stored at its own instant, so equal answers mean each user's own four values.
    await users.save_all([replace(u, updated_at=T0 + timedelta(seconds=n)) for n, u in enumerate(saved)])
    await users.save_all([migrated(n, SyncState.SYNCED, ended, tenant=FABRIKAM) for n in range(3)])

    whole = await users.list_all(CONTOSO)
    progressed = await users.list_progress(CONTOSO)

    assert len(whole) == len(saved) == len(progressed)
    assert Counter(progressed) == Counter(
        UserProgress(u.match, u.sync_state, u.migrated_at, u.updated_at) for u in whole
    )
    assert {(p.match, p.sync_state, p.migrated_at) for p in progressed} == {
        (u.match, u.sync_state, u.migrated_at) for u in saved
    }
    assert all(p.updated_at.tzinfo is not None for p in progressed)
    assert await users.list_progress("nobody.example") == []
