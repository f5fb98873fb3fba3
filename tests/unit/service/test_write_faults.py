"""The write side under faults, on fakes that apply a write and then answer an error (Graph's answer lost):
the connector's own writes are never taken for Outlook edits, never reach the host as `event.*` changes, and
never crash a write job."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.domain.appointments import CopyState, Recurrence, body_words
from shared.domain.calendar import Attendee, EventKind
from shared.domain.tenants import ConflictPolicy, MultiStaffMode
from shared.service import jobs
from shared.service.appointment_api import get_appointment, put_appointment
from shared.service.appointment_writes import run_write_job
from shared.service.errors import EventChanged
from shared.service.jobs import Job
from shared.service.records import WrittenEvent
from shared.service.sync import run_sync_job
from tests.fakes.calendar import throttled
from tests.fakes.services import FakeWorld
from tests.unit.service.test_appointments import TID, events_in, feed_types, intake, run_all, sync
from tests.unit.service.test_appointments import world as world  # noqa: PLC0414 (the fixture)

pytestmark = pytest.mark.unit


async def policy(
    world: FakeWorld, conflict_policy: ConflictPolicy, mode: MultiStaffMode | None = None
) -> None:
    tenant = await world.tenants.get(TID)
    assert tenant is not None
    settings = replace(tenant.settings, conflict_policy=conflict_policy)
    if mode is not None:
        settings = replace(settings, multi_staff_mode=mode)
    await world.tenants.save(replace(tenant, settings=settings))


def outlook_changes(world: FakeWorld) -> list[tuple[str, str]]:
    return [
        (c.data["change"], c.data["resolution"])
        for c in world.feed.entries.get(TID, [])
        if c.type == "appointment.changed_in_outlook"
    ]


def echoes(world: FakeWorld) -> list[str]:
    return [c.type for c in world.feed.entries.get(TID, []) if c.type.startswith("event.")]


LOST_ANSWERS = {
    # one 503 after the PATCH took effect: the SDK's retry carries the old If-Match and meets a 412
    "retry-refused": lambda: EventChanged("412 ErrorIrresolvableConflict"),
    # every attempt answered 503 after the first took effect: the job is queued again, and tries again
    "retries-exhausted": lambda: throttled(1),
}


@pytest.mark.parametrize("lost", sorted(LOST_ANSWERS))
@pytest.mark.parametrize("conflict_policy", [ConflictPolicy.HOST_WINS, ConflictPolicy.OUTLOOK_WINS])
async def test_an_update_whose_answer_is_lost_is_not_taken_for_an_outlook_edit(
    world: FakeWorld, conflict_policy: ConflictPolicy, lost: str
) -> None:
    await policy(world, conflict_policy)
    await sync(world, "s1", "s2")
    await put_appointment(world.services, TID, intake("s1", "s2", subject="Intake", body="Bring the forms."))
    await run_all(world)
    first = {u: next(iter(world.mailboxes.mailbox(u).events)) for u in ("g1", "g2")}
    start = intake().start + timedelta(days=1, hours=-1)
    moved = intake(
        "s1",
        "s2",
        subject="Intake (moved)",
        body="Bring the forms.\nAnd the ID.",
        start=start,
        end=start + timedelta(hours=1),
    )
    world.writer.after["g1"] = [LOST_ANSWERS[lost]()]
    await put_appointment(world.services, TID, moved)
    await run_all(world)
    await sync(world, "s1", "s2")  # the delta read sees the write whose answer was lost
    await run_all(world)

    assert outlook_changes(world) == []
    assert echoes(world) == []
    record = await get_appointment(world.services, TID, "a-1")
    assert {c.staff_id: (c.state, c.revision) for c in record.copies.values()} == {
        "s1": (CopyState.SYNCED, 2),
        "s2": (CopyState.SYNCED, 2),
    }
    for user in ("g1", "g2"):
        [(event_id, event)] = world.mailboxes.mailbox(user).events.items()
        assert event_id == first[user]  # the same event, never written anew
        assert (event.subject, event.start) == ("Intake (moved)", moved.start)
        assert "And the ID." in body_words(event.body, event.body_type)
    assert feed_types(world).count("appointment.synced") == 2


async def test_a_series_update_whose_answer_is_lost_keeps_its_event(world: FakeWorld) -> None:
    weekly = Recurrence("FREQ=WEEKLY;BYDAY=TU;COUNT=6")
    await sync(world, "s1")
    await put_appointment(world.services, TID, intake("s1", recurrence=weekly))
    await run_all(world)
    [first] = world.mailboxes.mailbox("g1").events
    world.writer.after["g1"] = [EventChanged("412 ErrorIrresolvableConflict")]
    await put_appointment(world.services, TID, intake("s1", subject="Weekly intake", recurrence=weekly))
    await run_all(world)
    await sync(world, "s1")
    await run_all(world)
    assert outlook_changes(world) == [] and echoes(world) == []
    assert list(world.mailboxes.mailbox("g1").events) == [first]  # not deleted and created again
    assert events_in(world, "g1") == ["Weekly intake"]


async def test_a_series_update_meeting_a_412_puts_outlooks_changes_back_in_place(world: FakeWorld) -> None:
    """Outlook changed a series (its subject, and one occurrence, an exception whose date the 412 does not
    name) since the connector wrote it; the host's update meets the 412 of its If-Match. Host wins: the
    master is PATCHed back and the exception put back in place (one read of the series' instances finds
    it), never the series deleted and written anew (which would re-invite a meeting's attendees)."""
    weekly = Recurrence("FREQ=WEEKLY;BYDAY=TU;COUNT=6")
    await sync(world, "s1")
    await put_appointment(world.services, TID, intake("s1", recurrence=weekly))
    await run_all(world)
    [(master_id, master)] = world.mailboxes.mailbox("g1").events.items()
    second = master.start + timedelta(weeks=1)
    assert isinstance(second, datetime)
    exception = replace(
        master,
        id=f"{master_id}-occ-2",
        change_key="outlook-1",
        kind=EventKind.EXCEPTION,
        series_master_id=master_id,
        subject="Moved in Outlook",
        start=second + timedelta(hours=2),
        end=master.end + timedelta(weeks=1, hours=2),
        original_start=second,
    )
    day = second.astimezone(ZoneInfo("Europe/Amsterdam")).date()
    world.writer.outlook_exceptions[master_id] = {
        day: WrittenEvent(exception.id, exception.change_key, exception.ical_uid, event=exception)
    }
    world.mailboxes.put("g1", replace(master, subject="Renamed in Outlook"))  # the master's key moves on
    await put_appointment(world.services, TID, intake("s1", subject="Weekly intake", recurrence=weekly))
    [job] = world.jobs.take()
    await run_write_job(world.services, job)  # no sync in between: the update learns it from the 412
    assert list(world.mailboxes.mailbox("g1").events) == [master_id]  # not deleted and created again
    assert events_in(world, "g1") == ["Weekly intake"]
    assert world.writer.put_back == [exception.id]
    assert outlook_changes(world) == [("updated", "reverted")]
    record = await get_appointment(world.services, TID, "a-1")
    assert (record.copies["s1"].state, record.copies["s1"].override_days) == (CopyState.SYNCED, (day,))


async def test_a_refused_update_during_a_write_never_crashes_the_job(world: FakeWorld) -> None:
    """Outlook changed the event (the first If-Match fails); the put-back's answer is then lost (its retry
    meets a 412 too): the job settles instead of dying on EventChanged, and reports the edit once."""
    await put_appointment(world.services, TID, intake("s1", "s2", "s3"))
    await run_all(world)
    for user in ("g1", "g2", "g3"):
        written = next(iter(world.mailboxes.mailbox(user).events.values()))
        world.mailboxes.put(user, replace(written, subject="Edited in Outlook"))
    world.writer.after["g2"] = [EventChanged("412 ErrorIrresolvableConflict")]
    await put_appointment(world.services, TID, intake("s1", "s2", "s3", subject="Host edit"))
    [job] = world.jobs.take()
    await run_write_job(world.services, job)  # raised EventChanged before
    await run_all(world)
    assert outlook_changes(world) == [("updated", "reverted")] * 3  # one per copy, none twice
    for user in ("g1", "g2", "g3"):
        assert events_in(world, user) == ["Host edit"]
    record = await get_appointment(world.services, TID, "a-1")
    assert {c.state for c in record.copies.values()} == {CopyState.SYNCED}


async def test_a_meeting_touched_in_outlook_never_comes_back_as_an_event(world: FakeWorld) -> None:
    """An attendee's response changes the organiser's event (a touch, not an edit of what the connector
    wrote): its status goes on naming the connector's event, so a later change of it is never announced to
    the host as `event.created`."""
    await policy(world, ConflictPolicy.HOST_WINS, MultiStaffMode.MEETING)
    await sync(world, "s1", "s2")
    await put_appointment(world.services, TID, intake("s1", "s2"))
    [job] = world.jobs.take()
    await run_write_job(world.services, job)  # the invitation has not arrived: s2 waits
    organiser = next(iter(world.mailboxes.mailbox("g1").events.values()))
    world.writer.invite(organiser, "g2")
    await run_all(world)
    for response in ("accepted", "declined"):
        current = world.mailboxes.mailbox("g1").events[organiser.id]
        answered = tuple(replace(a, response=response) for a in current.attendees)
        assert answered and all(isinstance(a, Attendee) for a in answered)
        world.mailboxes.put("g1", replace(current, attendees=answered))
        await sync(world, "s1")
        await run_all(world)
    assert echoes(world) == [] and outlook_changes(world) == []
    await world.jobs.enqueue([jobs.sync_user(TID, "s1")])
    await run_all(world)
    assert echoes(world) == []


async def test_a_removal_whose_answer_is_lost_is_not_reported_as_an_outlook_deletion(
    world: FakeWorld,
) -> None:
    """The staff member leaves (the delete takes effect, its answer is lost), then comes back: the copy is
    made anew without an `appointment.changed_in_outlook` about a deletion nobody made in Outlook."""
    await put_appointment(world.services, TID, intake("s1", "s2"))
    await run_all(world)
    world.writer.after["g2"] = [throttled(1)]
    await put_appointment(world.services, TID, intake("s1"))
    [job] = world.jobs.take()
    await run_write_job(world.services, job)  # the retry is queued; the host changes its mind first
    world.jobs.take()
    await put_appointment(world.services, TID, intake("s1", "s2"))
    await run_all(world)
    assert outlook_changes(world) == []
    assert events_in(world, "g2") == ["Intake"]
    record = await get_appointment(world.services, TID, "a-1")
    assert record.copies["s2"].state is CopyState.SYNCED


async def test_a_create_whose_answer_is_lost_leaves_no_event_when_the_staff_member_leaves(
    world: FakeWorld,
) -> None:
    await put_appointment(world.services, TID, intake("s1", "s2"))
    world.writer.after["g2"] = [throttled(1)]  # the event is made, the answer lost
    [job] = world.jobs.take()
    await run_write_job(world.services, job)
    world.jobs.take()
    await put_appointment(world.services, TID, intake("s1"))
    await run_all(world)
    assert events_in(world, "g2") == []
    assert events_in(world, "g1") == ["Intake"]


async def test_a_retried_create_that_answers_an_earlier_revision_is_brought_to_the_latest(
    world: FakeWorld,
) -> None:
    """Graph answers a repeated transactionId with the event made the first time, as it was made: the copy
    must not be marked synced holding an older revision."""
    await put_appointment(world.services, TID, intake("s1"))
    world.writer.after["g1"] = [throttled(1)]
    [job] = world.jobs.take()
    await run_write_job(world.services, job)
    world.jobs.take()
    await put_appointment(world.services, TID, intake("s1", subject="Intake (renamed)"))
    await run_all(world)
    assert events_in(world, "g1") == ["Intake (renamed)"]
    record = await get_appointment(world.services, TID, "a-1")
    assert (record.copies["s1"].state, record.copies["s1"].revision) == (CopyState.SYNCED, 2)
    assert outlook_changes(world) == []


async def test_an_occurrence_edited_in_outlook_is_seen_beside_a_series_update_whose_answer_was_lost(
    world: FakeWorld,
) -> None:
    """A delta read flags the series master (the connector's update, its answer lost) and an occurrence
    someone edited in Outlook: finding the connector's own write on the master must not skip the
    occurrence."""
    weekly = Recurrence("FREQ=WEEKLY;BYDAY=TU;COUNT=6")
    await sync(world, "s1")
    await put_appointment(world.services, TID, intake("s1", recurrence=weekly))
    await run_all(world)
    [(master_id, master)] = world.mailboxes.mailbox("g1").events.items()
    world.writer.after["g1"] = [throttled(1)]  # the update takes effect, its answer is lost
    await put_appointment(world.services, TID, intake("s1", subject="Weekly intake", recurrence=weekly))
    [job] = world.jobs.take()
    await run_write_job(world.services, job)
    world.jobs.take()  # the retry: the delta read's recheck comes first
    edited = replace(
        master,
        id=f"{master_id}-occ-2",
        change_key="outlook-1",
        kind=EventKind.EXCEPTION,
        series_master_id=master_id,
        subject="Edited in Outlook",
    )
    world.mailboxes.put("g1", edited)
    recheck = jobs.write_appointment(
        TID, "a-1", "changed_in_outlook", recheck=["s1"], events=sorted([master_id, edited.id])
    )
    await run_write_job(world.services, recheck)
    await run_all(world)
    assert [change for change, _ in outlook_changes(world)] == ["updated"]


async def test_an_outlook_edit_is_reported_when_the_run_dies_queueing_its_recheck(
    world: FakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync run dies while queueing the recheck of a connector event edited in Outlook: its redelivery
    reads the same delta and must still find the edit to report (statuses stored before the recheck was
    queued would say it was seen already, and the edit would never be reported or put back)."""
    await sync(world, "s1")
    await put_appointment(world.services, TID, intake("s1"))
    await run_all(world)
    [written] = world.mailboxes.mailbox("g1").events.values()
    world.mailboxes.put("g1", replace(written, subject="Edited in Outlook", change_key="outlook-1"))
    enqueue = world.jobs.enqueue
    died: list[bool] = []

    async def dies_once(batch: list[Job]) -> None:
        if not died and any(j.queue == jobs.WRITE_QUEUE for j in batch):
            died.append(True)
            raise RuntimeError("the worker died")
        await enqueue(batch)

    monkeypatch.setattr(world.jobs, "enqueue", dies_once)
    with pytest.raises(RuntimeError):
        await run_sync_job(world.services, jobs.sync_user(TID, "s1"))
    world.leases.rows.clear()  # the dead worker's lease lapses
    await sync(world, "s1")  # the job's redelivery
    await run_all(world)
    assert outlook_changes(world) == [("updated", "reverted")]
    assert events_in(world, "g1") == ["Intake"]


async def test_a_worker_killed_after_a_create_its_revision_no_longer_wanted_leaves_no_event(
    world: FakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host re-staffs the appointment between the write job's read and its note of the create to come:
    the pass must plan again from the new revision, never make the old revision's copy unnoted (a worker
    killed after Graph's answer would leave it in a calendar nothing names any more)."""
    await put_appointment(world.services, TID, intake("s1", "s2"))
    [job] = world.jobs.take()
    read = world.appointments.get
    restaffed: list[bool] = []

    async def read_then_restaff(tenant_id: str, appointment_id: str) -> object:
        record = await read(tenant_id, appointment_id)
        if not restaffed:
            restaffed.append(True)
            await put_appointment(world.services, TID, intake("s1"))
        return record

    monkeypatch.setattr(world.appointments, "get", read_then_restaff)
    world.writer.after["g2"] = [RuntimeError("the worker was killed")]  # made, then nothing more of that job
    with contextlib.suppress(RuntimeError):
        await run_write_job(world.services, job)
    monkeypatch.setattr(world.appointments, "get", read)
    await run_all(world)
    assert events_in(world, "g2") == []
    assert events_in(world, "g1") == ["Intake"]
