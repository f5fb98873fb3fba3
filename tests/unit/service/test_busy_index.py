"""The busy index: brought up to date from delta reads, rebuilt from complete ones, pruned to the window,
carrying link ids; and the sync writing it (and the working hours) on fakes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from shared.domain.calendar import EventKind, RemovedEvent
from shared.domain.tenants import TenantState
from shared.domain.users import SyncState
from shared.service import jobs
from shared.service.busy_index import busy_key, linked_appointments, updated_index
from shared.service.records import BusyInstance, SyncedBusy, WorkingHours
from tests.fakes.events import event
from tests.fakes.services import FakeWorld, add_tenant, fake_world, run_queued
from tests.fakes.statuses import item_status

pytestmark = pytest.mark.unit

TID = "contoso.example"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
WINDOW = (datetime(2026, 11, 15, tzinfo=UTC), datetime(2027, 2, 21, tzinfo=UTC))
AT_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def no_links(_: object) -> None:
    return None


def index_of(*instances: BusyInstance, complete: bool = True) -> SyncedBusy:
    return SyncedBusy(tuple(instances), WINDOW[0], WINDOW[1], NOW, complete)


def spans(index: SyncedBusy) -> dict[str, tuple[object, object, str]]:
    return {i.key: (i.start, i.end, i.show_as) for i in index.instances}


# --- the pure update ---------------------------------------------------------------------------------


def test_a_complete_read_rebuilds_the_index_from_what_was_read() -> None:
    stale = BusyInstance(busy_key("gone"), AT_9, AT_9 + timedelta(hours=1), "busy")
    read = [event("A", start=AT_9), event("B", start=AT_9 + timedelta(hours=2), show_as="tentative")]
    index = updated_index(
        index_of(stale), read, complete=True, window=WINDOW, appointment_of=no_links, now=NOW
    )
    assert spans(index) == {
        busy_key("A"): (AT_9, AT_9 + timedelta(hours=1), "busy"),
        busy_key("B"): (AT_9 + timedelta(hours=2), AT_9 + timedelta(hours=3), "tentative"),
    }
    assert index.complete
    assert (index.window_start, index.window_end) == WINDOW


def test_a_delta_read_upserts_moves_and_removes_instances_of_the_stored_index() -> None:
    stored = updated_index(
        None,
        [event("A", start=AT_9), event("B", start=AT_9 + timedelta(hours=4))],
        complete=True,
        window=WINDOW,
        appointment_of=no_links,
        now=NOW,
    )
    moved = event("A", start=AT_9 + timedelta(days=1))
    delta = [moved, RemovedEvent("B"), event("C", start=AT_9 + timedelta(hours=6), hours=2)]
    index = updated_index(stored, delta, complete=False, window=WINDOW, appointment_of=no_links, now=NOW)
    assert spans(index) == {
        busy_key("A"): (AT_9 + timedelta(days=1), AT_9 + timedelta(days=1, hours=1), "busy"),
        busy_key("C"): (AT_9 + timedelta(hours=6), AT_9 + timedelta(hours=8), "busy"),
    }
    assert index.complete  # a delta on a complete index keeps it complete


def test_the_last_report_of_an_item_in_one_read_wins() -> None:
    delta = [
        event("A", start=AT_9),
        RemovedEvent("A"),
        event("B", start=AT_9),
        event("B", start=AT_9, hours=3),
    ]
    index = updated_index(index_of(), delta, complete=False, window=WINDOW, appointment_of=no_links, now=NOW)
    assert spans(index) == {busy_key("B"): (AT_9, AT_9 + timedelta(hours=3), "busy")}


def test_cancelled_events_and_series_masters_block_nothing() -> None:
    kept = updated_index(
        index_of(),
        [event("A", start=AT_9)],
        complete=False,
        window=WINDOW,
        appointment_of=no_links,
        now=NOW,
    )
    delta = [
        replace(event("A", start=AT_9), cancelled=True),
        replace(event("M", start=AT_9), kind=EventKind.SERIES_MASTER),
    ]
    index = updated_index(kept, delta, complete=False, window=WINDOW, appointment_of=no_links, now=NOW)
    assert index.instances == ()


def test_a_user_without_an_index_gets_one_marked_incomplete_until_a_complete_read() -> None:
    partial = updated_index(
        None, [event("A", start=AT_9)], complete=False, window=WINDOW, appointment_of=no_links, now=NOW
    )
    assert not partial.complete and len(partial.instances) == 1
    still = updated_index(partial, [], complete=False, window=WINDOW, appointment_of=no_links, now=NOW)
    assert not still.complete
    built = updated_index(still, [], complete=True, window=WINDOW, appointment_of=no_links, now=NOW)
    assert built.complete and built.instances == ()


def test_instances_that_ended_before_the_window_start_are_dropped() -> None:
    early = datetime(2026, 11, 16, 9, tzinfo=UTC)
    stored = updated_index(
        None,
        [
            event("old", start=early),
            event("late", start=AT_9),
            event("day", start=date(2026, 11, 16)),  # ends 2026-11-17, local: kept a day longer
        ],
        complete=True,
        window=WINDOW,
        appointment_of=no_links,
        now=NOW,
    )
    assert len(stored.instances) == 3
    moved_on = (datetime(2026, 11, 17, tzinfo=UTC), WINDOW[1] + timedelta(days=2))
    index = updated_index(stored, [], complete=False, window=moved_on, appointment_of=no_links, now=NOW)
    assert set(spans(index)) == {busy_key("late"), busy_key("day")}
    assert index.window_start == moved_on[0]
    assert index.window_end == WINDOW[1]  # a delta round keeps the window its complete read opened
    later = (datetime(2026, 11, 19, tzinfo=UTC), WINDOW[1])
    assert set(
        spans(updated_index(index, [], complete=False, window=later, appointment_of=no_links, now=NOW))
    ) == {busy_key("late")}


def test_each_instance_carries_the_appointment_its_status_or_its_series_master_links() -> None:
    statuses = {
        "A": item_status("A", appointment_id="appt-1"),
        "M": item_status("M", appointment_id="appt-2", master=True),
        "B": item_status("B"),
    }
    occurrence = replace(event("O", start=AT_9), kind=EventKind.OCCURRENCE, series_master_id="M")
    read = [event("A", start=AT_9), event("B", start=AT_9), occurrence]
    index = updated_index(
        None, read, complete=True, window=WINDOW, appointment_of=linked_appointments(statuses), now=NOW
    )
    assert {i.key: i.appointment_id for i in index.instances} == {
        busy_key("A"): "appt-1",
        busy_key("B"): None,
        busy_key("O"): "appt-2",
    }


def test_busy_keys_are_short_and_fixed_length() -> None:
    long_id = "AAMkAGI2TG93AAA=" * 10
    assert len(busy_key(long_id)) == 11
    assert busy_key(long_id) != busy_key(long_id + "x")


# --- the sync writing it -----------------------------------------------------------------------------


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.MIGRATING, matched=2)
    return w


async def run_all(world: FakeWorld) -> None:
    await run_queued(world)


async def sync(world: FakeWorld, kind: str = "sync") -> None:
    await world.jobs.enqueue([jobs.sync_user(TID, "s1", "test", kind=kind)])  # type: ignore[arg-type]
    await run_all(world)


def stored_spans(world: FakeWorld) -> dict[str, tuple[object, object]]:
    index = world.busy.indexes[(TID, "s1")]
    return {i.key: (i.start, i.end) for i in index.instances}


async def test_an_outlook_event_created_moved_and_deleted_appears_moves_and_vanishes(
    world: FakeWorld,
) -> None:
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    await run_all(world)
    assert stored_spans(world) == {}
    assert world.busy.indexes[(TID, "s1")].complete

    world.mailboxes.put("g1", event("A", start=AT_9))
    await sync(world)
    assert stored_spans(world) == {busy_key("A"): (AT_9, AT_9 + timedelta(hours=1))}

    later = AT_9 + timedelta(days=2, hours=3)
    world.mailboxes.put("g1", event("A", start=later, hours=2))
    await sync(world)
    assert stored_spans(world) == {busy_key("A"): (later, later + timedelta(hours=2))}

    world.mailboxes.remove("g1", "A")
    await sync(world)
    assert stored_spans(world) == {}


async def test_the_index_is_written_before_the_change_is_published(world: FakeWorld) -> None:
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    await run_all(world)
    world.mailboxes.put("g1", event("A", start=AT_9))
    seen_at_publish: list[int] = []
    append = world.feed.append

    async def watching(tenant_id: str, changes: list, *, key: str | None = None) -> list:  # type: ignore[type-arg]
        seen_at_publish.append(len(world.busy.indexes[(TID, "s1")].instances))
        return await append(tenant_id, changes, key=key)

    world.feed.append = watching  # type: ignore[method-assign]
    await sync(world)
    assert seen_at_publish and seen_at_publish[0] == 1


async def test_a_run_that_changes_nothing_writes_nothing(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("A", start=AT_9))
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    await run_all(world)
    writes = world.busy.index_writes
    world.mailboxes.put("g1", replace(event("A", start=AT_9), subject="Renamed only"))  # same times
    await sync(world)
    await sync(world)  # a quiet run: nothing read
    assert world.busy.index_writes == writes


async def test_a_user_synced_before_the_index_gets_it_whole_on_the_next_resync(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("A", start=AT_9))
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    await run_all(world)
    await world.busy.delete_user(TID, "s1")  # as before the index existed
    world.mailboxes.put("g1", event("B", start=AT_9 + timedelta(hours=3)))
    await sync(world)
    index = world.busy.indexes[(TID, "s1")]
    assert not index.complete
    assert set(stored_spans(world)) == {busy_key("B")}
    await sync(world, "resync")
    index = world.busy.indexes[(TID, "s1")]
    assert index.complete
    assert set(stored_spans(world)) == {busy_key("A"), busy_key("B")}


async def test_working_hours_are_read_at_migration_and_on_a_resync(world: FakeWorld) -> None:
    box = world.mailboxes.mailbox("g1")
    box.working_hours = WorkingHours(("monday", "friday"), time(8), time(17), "Pacific Standard Time")
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    await run_all(world)
    hours = world.busy.hours[(TID, "s1")]
    assert hours.hours.start == time(8) and hours.iana_zone == "America/Los_Angeles"

    box.working_hours = WorkingHours(("tuesday",), time(9), time(13), "W. Europe Standard Time")
    await sync(world)  # a plain delta run leaves them
    assert world.busy.hours[(TID, "s1")].hours.days == ("monday", "friday")
    world.clock.advance(hours=1)
    await sync(world, "resync")
    hours = world.busy.hours[(TID, "s1")]
    assert (hours.hours.days, hours.iana_zone, hours.read_at) == (
        ("tuesday",),
        "Europe/Berlin",
        world.clock.now(),
    )


async def test_a_mailbox_refusing_its_settings_keeps_the_old_hours_and_syncs_on(world: FakeWorld) -> None:
    box = world.mailboxes.mailbox("g1")
    box.working_hours = WorkingHours(("monday",), time(8), time(17), "UTC")
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    await run_all(world)
    box.hours_refused = "403 ErrorAccessDenied"
    world.mailboxes.put("g1", event("A", start=AT_9))
    await sync(world, "resync")
    user = await world.users.get(TID, "s1")
    assert user is not None and user.sync_state is SyncState.SYNCED
    assert world.busy.hours[(TID, "s1")].hours.days == ("monday",)
    assert set(stored_spans(world)) == {busy_key("A")}
