"""Taking back a cancelled occurrence: Graph cannot restore one, so the series is left as it is (never
deleted and written anew, which would re-invite a meeting's attendees and lose their responses) and the
occurrence becomes an event of its own beside it, linked to the appointment, kept through updates and
deleted with the appointment."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from shared.domain.appointments import CopyState, Override, Recurrence
from shared.domain.calendar import EventKind
from shared.domain.tenants import ConflictPolicy, MultiStaffMode
from shared.service.appointment_api import delete_appointment, get_appointment, put_appointment
from tests.fakes.services import FakeWorld
from tests.unit.service.test_appointments import AMS, TID, feed_types, intake, run_all, sync
from tests.unit.service.test_appointments import world as world  # noqa: PLC0414 (the fixture)
from tests.unit.service.test_write_faults import policy

pytestmark = pytest.mark.unit

WEEKLY = "FREQ=WEEKLY;BYDAY=TU;COUNT=6"
FIRST = intake().start  # Tuesday 1 December 2026, 10:00 in Amsterdam
assert isinstance(FIRST, datetime)
SECOND: date = (FIRST + timedelta(weeks=1)).date()


async def test_a_taken_back_exdate_is_an_event_of_its_own_and_the_series_stays(world: FakeWorld) -> None:
    await sync(world, "s1")
    await put_appointment(world.services, TID, intake("s1", recurrence=Recurrence(WEEKLY, (SECOND,))))
    await run_all(world)
    [master_id] = world.mailboxes.mailbox("g1").events
    assert world.writer.cancelled[master_id] == {SECOND}

    await put_appointment(world.services, TID, intake("s1", subject="Weekly", recurrence=Recurrence(WEEKLY)))
    await run_all(world)

    held = world.mailboxes.mailbox("g1").events
    assert master_id in held and held[master_id].subject == "Weekly"  # the series PATCHed, not made anew
    [single_id] = [i for i in held if i != master_id]
    single = held[single_id]
    assert (single.kind, single.subject) == (EventKind.SINGLE, "Weekly")
    assert single.start == datetime(2026, 12, 8, 10, tzinfo=AMS)  # the rule's time on the day taken back
    assert world.mailboxes.mailbox("g1").appointment_ids[single_id] == "a-1"  # linked to the appointment
    record = await get_appointment(world.services, TID, "a-1")
    copy = record.copies["s1"]
    assert (copy.state, copy.event_id) == (CopyState.SYNCED, master_id)
    assert [(r.day, r.event_id) for r in copy.restored] == [(SECOND, single_id)]

    await sync(world, "s1")  # the connector's own events: no `event.*` change reaches the host
    assert [t for t in feed_types(world) if t.startswith("event.")] == []


async def test_a_restored_occurrence_follows_updates_and_goes_with_the_appointment(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake("s1", recurrence=Recurrence(WEEKLY, (SECOND,))))
    await run_all(world)
    await put_appointment(world.services, TID, intake("s1", recurrence=Recurrence(WEEKLY)))
    await run_all(world)
    [master_id] = [
        i for i, e in world.mailboxes.mailbox("g1").events.items() if e.kind.value == "seriesMaster"
    ]
    [single_id] = [i for i in world.mailboxes.mailbox("g1").events if i != master_id]

    moved = datetime(2026, 12, 8, 15, tzinfo=AMS)
    override = Override(SECOND, moved, moved + timedelta(hours=1), subject="Afternoon")
    await put_appointment(world.services, TID, intake("s1", recurrence=Recurrence(WEEKLY, (), (override,))))
    await run_all(world)
    assert set(world.mailboxes.mailbox("g1").events) == {master_id, single_id}  # updated, not made again
    single = world.mailboxes.mailbox("g1").events[single_id]
    assert (single.subject, single.start) == ("Afternoon", moved)

    await put_appointment(world.services, TID, intake("s1", recurrence=Recurrence(WEEKLY, (SECOND,))))
    await run_all(world)  # cancelled again: the event of its own goes
    assert set(world.mailboxes.mailbox("g1").events) == {master_id}
    assert (await get_appointment(world.services, TID, "a-1")).copies["s1"].restored == ()

    await put_appointment(world.services, TID, intake("s1", recurrence=Recurrence(WEEKLY)))
    await run_all(world)
    assert len(world.mailboxes.mailbox("g1").events) == 2
    await delete_appointment(world.services, TID, "a-1")
    await run_all(world)
    assert world.mailboxes.mailbox("g1").events == {}


async def test_a_meeting_series_keeps_its_event_when_an_exdate_is_taken_back(world: FakeWorld) -> None:
    await policy(world, ConflictPolicy.HOST_WINS, MultiStaffMode.MEETING)
    await put_appointment(world.services, TID, intake("s1", "s2", recurrence=Recurrence(WEEKLY, (SECOND,))))
    await run_all(world)
    [master_id] = world.mailboxes.mailbox("g1").events
    await put_appointment(world.services, TID, intake("s1", "s2", recurrence=Recurrence(WEEKLY)))
    await run_all(world)
    held = world.mailboxes.mailbox("g1").events
    assert master_id in held  # no new series: its attendees are not invited again
    [single] = [e for i, e in held.items() if i != master_id]
    assert [a.address for a in single.attendees] == [a.address for a in held[master_id].attendees]
    assert (
        await world.appointments.meeting(TID, single.ical_uid or "") == "a-1"
    )  # its invitations: the host's
