"""One pass of the write job over an appointment's copies, and the steps every kind of write ends with.

A pass (`WritePass`) collects what it found for the record and the feed. Both the write job
(`appointment_writes.py`) and the handling of Outlook changes (`outlook_conflicts.py`) delete a copy,
finish a write (a series' exceptions, then the item status that makes the write's echo plan to nothing)
and record the connector's version; those steps live here so neither module imports the other's.

Every event the connector writes is recorded in the mailbox's item status with its change key (and series
masters with theirs, which their occurrences carry), so its echo in the next delta read is recognised and
never reaches the host as an Outlook change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Final, Protocol

from shared.domain import recurrence as rules
from shared.domain.appointments import (
    AppointmentRecord,
    CopyRole,
    CopyState,
    EventDraft,
    RestoredOccurrence,
    StaffCopy,
    StaffTarget,
    complete_override,
    restored_draft,
    ruled_occurrence,
)
from shared.domain.planner import ItemStatus
from shared.domain.teams import TeamsMeeting
from shared.domain.tenants import Tenant
from shared.service.appointment_takeover import release_adoption
from shared.service.context import (
    UsesAppointments,
    UsesCalendar,
    UsesCalendarWriter,
    UsesClock,
    UsesItemStatuses,
    UsesLeases,
)
from shared.service.errors import EventMissing, RateLimited
from shared.service.publishing import PublishPorts
from shared.service.records import Change, WrittenEvent

FAR_FUTURE: Final = datetime(9999, 12, 31, tzinfo=UTC)


class WritePassPorts(
    PublishPorts,
    UsesClock,
    UsesCalendar,
    UsesItemStatuses,
    UsesAppointments,
    UsesCalendarWriter,
    UsesLeases,
    Protocol,
):
    """What a pass over an appointment's copies uses: the calendars, their item statuses, the stored
    record, and the feed its outcome goes on."""


@dataclass(slots=True)
class WritePass:
    """One pass over an appointment's copies: what it found, for the record and the feed."""

    services: WritePassPorts
    tenant: Tenant
    record: AppointmentRecord
    recheck: frozenset[str]
    flagged: frozenset[str]  # the items a delta read saw changed (ids of a series' occurrences)
    targets: dict[str, StaffTarget]
    copies: dict[str, StaffCopy]
    removed: set[str]
    changes: list[Change]
    throttled: RateLimited | None = None
    meeting: TeamsMeeting | None = None  # the appointment's Teams meeting as this pass leaves it
    teams_errors: dict[str, str] = field(default_factory=dict)  # staff -> why Teams refused them
    meeting_problem: str | None = None  # why a video appointment has no meeting (every copy says so)
    answers: dict[str, WrittenEvent] = field(default_factory=dict)  # staff -> Graph's answer to the write
    outlook_days: dict[str, set[date]] = field(default_factory=dict)  # staff -> occurrences Outlook changed
    holder: str | None = None  # the `event` method: whose event is the meeting


async def delete_copy(run: WritePass, copy: StaffCopy) -> None:
    """The staff member left the appointment (or it was deleted, or the copy must be made anew)."""
    if copy.event_id is None and copy.sent and copy.graph_user_id is not None:
        await _delete_unanswered(run, copy)
    if copy.event_id is not None and copy.graph_user_id is not None:
        # Forget the status first: the event's removal then reads as nobody's, never as an Outlook delete.
        ids = [copy.event_id, *copy.exceptions, *(r.event_id for r in copy.restored)]
        await run.services.item_statuses.note(run.tenant.tenant_id, copy.staff_id, [], ids)
        try:
            for restored in copy.restored:  # the occurrences written back beside the series go with it
                await run.services.calendar_writer.delete(run.tenant, copy.graph_user_id, restored.event_id)
            await run.services.calendar_writer.delete(run.tenant, copy.graph_user_id, copy.event_id)
        except RateLimited:  # Graph may have deleted it: its absence is then the connector's own doing
            run.copies[copy.staff_id] = replace(copy, deleting=True)
            raise
    if copy.role is CopyRole.ORGANIZER and copy.ical_uid:  # the meeting is over: no invitation links to it
        await run.services.appointments.forget_meeting(run.tenant.tenant_id, copy.ical_uid)
    if copy.adopting and copy.event_id is not None:  # an adoption that never settled: its claim ends too
        await release_adoption(run.services, run.tenant.tenant_id, run.record.appointment_id, copy)
    run.removed.add(copy.staff_id)


async def _delete_unanswered(run: WritePass, copy: StaffCopy) -> None:
    """A create whose answer was lost may have made the event: find it by the connector's property (this
    calendar holds no other event of the appointment) and delete it."""
    assert copy.graph_user_id is not None
    services, tenant = run.services, run.tenant
    found = await services.calendar.connector_events(tenant, copy.graph_user_id)
    made = [event_id for event_id, appointment in found.items() if appointment == run.record.appointment_id]
    if made:
        await services.item_statuses.note(tenant.tenant_id, copy.staff_id, [], made)
    for event_id in made:
        try:
            await services.calendar_writer.delete(tenant, copy.graph_user_id, event_id)
        except RateLimited:
            run.copies[copy.staff_id] = copy  # still unanswered: looked for again next time
            raise


async def finish_write(
    run: WritePass, copy: StaffCopy, target: StaffTarget, draft: EventDraft, written: WrittenEvent
) -> StaffCopy:
    """After the series or single event is written: its exceptions, then its status (for the echo).

    A series' exceptions are written in place: each exdate's occurrence is cancelled, each override is
    (re-)applied with every text it shows (an exception keeps what it held when the master changes), and
    an occurrence the connector changed before that the host no longer overrides is put back to the
    series' own time and texts. The master is never written anew for them."""
    assert target.graph_user_id is not None
    exceptions: tuple[str, ...] = ()
    exception_keys: tuple[str, ...] = ()
    override_days: tuple[date, ...] = ()
    recurrence = draft.recurrence
    if recurrence is not None and (recurrence.exdates or recurrence.overrides or copy.override_days):
        writer, uid = run.services.calendar_writer, target.graph_user_id
        # before its occurrences show up in a delta read
        await remember_written(run, copy, written, master=True)
        overridden = {o.original_date for o in recurrence.overrides}
        reverted = [d for d in copy.override_days if d not in overridden and d not in recurrence.exdates]
        days = [*recurrence.exdates, *overridden, *reverted]
        found = await writer.occurrences(run.tenant, uid, written.id, days, draft.time_zone)
        changed: list[WrittenEvent] = []
        for day in recurrence.exdates:
            if day in found:
                await writer.delete(run.tenant, uid, found[day].id)
        for override in [*recurrence.overrides, *(ruled_occurrence(draft, d) for d in reverted)]:
            if override.original_date in found:
                occurrence = found[override.original_date]
                whole = complete_override(draft, override)
                changed.append(await writer.update_occurrence(run.tenant, uid, occurrence.id, draft, whole))
        exceptions = tuple(o.id for o in changed) + tuple(
            found[d].id for d in recurrence.exdates if d in found
        )
        exception_keys = tuple(o.change_key for o in changed if o.change_key)
        override_days = tuple(sorted(d for d in (*overridden, *reverted) if d in found))
        master = await writer.read(run.tenant, uid, written.id)  # cancelling and changing renew its key
        written = replace(master, join_url=written.join_url or master.join_url)
        for exception in changed:
            await remember_written(run, copy, exception, master=False)
    restored = await _restore_occurrences(run, copy, target, draft, written)
    await remember_written(run, copy, written, master=recurrence is not None)
    run.answers[copy.staff_id] = written
    synced = synced_copy(run, copy, target, written, written.join_url)
    return replace(
        synced,
        exceptions=exceptions,
        exception_keys=exception_keys,
        override_days=override_days,
        restored=restored,
    )


async def _restore_occurrences(
    run: WritePass, copy: StaffCopy, target: StaffTarget, draft: EventDraft, written: WrittenEvent
) -> tuple[RestoredOccurrence, ...]:
    """The occurrences the series' master cancels (Graph's `cancelledOccurrences`) that the host's version
    does not: an exdate taken back, or one deleted in Outlook when the host wins. Graph cannot restore a
    cancelled occurrence, and writing the series anew would re-invite a meeting's attendees and lose their
    responses, so each is its own single event beside the series, linked to the appointment (a
    `transactionId` per day, its status the connector's), written with the day's override or the rule's
    time and texts at each write, and deleted once the host cancels that day again, the rule no longer
    makes it, or the series goes."""
    assert target.graph_user_id is not None
    writer, uid = run.services.calendar_writer, target.graph_user_id
    recurrence = draft.recurrence
    wanted: list[date] = []
    if recurrence is not None and written.shape is not None:
        wanted = sorted(
            day
            for day in written.shape.cancelled - set(recurrence.exdates)
            if rules.is_occurrence(recurrence.rrule, draft.start, draft.time_zone, day)
        )
    held = {r.day: r for r in copy.restored}
    gone = [r.event_id for day, r in held.items() if day not in wanted]
    if gone:
        await run.services.item_statuses.note(run.tenant.tenant_id, copy.staff_id, [], gone)
        for event_id in gone:
            await writer.delete(run.tenant, uid, event_id)
    restored: list[RestoredOccurrence] = []
    for day in wanted:
        single = restored_draft(draft, day, run.meeting)
        made: WrittenEvent | None = None
        if day in held:
            try:
                made = await writer.update(run.tenant, uid, held[day].event_id, single, None)
            except EventMissing:  # deleted in Outlook: made again (the host still wants the occurrence)
                made = None
        if made is None:
            transaction = copy.transaction_id(run.record.appointment_id, day)
            made = await writer.create(run.tenant, uid, single, transaction)
            if copy.role is CopyRole.ORGANIZER and made.ical_uid:  # its invitations are the host's meeting
                await run.services.appointments.note_meeting(
                    run.tenant.tenant_id, made.ical_uid, run.record.appointment_id
                )
        await remember_written(run, copy, made, master=False)
        restored.append(RestoredOccurrence(day, made.id))
    return tuple(restored)


def synced_copy(
    run: WritePass,
    copy: StaffCopy,
    target: StaffTarget,
    event: WrittenEvent,
    join_url: str | None,
) -> StaffCopy:
    """The copy as in the calendar now: `event` is this revision's version of it."""
    return replace(
        copy,
        state=CopyState.SYNCED,
        graph_user_id=target.graph_user_id,
        event_id=event.id,
        change_key=event.change_key,
        ical_uid=event.ical_uid,
        written_hash=event.written_hash,
        revision=run.record.revision,
        join_url=join_url,
        error=None,
        sent=None,
        deleting=False,
    )


async def remember_written(run: WritePass, copy: StaffCopy, written: WrittenEvent, *, master: bool) -> None:
    """Record the connector's own version in the mailbox's item status: its echo then plans to nothing."""
    event = written.event
    ends_at = FAR_FUTURE if master or event is None else event.ends_at()
    status = ItemStatus(
        graph_id=written.id,
        change_key=written.change_key,
        ical_uid=written.ical_uid,
        content_hash=event.content_hash() if event is not None else "",
        ends_at=ends_at,
        admitted=False,
        appointment_id=run.record.appointment_id,
        series_master_id=event.series_master_id if event is not None else None,
        written=True,
        master=master,
    )
    await run.services.item_statuses.note(run.tenant.tenant_id, copy.staff_id, [status], [])
