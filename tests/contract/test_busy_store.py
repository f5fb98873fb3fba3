"""The busy store: each behaviour written once, run against the in-memory fake and the Table Storage
adapter on Azurite (index packing round trips, working hours, hold revisions and tombstones, purges)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.adapters.tables.busy import MAX_INDEX_CHARS, TableBusy, encode_instance
from shared.domain.appointments import Appointment, AppointmentRecord, Override, Recurrence
from shared.service.busy_index import busy_key
from shared.service.errors import AlreadyExists, StaleWrite
from shared.service.host_holds import write_holds
from shared.service.ports.availability import BusyStore
from shared.service.records import (
    BusyInstance,
    HoldTimes,
    HostHold,
    SyncedBusy,
    WorkingHours,
    WorkingHoursRecord,
)
from tests.fakes.busy import FakeBusy
from tests.fixtures.azurite import fresh_storage

pytestmark = pytest.mark.contract

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
WINDOW = (datetime(2026, 11, 15, tzinfo=UTC), datetime(2027, 2, 21, tzinfo=UTC))
CONTOSO = "contoso.example"
CONTOSO_NET = "contoso.example.net"  # starts with CONTOSO: its users are not CONTOSO's
AMS = ZoneInfo("Europe/Amsterdam")
SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")


@pytest.fixture(params=["fake", "azurite"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[BusyStore]:
    if request.param == "fake":
        yield FakeBusy()
        return
    async with fresh_storage(request.getfixturevalue("azurite"), "busy") as storage:
        yield TableBusy(storage)


def instances(count: int, seed: int = 7) -> tuple[BusyInstance, ...]:
    """A mailbox's window: timed events on whole minutes and odd seconds, all-day ones, some linked."""
    rng = random.Random(seed)
    made = []
    for n in range(count):
        if n % 10 == 0:
            day = WINDOW[0].date() + timedelta(days=rng.randrange(90))
            start: datetime | date = day
            end: datetime | date = day + timedelta(days=rng.choice((1, 1, 3)))
        else:
            start = WINDOW[0] + timedelta(minutes=15 * rng.randrange(90 * 96), seconds=rng.choice((0, 0, 7)))
            end = start + timedelta(minutes=rng.choice((15, 30, 60, 90, 480)))
        linked = f"appt-{n}" if n % 4 == 0 else None
        made.append(
            BusyInstance(busy_key(f"AAMkAGI2TG93-{n}=="), start, end, SHOW_AS[n % 6], n % 10 == 0, linked)
        )
    return tuple(sorted(made, key=lambda i: (i.ends_at(), i.key)))


def index_of(items: tuple[BusyInstance, ...], complete: bool = True) -> SyncedBusy:
    return SyncedBusy(items, WINDOW[0], WINDOW[1], T0, complete)


async def test_a_2000_instance_index_round_trips(store: BusyStore) -> None:
    index = index_of(instances(2000))
    await store.write_index(CONTOSO, "s1", index)
    read = (await store.read(CONTOSO, "s1")).index
    assert read == index


def _overlaps(instance: BusyInstance, low: datetime, high: datetime) -> bool:
    start = instance.start
    if not isinstance(start, datetime):  # an all-day one, taken at UTC midnights
        start = datetime.combine(start, time(), tzinfo=UTC)
    return start < high and instance.ends_at() > low


async def test_a_read_near_a_span_keeps_every_instance_that_may_overlap_it(store: BusyStore) -> None:
    index = index_of(instances(2000))
    await store.write_index(CONTOSO, "s1", index)
    low, high = WINDOW[0] + timedelta(days=20, hours=7, seconds=30), WINDOW[0] + timedelta(days=34, hours=3)
    read = (await store.read(CONTOSO, "s1", (low, high))).index
    assert read is not None
    assert (read.window_start, read.window_end, read.synced_at, read.complete) == (*WINDOW, T0, True)
    wanted = {i for i in index.instances if _overlaps(i, low, high)}
    assert wanted <= set(read.instances) <= set(index.instances)
    if isinstance(store, TableBusy):  # the adapter decodes no more than those (the fake keeps all)
        day = timedelta(days=1)  # all-day ones whose dates reach a day either side: their dates are local
        assert all(
            i.start <= high.date() + day and i.end >= low.date() - day
            if i.all_day
            else _overlaps(i, low, high)
            for i in read.instances
        )
        assert len(read.instances) < len(index.instances) / 4


def test_an_instance_packs_into_a_few_dozen_characters() -> None:
    packed = [encode_instance(i) for i in instances(2000)]
    unlinked = [len(p) for p, i in zip(packed, instances(2000), strict=True) if i.appointment_id is None]
    # 11 key + 6 start + up to 4 span + 1 code + 3 spaces, and a newline between lines.
    assert max(unlinked) <= 26
    assert sum(len(p) + 1 for p in packed) < 2000 * 32  # ~64 bytes an instance as stored (UTF-16)


async def test_an_index_replaces_the_one_before_and_the_user_starts_empty(store: BusyStore) -> None:
    empty = await store.read(CONTOSO, "s1")
    assert (empty.index, empty.hours, empty.holds) == (None, None, ())
    await store.write_index(CONTOSO, "s1", index_of(instances(50)))
    smaller = index_of(instances(3, seed=9), complete=False)
    await store.write_index(CONTOSO, "s1", smaller)
    assert (await store.read(CONTOSO, "s1")).index == smaller


async def test_an_index_too_large_for_a_row_is_stored_incomplete_and_empty(
    request: pytest.FixtureRequest,
) -> None:
    # The adapter's limit only (the fake keeps any size): past it the entity would pass 1 MiB.
    too_many = instances(MAX_INDEX_CHARS // 20)
    assert sum(len(encode_instance(i)) + 1 for i in too_many) > MAX_INDEX_CHARS
    async with fresh_storage(request.getfixturevalue("azurite"), "busy") as storage:
        store = TableBusy(storage)
        await store.write_index(CONTOSO, "s1", index_of(too_many))
        read = (await store.read(CONTOSO, "s1")).index
        assert read is not None and not read.complete and read.instances == ()


async def test_working_hours_round_trip(store: BusyStore) -> None:
    hours = WorkingHoursRecord(
        WorkingHours(("monday", "tuesday"), time(8), time(17, 30), "Pacific Standard Time"),
        "America/Los_Angeles",
        T0,
    )
    await store.write_hours(CONTOSO, "s1", hours)
    unmapped = WorkingHoursRecord(WorkingHours((), time(9), time(17), "Custom zone"), None, T0)
    await store.write_hours(CONTOSO, "s2", unmapped)
    assert (await store.read(CONTOSO, "s1")).hours == hours
    assert (await store.read(CONTOSO, "s2")).hours == unmapped


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=AMS)  # type: ignore[arg-type, misc]


def weekly_times() -> HoldTimes:
    rule = Recurrence(
        "FREQ=WEEKLY;COUNT=6",
        (date(2026, 12, 15),),
        (
            Override(
                date(2026, 12, 8),
                datetime(2026, 12, 9, 14, tzinfo=AMS),
                datetime(2026, 12, 9, 15, tzinfo=AMS),
            ),
        ),
    )
    return HoldTimes(
        datetime(2026, 12, 1, 10, tzinfo=AMS),
        datetime(2026, 12, 1, 11, tzinfo=AMS),
        False,
        "Europe/Amsterdam",
        "busy",
        rule,
    )


async def test_holds_and_tombstones_round_trip_with_their_revisions(store: BusyStore) -> None:
    awkward = "a.1~x@y+z="
    timed = await store.save_hold(CONTOSO, "s1", HostHold(awkward, 3, weekly_times()))
    day = HoldTimes(date(2026, 12, 24), date(2026, 12, 27), True, "Europe/Amsterdam", "oof")
    await store.save_hold(CONTOSO, "s1", HostHold("a-2", 1, day))
    await store.save_hold(CONTOSO, "s1", HostHold("a-3", 5, None))
    busy = await store.read(CONTOSO, "s1")
    by_id = {h.appointment_id: h for h in busy.holds}
    assert by_id[awkward].times == weekly_times() and by_id[awkward].revision == 3
    assert by_id["a-2"].times == day
    assert by_id["a-3"].deleted and by_id["a-3"].revision == 5
    assert {h.appointment_id for h in busy.live_holds} == {awkward, "a-2"}
    assert (await store.get_hold(CONTOSO, "s1", awkward)) == timed


async def test_a_hold_is_written_once_then_only_over_the_etag_it_was_read_with(store: BusyStore) -> None:
    first = await store.save_hold(CONTOSO, "s1", HostHold("a-1", 1, weekly_times()))
    with pytest.raises(AlreadyExists):
        await store.save_hold(CONTOSO, "s1", HostHold("a-1", 1, weekly_times()))
    newer = await store.save_hold(CONTOSO, "s1", HostHold("a-1", 2, None, first.etag))
    with pytest.raises(StaleWrite):  # a writer that read revision 1 lost its race
        await store.save_hold(CONTOSO, "s1", HostHold("a-1", 2, weekly_times(), first.etag))
    held = await store.get_hold(CONTOSO, "s1", "a-1")
    assert held is not None and held.deleted and held.etag == newer.etag


async def test_racing_hold_writers_leave_the_newest_revision(store: BusyStore) -> None:
    def record(revision: int) -> AppointmentRecord:
        appointment = Appointment(
            "a-1",
            "x",
            datetime(2026, 12, 1, 9 + revision, tzinfo=AMS),
            datetime(2026, 12, 1, 10 + revision, tzinfo=AMS),
            "Europe/Amsterdam",
            False,
            ("s1",),
        )
        return AppointmentRecord(CONTOSO, "a-1", revision, appointment, {}, T0)

    await asyncio.gather(*(write_holds(store, record(r)) for r in (3, 1, 4, 2)))
    held = await store.get_hold(CONTOSO, "s1", "a-1")
    assert held is not None and held.revision == 4
    assert held.times is not None and held.times.start == datetime(2026, 12, 1, 13, tzinfo=AMS)


async def test_deleting_a_user_or_a_tenant_leaves_the_others(store: BusyStore) -> None:
    for tenant, staff in ((CONTOSO, "s1"), (CONTOSO, "s2"), (CONTOSO_NET, "s1")):
        await store.write_index(tenant, staff, index_of(instances(5)))
        await store.save_hold(tenant, staff, HostHold("a-1", 1, weekly_times()))
    await store.delete_user(CONTOSO, "s1")
    assert (await store.read(CONTOSO, "s1")).index is None
    assert (await store.read(CONTOSO, "s2")).index is not None
    await store.delete_tenant(CONTOSO)
    await store.delete_tenant(CONTOSO)  # idempotent
    assert (await store.read(CONTOSO, "s2")).holds == ()
    kept = await store.read(CONTOSO_NET, "s1")
    assert kept.index is not None and len(kept.holds) == 1
