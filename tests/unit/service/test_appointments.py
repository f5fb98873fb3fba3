"""The host-to-Outlook executor on fakes: copies per staff, idempotent creates, staff added and removed,
per-staff errors, echo recognition in the Outlook-to-host sync, conflicts by policy, If-Match, deletion."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.domain.appointments import Appointment, AppointmentState, CopyState, Customer, body_words
from shared.domain.tenants import (
    ConflictPolicy,
    MultiStaffMode,
    TenantState,
)
from shared.domain.users import MatchStatus, StaffMember, UserRecord
from shared.service import jobs
from shared.service.appointment_api import delete_appointment, get_appointment, put_appointment
from shared.service.appointment_commands import appointment_document, parse_appointment
from shared.service.appointment_writes import run_write_job
from shared.service.errors import Conflict, InvalidInput, PreconditionFailed
from shared.service.job_handlers import run_job
from shared.service.jobs import Job
from shared.service.schedules import nightly_tenant
from tests.fakes.calendar import throttled
from tests.fakes.services import FakeWorld, add_tenant, fake_world

pytestmark = pytest.mark.unit

TID = "contoso.example"
AMS = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, matched=3)
    now = w.clock.now()
    await w.users.save(
        UserRecord(TID, StaffMember("s9", "gone@contoso.example", None, "Gone"), MatchStatus.UNMATCHED, now)
    )
    return w


def intake(*staff: str, subject: str = "Intake", **changes: object) -> Appointment:
    base = Appointment(
        appointment_id="a-1",
        subject=subject,
        start=datetime(2026, 12, 1, 10, tzinfo=AMS),
        end=datetime(2026, 12, 1, 11, tzinfo=AMS),
        time_zone="Europe/Amsterdam",
        all_day=False,
        staff_ids=staff,
        customers=(Customer("Chris Customer", "chris@example.org"),),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def run_all(world: FakeWorld) -> list[Job]:
    ran: list[Job] = []
    for _ in range(50):
        batch = [j for j in world.jobs.take() if j.queue in (jobs.WRITE_QUEUE, jobs.SYNC_QUEUE)]
        if not batch:
            return ran
        for job in batch:
            ran.append(job)
            if job.queue == jobs.WRITE_QUEUE:
                await run_write_job(world.services, job)
            else:  # a user's calendar, or their To Do list
                await run_job(world.services, job)
    raise AssertionError("the queues never went quiet")


def events_in(world: FakeWorld, user: str) -> list[str]:
    return sorted(e.subject for e in world.mailboxes.mailbox(user).events.values())


def feed_types(world: FakeWorld) -> list[str]:
    return [c.type for c in world.feed.entries.get(TID, [])]


async def sync(world: FakeWorld, *staff: str) -> None:
    await world.jobs.enqueue([jobs.sync_user(TID, s) for s in staff])
    await run_all(world)


async def test_one_event_per_staff_calendar_with_the_customers_in_the_body(world: FakeWorld) -> None:
    record = await put_appointment(world.services, TID, intake("s1", "s2"))
    assert (record.revision, record.state) == (1, AppointmentState.PENDING)
    await run_all(world)
    assert events_in(world, "g1") == events_in(world, "g2") == ["Intake"]
    written = next(iter(world.mailboxes.mailbox("g1").events.values()))
    assert "Chris Customer <chris@example.org>" in body_words(written.body, "html")
    assert written.attendees == ()
    record = await get_appointment(world.services, TID, "a-1")
    assert record.state is AppointmentState.SYNCED
    assert {c.staff_id: c.state for c in record.copies.values()} == {
        "s1": CopyState.SYNCED,
        "s2": CopyState.SYNCED,
    }
    assert feed_types(world) == ["appointment.synced"]


async def test_the_connectors_own_writes_never_come_back_as_outlook_changes(world: FakeWorld) -> None:
    await sync(world, "s1", "s2")  # migrated: delta links stored
    await put_appointment(world.services, TID, intake("s1", "s2"))
    await run_all(world)
    await put_appointment(world.services, TID, intake("s1", "s2", subject="Intake (moved)"))
    await run_all(world)
    await sync(world, "s1", "s2")
    assert [t for t in feed_types(world) if t.startswith("event.")] == []
    assert feed_types(world).count("appointment.synced") == 2


async def test_a_create_answered_but_not_recorded_is_not_made_twice(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake("s1"))
    job = world.jobs.take()[0]
    await run_write_job(world.services, job)
    # The worker died after Graph's answer, before the state write: the record is as before the run.
    record = await world.appointments.get(TID, "a-1")
    assert record is not None
    world.appointments.rows[(TID, "a-1")] = replace(record, copies={})
    await run_write_job(world.services, job)  # the message is redelivered
    assert events_in(world, "g1") == ["Intake"]


async def test_a_replayed_put_changes_nothing(world: FakeWorld) -> None:
    first = await put_appointment(world.services, TID, intake("s1"))
    await run_all(world)
    again = await put_appointment(world.services, TID, intake("s1"))
    assert again.revision == first.revision
    await run_all(world)
    assert events_in(world, "g1") == ["Intake"] and world.writer.writes == 1


async def test_adding_and_removing_staff_touches_exactly_their_calendars(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake("s1", "s2"))
    await run_all(world)
    first_id = next(iter(world.mailboxes.mailbox("g1").events))
    await put_appointment(world.services, TID, intake("s1", "s3"))
    await run_all(world)
    assert (events_in(world, "g1"), events_in(world, "g2"), events_in(world, "g3")) == (
        ["Intake"],
        [],
        ["Intake"],
    )
    assert next(iter(world.mailboxes.mailbox("g1").events)) == first_id  # untouched, not recreated


async def test_an_unmatched_staff_member_fails_alone(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake("s1", "s9"))
    await run_all(world)
    record = await get_appointment(world.services, TID, "a-1")
    assert record.state is AppointmentState.PARTIAL
    assert record.copies["s9"].state is CopyState.ERROR and "matches no user" in (
        record.copies["s9"].error or ""
    )
    assert events_in(world, "g1") == ["Intake"]
    failed = [c for c in world.feed.entries[TID] if c.type == "appointment.failed"]
    assert [s["staff_id"] for s in failed[0].data["staff"] if s["error"]] == ["s9"]


async def test_a_failed_revision_written_later_is_told_synced_once(world: FakeWorld) -> None:
    world.mailboxes.mailbox("g2").unavailable = "the mailbox is on hold"
    await put_appointment(world.services, TID, intake("s1", "s2"))
    await run_all(world)
    assert (await get_appointment(world.services, TID, "a-1")).state is AppointmentState.PARTIAL
    world.mailboxes.mailbox("g2").unavailable = None
    for _ in range(2):  # written again (a switch of s2 changed), then once more
        await world.jobs.enqueue([jobs.write_appointment(TID, "a-1", "switched")])
        await run_all(world)
    assert (await get_appointment(world.services, TID, "a-1")).state is AppointmentState.SYNCED
    told = [
        (c.type, c.data["revision"]) for c in world.feed.entries[TID] if c.type.startswith("appointment.")
    ]
    assert told == [("appointment.failed", 1), ("appointment.synced", 1)]


async def test_unknown_staff_is_refused_and_nothing_is_stored(world: FakeWorld) -> None:
    with pytest.raises(InvalidInput) as refused:
        await put_appointment(world.services, TID, intake("s1", "nobody"))
    assert refused.value.field == "staff_ids[1]"
    assert world.appointments.rows == {} and world.jobs.queued == []


async def test_a_stale_if_match_is_refused(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake("s1"))
    await put_appointment(world.services, TID, intake("s1", subject="v2"), if_match='"1"')
    with pytest.raises(PreconditionFailed):
        await put_appointment(world.services, TID, intake("s1", subject="v3"), if_match='"1"')
    record = await get_appointment(world.services, TID, "a-1")
    assert (record.revision, record.appointment and record.appointment.subject) == (2, "v2")


async def test_throttling_is_retried_later_and_converges(world: FakeWorld) -> None:
    world.mailboxes.mailbox("g1").faults.append(throttled(3))
    await put_appointment(world.services, TID, intake("s1", "s2"))
    ran = await run_all(world)
    assert any(j.delay_seconds >= 3 for j in ran)
    assert events_in(world, "g1") == events_in(world, "g2") == ["Intake"]
    assert (await get_appointment(world.services, TID, "a-1")).state is AppointmentState.SYNCED


async def test_delete_removes_every_copy_and_then_the_record(world: FakeWorld) -> None:
    await sync(world, "s1", "s2")
    await put_appointment(world.services, TID, intake("s1", "s2"))
    await run_all(world)
    await delete_appointment(world.services, TID, "a-1")
    await run_all(world)
    assert events_in(world, "g1") == events_in(world, "g2") == []
    assert await world.appointments.get(TID, "a-1") is None
    await sync(world, "s1", "s2")
    assert [t for t in feed_types(world) if t.startswith("event.")] == []


async def test_host_wins_puts_an_outlook_edit_back_and_reports_it(world: FakeWorld) -> None:
    await sync(world, "s1")
    await put_appointment(world.services, TID, intake("s1"))
    await run_all(world)
    box = world.mailboxes.mailbox("g1")
    event_id, written = next(iter(box.events.items()))
    world.mailboxes.put("g1", replace(written, subject="Edited in Outlook"))
    await sync(world, "s1")
    assert events_in(world, "g1") == ["Intake"]
    reported = [c for c in world.feed.entries[TID] if c.type == "appointment.changed_in_outlook"]
    assert [(c.data["change"], c.data["resolution"]) for c in reported] == [("updated", "reverted")]
    assert [t for t in feed_types(world) if t.startswith("event.")] == []
    await sync(world, "s1")  # the revert's own echo is quiet
    assert len([t for t in feed_types(world) if t == "appointment.changed_in_outlook"]) == 1
    assert next(iter(box.events)) == event_id


@pytest.mark.parametrize("policy", [ConflictPolicy.HOST_WINS, ConflictPolicy.OUTLOOK_WINS])
@pytest.mark.parametrize("privacy", [True, False])
async def test_an_outlook_edit_is_reported_as_privacy_mode_shows_events(
    world: FakeWorld, policy: ConflictPolicy, privacy: bool
) -> None:
    tenant = await world.tenants.get(TID)
    assert tenant is not None
    settings = replace(tenant.settings, conflict_policy=policy, privacy_mode=privacy)
    await world.tenants.save(replace(tenant, settings=settings))
    await sync(world, "s1")
    await put_appointment(world.services, TID, intake("s1"))
    await run_all(world)
    written = next(iter(world.mailboxes.mailbox("g1").events.values()))
    world.mailboxes.put("g1", replace(written, subject="Secret edit", location="Room 4"))
    await sync(world, "s1")
    reported = [c.data for c in world.feed.entries[TID] if c.type == "appointment.changed_in_outlook"]
    assert len(reported) == 1
    shown = reported[0]["event"]
    assert shown["id"] == reported[0]["event_id"] and shown["show_as"] == written.show_as
    if privacy:
        assert set(shown) == {"id", "start", "end", "all_day", "show_as"}
        assert "Secret edit" not in str(reported[0]) and "Room 4" not in str(reported[0])
    else:
        assert (shown["subject"], shown["location"]) == ("Secret edit", "Room 4")
        assert {"body", "attendees", "organizer", "categories"} <= set(shown)


async def test_host_wins_recreates_an_event_deleted_in_outlook(world: FakeWorld) -> None:
    await sync(world, "s1")
    await put_appointment(world.services, TID, intake("s1"))
    await run_all(world)
    world.mailboxes.remove("g1", next(iter(world.mailboxes.mailbox("g1").events)))
    await sync(world, "s1")
    assert events_in(world, "g1") == ["Intake"]
    reported = [
        c.data["resolution"] for c in world.feed.entries[TID] if c.type == "appointment.changed_in_outlook"
    ]
    assert reported == ["recreated"]


async def test_outlook_wins_keeps_the_edit_until_the_hosts_next_revision(world: FakeWorld) -> None:
    tenant = await world.tenants.get(TID)
    assert tenant is not None
    settings = replace(tenant.settings, conflict_policy=ConflictPolicy.OUTLOOK_WINS)
    await world.tenants.save(replace(tenant, settings=settings))
    await sync(world, "s1")
    await put_appointment(world.services, TID, intake("s1"))
    await run_all(world)
    written = next(iter(world.mailboxes.mailbox("g1").events.values()))
    world.mailboxes.put("g1", replace(written, subject="Edited in Outlook"))
    await sync(world, "s1")
    assert events_in(world, "g1") == ["Edited in Outlook"]
    reported = [c.data for c in world.feed.entries[TID] if c.type == "appointment.changed_in_outlook"]
    assert [(d["resolution"], d["event"]["subject"]) for d in reported] == [("kept", "Edited in Outlook")]
    assert (await get_appointment(world.services, TID, "a-1")).copies["s1"].state is CopyState.CONFLICT
    await put_appointment(world.services, TID, intake("s1", subject="Host again"))
    await run_all(world)
    assert events_in(world, "g1") == ["Host again"]
    assert (await get_appointment(world.services, TID, "a-1")).copies["s1"].state is CopyState.SYNCED


async def test_a_race_between_host_and_outlook_edits_follows_the_policy(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake("s1"))
    await run_all(world)
    written = next(iter(world.mailboxes.mailbox("g1").events.values()))
    world.mailboxes.put("g1", replace(written, subject="Outlook edit"))  # not seen by any delta read yet
    await put_appointment(world.services, TID, intake("s1", subject="Host edit"))
    await run_all(world)
    assert events_in(world, "g1") == ["Host edit"]  # host wins: If-Match failed, the host's version went in
    reported = [
        c.data["resolution"] for c in world.feed.entries[TID] if c.type == "appointment.changed_in_outlook"
    ]
    assert reported == ["reverted"]


async def test_meeting_mode_writes_one_meeting_and_links_the_attendee_copies(world: FakeWorld) -> None:
    tenant = await world.tenants.get(TID)
    assert tenant is not None
    await world.tenants.save(
        replace(tenant, settings=replace(tenant.settings, multi_staff_mode=MultiStaffMode.MEETING))
    )
    await put_appointment(world.services, TID, intake("s1", "s2"))
    job = world.jobs.take()[0]
    await run_write_job(world.services, job)  # the invitation has not arrived: s2 waits
    meeting = next(iter(world.mailboxes.mailbox("g1").events.values()))
    assert sorted(a.address for a in meeting.attendees) == ["chris@example.org", "user2@contoso.example"]
    world.writer.invite(meeting, "g2")  # Exchange delivers it
    await run_all(world)
    record = await get_appointment(world.services, TID, "a-1")
    assert record.state is AppointmentState.SYNCED
    assert (record.copies["s1"].role.value, record.copies["s2"].role.value) == ("organizer", "attendee")
    assert events_in(world, "g2") == ["Intake"]  # Exchange's copy only; nothing written there
    await sync(world, "s1", "s2")
    assert [t for t in feed_types(world) if t.startswith("event.")] == []


async def test_an_invitation_read_before_the_write_links_it_is_not_a_new_event(world: FakeWorld) -> None:
    """Exchange delivers a meeting's invitations on its own time: the attendee's delta read may bring the
    copy before the write job links it (it is the host's meeting, never `event.created`)."""
    tenant = await world.tenants.get(TID)
    assert tenant is not None
    await world.tenants.save(
        replace(tenant, settings=replace(tenant.settings, multi_staff_mode=MultiStaffMode.MEETING))
    )
    await sync(world, "s2")  # s2 migrated: a later read is not a migration's
    await put_appointment(world.services, TID, intake("s1", "s2"))
    write = world.jobs.take()[0]
    await run_write_job(world.services, write)  # the invitation has not arrived: s2 waits
    meeting = next(iter(world.mailboxes.mailbox("g1").events.values()))
    invitation = world.writer.invite(meeting, "g2")
    assert invitation.is_organizer is False
    before = len(world.feed.entries[TID])
    waiting = world.jobs.take()  # the write's retry, held back while s2's notification is read first
    await run_job(world.services, jobs.sync_user(TID, "s2"))
    assert [c.type for c in world.feed.entries[TID][before:] if c.type.startswith("event.")] == []
    await world.jobs.enqueue(waiting)
    await run_all(world)
    record = await get_appointment(world.services, TID, "a-1")
    assert record.state is AppointmentState.SYNCED
    assert record.copies["s2"].event_id == invitation.id
    await sync(world, "s1", "s2")
    assert [c.type for c in world.feed.entries[TID][before:] if c.type.startswith("event.")] == []


async def test_a_disconnected_tenant_takes_no_appointments(world: FakeWorld) -> None:
    tenant = await world.tenants.get(TID)
    assert tenant is not None
    await world.tenants.save(tenant.with_state(TenantState.DISCONNECTED, world.clock.now()))
    with pytest.raises(Conflict):
        await put_appointment(world.services, TID, intake("s1"))


def test_the_stored_document_parses_back_to_the_same_appointment() -> None:
    body = {
        "subject": "Weekly",
        "start": "2026-12-07T09:00:00",
        "end": "2026-12-07T09:30:00",
        "time_zone": "Europe/Amsterdam",
        "staff_ids": ["s1"],
        "customers": [{"name": "No Mail"}],
        "recurrence": {
            "rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=10",
            "exdates": ["2026-12-14"],
            "overrides": [
                {"recurrence_id": "2026-12-21", "start": "2026-12-21T10:00:00", "end": "2026-12-21T10:30:00"}
            ],
        },
    }
    appointment = parse_appointment("a-1", body)
    assert parse_appointment("a-1", appointment_document(appointment)) == appointment
    assert appointment.start == datetime(2026, 12, 7, 8, tzinfo=UTC)


async def test_the_nightly_run_requeues_an_appointment_whose_job_was_lost(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake("s1"))
    world.jobs.take()  # the write job went to the poison queue
    await nightly_tenant(world.services, TID)
    await run_all(world)
    assert events_in(world, "g1") == ["Intake"]
    assert (await get_appointment(world.services, TID, "a-1")).state is AppointmentState.SYNCED
