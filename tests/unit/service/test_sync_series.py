"""Outlook series, meetings and removal reasons through the sync executor, on fakes that behave as
Exchange does (occurrences carry their master's change key; calendarView delta never reports masters)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from dateutil.rrule import rrulestr

from shared.domain.calendar import Attendee
from shared.domain.tenants import RecurringEvents, TenantState
from shared.service import jobs
from shared.service.errors import InvalidInput
from shared.service.job_handlers import run_job
from shared.service.records import Change
from shared.service.tenant_settings import update_settings
from tests.fakes.events import event
from tests.fakes.series import FIRST, WEEKLY, OutlookSeries
from tests.fakes.services import FakeWorld, add_tenant, fake_world

pytestmark = pytest.mark.unit

TID = "contoso.example"


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, directory_id="dir-1", matched=2)
    return w


async def sync(world: FakeWorld, staff_id: str = "s1", kind: str = "sync") -> list[Change]:
    before = len(world.feed.entries.get(TID, []))
    await world.jobs.enqueue([jobs.sync_user(TID, staff_id, "test", kind=kind)])  # type: ignore[arg-type]
    for _ in range(20):
        batch = [j for j in world.jobs.take() if j.queue == jobs.SYNC_QUEUE]
        if not batch:
            break
        for job in batch:
            await run_job(world.services, job)
    return [c for c in world.feed.entries.get(TID, [])[before:] if c.type.startswith("event.")]


def summary(changes: list[Change]) -> list[tuple[str, str]]:
    return [(c.type, c.data["event"]["id"]) for c in changes]


async def test_a_series_reaches_the_host_once_as_its_master_with_an_rrule_dateutil_expands(
    world: FakeWorld,
) -> None:
    OutlookSeries(world.mailboxes)
    changes = await sync(world)
    assert summary(changes) == [("event.created", "M")]
    master = changes[0].data["event"]
    recurrence = master["recurrence"]
    assert recurrence == {
        "rrule": "FREQ=WEEKLY;BYDAY=WE;WKST=SU",
        "exdates": [],
        "time_zone": "Europe/Berlin",
        "start": "2026-11-25T09:00:00+01:00",
        "exact": True,
    }
    assert (master["type"], master["meeting_id"], master["is_organizer"]) == ("seriesMaster", "uid-M", True)
    start = datetime.fromisoformat(recurrence["start"])
    first_four = list(rrulestr(recurrence["rrule"], dtstart=start))[:4]
    assert [o.astimezone(UTC) for o in first_four] == [FIRST + timedelta(weeks=w) for w in range(4)]
    assert world.mailboxes.mailbox("g1").event_reads == 1


async def test_the_window_moving_over_a_known_series_announces_nothing_and_reads_no_master(
    world: FakeWorld,
) -> None:
    series = OutlookSeries(world.mailboxes, weeks=4)
    await sync(world)
    world.clock.advance(days=7)
    series.weeks = 6  # the window's edge brings later occurrences (same master, same change key)
    series.publish()
    assert await sync(world) == []
    assert await sync(world, kind="resync") == []  # a full read of the moved window too
    assert world.mailboxes.mailbox("g1").event_reads == 1


async def test_a_cancelled_occurrence_is_an_update_of_the_series_with_its_exdate(world: FakeWorld) -> None:
    series = OutlookSeries(world.mailboxes)
    await sync(world)
    series.cancel(date(2026, 12, 9))
    changes = await sync(world)
    assert summary(changes) == [("event.updated", "M")]
    assert changes[0].data["event"]["recurrence"]["exdates"] == ["2026-12-09"]
    assert world.mailboxes.mailbox("g1").event_reads == 2


async def test_an_exception_is_an_override_naming_its_series_and_original_start(world: FakeWorld) -> None:
    series = OutlookSeries(world.mailboxes)
    await sync(world)
    series.move(date(2026, 12, 2), hours=2)
    changes = await sync(world)
    assert summary(changes) == [("event.created", "M.2026-12-02")]
    override = changes[0].data["event"]
    assert override["type"] == "exception"
    assert override["series_master_id"] == "M"
    assert override["meeting_id"] == "uid-M"  # the series' identity, not the occurrence's
    assert override["original_start"] == "2026-12-02T08:00:00Z"
    assert override["start"] == "2026-12-02T10:00:00Z"


async def test_a_deleted_series_is_deleted_once_with_its_exceptions(world: FakeWorld) -> None:
    series = OutlookSeries(world.mailboxes, weeks=3)
    series.move(date(2026, 12, 2), hours=1)
    await sync(world)
    for week in range(3):
        world.mailboxes.remove("g1", series.occurrence_id((FIRST + timedelta(weeks=week)).date()))
    world.mailboxes.remove_master("g1", "M")
    changes = await sync(world)
    assert sorted((c.data["event"]["id"], c.data["reason"]) for c in changes) == [
        ("M", "deleted"),
        ("M.2026-12-02", "deleted"),
    ]


async def test_occurrences_setting_keeps_every_occurrence_as_its_own_event(world: FakeWorld) -> None:
    settings = replace(world.tenants.rows[TID].settings, recurring_events=RecurringEvents.OCCURRENCES)
    world.tenants.rows[TID] = replace(world.tenants.rows[TID], settings=settings)
    OutlookSeries(world.mailboxes, weeks=3)
    changes = await sync(world)
    assert [c.data["event"]["type"] for c in changes] == ["occurrence"] * 3
    assert world.mailboxes.mailbox("g1").event_reads == 0


async def test_switching_to_occurrences_resyncs_and_replaces_the_series(world: FakeWorld) -> None:
    OutlookSeries(world.mailboxes, weeks=2)
    await sync(world)
    await update_settings(world.services, TID, {"recurring_events": "occurrences"})
    assert [j.kind for j in world.jobs.take()] == ["reconcile"]
    changes = await sync(world, kind="resync")
    assert sorted(summary(changes)) == [
        ("event.created", "M.2026-11-25"),
        ("event.created", "M.2026-12-02"),
        ("event.deleted", "M"),
    ]
    assert next(c for c in changes if c.type == "event.deleted").data["reason"] == "filtered"


async def test_an_unknown_recurring_events_value_is_refused_naming_the_setting(world: FakeWorld) -> None:
    with pytest.raises(InvalidInput) as raised:
        await update_settings(world.services, TID, {"recurring_events": "expanded"})
    assert raised.value.field == "settings.recurring_events"
    assert world.tenants.rows[TID].settings.recurring_events is RecurringEvents.SERIES


async def test_removal_reasons_say_what_happened(world: FakeWorld) -> None:
    people = (Attendee("Pat", "pat@contoso.example", "required", "none"),)
    world.mailboxes.put("g1", event("organised", is_organizer=True, response="organizer", attendees=people))
    world.mailboxes.put("g1", event("plain", is_organizer=True, response="organizer", attendees=()))
    world.mailboxes.put("g1", event("invited", is_organizer=False, response="accepted", attendees=people))
    world.mailboxes.put("g1", event("answered", is_organizer=False, response="accepted", attendees=people))
    world.mailboxes.put("g1", event("refused", is_organizer=False, response="accepted", attendees=people))
    created = await sync(world)
    assert {c.data["event"]["id"]: c.data["event"]["response"] for c in created}["invited"] == "accepted"
    world.mailboxes.remove("g1", "organised")  # the organiser deletes a meeting: it is cancelled
    world.mailboxes.remove("g1", "plain")
    box = world.mailboxes.mailbox("g1")
    world.mailboxes.put("g1", replace(box.events["invited"], cancelled=True, subject="Canceled: x"))
    world.mailboxes.put("g1", replace(box.events["answered"], response="declined"))
    world.mailboxes.remove("g1", "refused")  # declined in Outlook, which removes it: Graph reads it no more
    changes = await sync(world)
    assert {c.data["event"]["id"]: c.data["reason"] for c in changes} == {
        "organised": "cancelled",
        "plain": "deleted",
        "invited": "cancelled",
        "answered": "declined",
        "refused": "declined",
    }


async def test_an_event_moved_past_the_windows_far_end_is_out_of_window_not_deleted(world: FakeWorld) -> None:
    """calendarView delta reports `@removed` alike for an event deleted and one moved out of its range:
    the removed item is read again by id, and one the mailbox still holds beyond the window is
    `out_of_window`."""
    world.mailboxes.put("g1", event("moved"))
    world.mailboxes.put("g1", event("gone"))
    await sync(world)
    box = world.mailboxes.mailbox("g1")
    later = world.clock.now() + timedelta(days=400)  # past the 180 days the window reaches forward
    world.mailboxes.put("g1", replace(box.events["moved"], start=later, end=later + timedelta(hours=1)))
    world.mailboxes.remove("g1", "gone")
    reads_before = box.event_reads

    changes = await sync(world)

    assert {c.data["event"]["id"]: (c.type, c.data["reason"]) for c in changes} == {
        "moved": ("event.deleted", "out_of_window"),
        "gone": ("event.deleted", "deleted"),
    }
    assert box.event_reads - reads_before == 2  # the two removed items, read again by id
    assert await sync(world) == []  # nothing more once they are forgotten


async def test_a_series_ended_before_the_window_is_no_longer_followed(world: FakeWorld) -> None:
    ending = {**WEEKLY, "range": {**WEEKLY["range"], "type": "numbered", "numberOfOccurrences": 2}}
    series = OutlookSeries(world.mailboxes, weeks=2)
    series.change_master(recurrence=ending)
    await sync(world)
    world.clock.advance(days=60)  # both occurrences now end before the window's start
    changes = await sync(world, kind="resync")
    assert [(c.data["event"]["id"], c.data["reason"]) for c in changes] == [("M", "out_of_window")]
