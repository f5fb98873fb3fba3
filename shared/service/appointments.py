"""Host to Outlook: the host's appointments written into every involved staff calendar.

The API stores the host's version (a new revision) and queues a write job; it answers at once. The job
(one at a time per appointment across workers: a lease with a 'run again' flag, as the sync's) plans with
`plan_writes` and applies the steps:
- creates carry the copy's `transactionId`, so a retried job, a redelivered message or a crash between
  Graph's answer and the state write finds the event made the first time instead of making a second;
- updates carry `If-Match` with the change key of the connector's last write: a 412 means Outlook changed
  the event meanwhile, and the tenant's conflict policy decides (host wins: written again; Outlook wins:
  kept, until the host's next revision);
- every event the connector writes is recorded in the mailbox's item status with its change key (and
  series masters with theirs, which their occurrences carry), so its echo in the next delta read is
  recognised and never reaches the host as an Outlook change;
- a delta read that sees a connector event changed or deleted in Outlook queues a recheck of that copy;
  the outcome goes on the feed as `appointment.changed_in_outlook`.
Each revision's outcome goes on the feed once: `appointment.synced` or `appointment.failed`, per staff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from shared.domain.appointments import (
    Appointment,
    AppointmentRecord,
    AppointmentState,
    CopyRole,
    CopyState,
    EventDraft,
    Invitee,
    StaffCopy,
    StaffTarget,
    StepKind,
    WriteStep,
    draft_for,
    plan_writes,
)
from shared.domain.calendar import EventKind
from shared.domain.planner import ItemStatus
from shared.domain.tenants import ConflictPolicy, Tenant
from shared.domain.users import MatchStatus
from shared.observability import bound, get_logger
from shared.service import jobs
from shared.service.context import Services
from shared.service.errors import (
    AlreadyExists,
    Conflict,
    EventChanged,
    EventMissing,
    EventRejected,
    InvalidInput,
    MailboxUnavailable,
    NotFound,
    PreconditionFailed,
    RateLimited,
    StaleWrite,
    TenantAccessError,
)
from shared.service.jobs import WriteAppointment
from shared.service.leasing import check_back, run_leased
from shared.service.publishing import publish
from shared.service.records import Change, WrittenEvent
from shared.service.tenants import get_tenant, mark_consent_revoked

log = get_logger("appointments")

LEASE_TTL: Final = timedelta(minutes=2)
CALENDAR_CONCURRENCY: Final = 8  # staff calendars written at once (each is its own mailbox)
MAX_FLAGGED_READS: Final = 3  # occurrences read to tell an Outlook change of a series from an echo
MAX_RETRIES: Final = 6
UPDATE_ATTEMPTS: Final = 3  # If-Match refusals one update rides out, reading and deciding again each time
SAVE_ATTEMPTS: Final = 5
FAR_FUTURE: Final = datetime(9999, 12, 31, tzinfo=UTC)

_PROBLEMS: Final = {
    MatchStatus.UNMATCHED: "the staff member matches no user of the organisation",
    MatchStatus.FORBIDDEN: "an access policy keeps the app out of the staff member's mailbox",
    MatchStatus.NO_MAILBOX: "the staff member has no Exchange Online mailbox",
    MatchStatus.DISABLED: "the staff member is disabled",
    MatchStatus.PENDING: "the staff member is not matched yet",
}


def etag(record: AppointmentRecord) -> str:
    """The API's ETag: the revision (the copies' progress does not change it)."""
    return f'"{record.revision}"'


# --- the API ------------------------------------------------------------------------------------------


async def put_appointment(
    services: Services, tenant_id: str, appointment: Appointment, *, if_match: str | None = None
) -> AppointmentRecord:
    """Store the host's version and queue its writes. A replay of the current version changes nothing."""
    tenant = await _connected(services, tenant_id)
    await _known_staff(services, tenant.tenant_id, appointment.staff_ids)
    for _ in range(SAVE_ATTEMPTS):
        record = await services.appointments.get(tenant.tenant_id, appointment.appointment_id)
        _check_precondition(record, if_match)
        if record is not None and record.appointment == appointment:
            if record.state is AppointmentState.PENDING:  # the first PUT may not have queued its job
                await _queue_write(services, record)
            return record
        now = services.clock.now()
        if record is None:
            record = AppointmentRecord(tenant.tenant_id, appointment.appointment_id, 0, None, {}, now)
        updated = replace(record, appointment=appointment, revision=record.revision + 1, updated_at=now)
        try:
            saved = await services.appointments.save(updated)
        except (StaleWrite, AlreadyExists):
            continue
        await _queue_write(services, saved)
        return saved
    raise Conflict("appointment_id", "the appointment is being changed concurrently; retry")


async def delete_appointment(
    services: Services, tenant_id: str, appointment_id: str, *, if_match: str | None = None
) -> AppointmentRecord:
    """Mark it deleted and queue the removal of every copy (idempotent)."""
    await get_tenant(services, tenant_id)
    for _ in range(SAVE_ATTEMPTS):
        record = await services.appointments.get(tenant_id, appointment_id)
        if record is None:
            raise NotFound("appointment", appointment_id, "appointment_id")
        _check_precondition(record, if_match)
        if record.appointment is None:
            await _queue_write(services, record)
            return record
        updated = replace(
            record, appointment=None, revision=record.revision + 1, updated_at=services.clock.now()
        )
        try:
            saved = await services.appointments.save(updated)
        except StaleWrite:
            continue
        await _queue_write(services, saved)
        return saved
    raise Conflict("appointment_id", "the appointment is being changed concurrently; retry")


async def get_appointment(services: Services, tenant_id: str, appointment_id: str) -> AppointmentRecord:
    await get_tenant(services, tenant_id)
    record = await services.appointments.get(tenant_id, appointment_id)
    if record is None:
        raise NotFound("appointment", appointment_id, "appointment_id")
    return record


async def _connected(services: Services, tenant_id: str) -> Tenant:
    tenant = await get_tenant(services, tenant_id)
    if not tenant.state.connected:
        raise Conflict(
            "tenant_id", f"the tenant is {tenant.state.value}; appointments need a connected tenant"
        )
    return tenant


async def _known_staff(services: Services, tenant_id: str, staff_ids: Sequence[str]) -> None:
    users = await asyncio.gather(*(services.users.get(tenant_id, s) for s in staff_ids))
    for index, user in enumerate(users):
        if user is None:
            raise InvalidInput(
                f"staff_ids[{index}]", "no such staff member (PUT the staff member first)", status=422
            )


def _check_precondition(record: AppointmentRecord | None, if_match: str | None) -> None:
    if if_match is None:
        return
    if record is None or record.appointment is None:
        raise PreconditionFailed("If-Match", "the appointment does not exist")
    if if_match.strip() != "*" and if_match.strip().removeprefix("W/") != etag(record):
        raise PreconditionFailed("If-Match", f"the appointment is at revision {record.revision}")


async def _queue_write(services: Services, record: AppointmentRecord) -> None:
    await services.jobs.enqueue(
        [jobs.write_appointment(record.tenant_id, record.appointment_id, revision=record.revision)]
    )


# --- the write job ------------------------------------------------------------------------------------


async def run_write_job(services: Services, job: WriteAppointment) -> None:
    """A job from the `outlook-writes` queue. Never raises for a condition a retry cannot fix."""
    appointment_id = job.appointment_id
    if not appointment_id:
        log.error("a write job names no appointment; dropped")
        return
    recheck = list(job.recheck)

    async def write_pass(number: int) -> None:
        if number == 0:
            await _write_once(services, job, recheck)
        else:  # asked for while we ran: bring the copies to the newest revision
            await _write_once(services, replace(job, events=()), [])

    with bound(tenant=job.tenant_id, appointment=appointment_id):
        key = f"{job.tenant_id}/appointments/{appointment_id}"
        if not await run_leased(services, key, LEASE_TTL, write_pass):
            await check_back(services, job, LEASE_TTL)


@dataclass(slots=True)
class _Run:
    """One pass over an appointment's copies: what it found, for the record and the feed."""

    services: Services
    tenant: Tenant
    record: AppointmentRecord
    recheck: frozenset[str]
    flagged: frozenset[str]  # the items a delta read saw changed (ids of a series' occurrences)
    targets: dict[str, StaffTarget]
    copies: dict[str, StaffCopy]
    removed: set[str]
    changes: list[Change]
    throttled: RateLimited | None = None


async def _write_once(services: Services, job: WriteAppointment, recheck: Sequence[str]) -> None:
    tenant = await services.tenants.get(job.tenant_id)
    if tenant is None or not tenant.state.connected:
        return
    appointment_id = job.appointment_id
    record = await services.appointments.get(tenant.tenant_id, appointment_id)
    if record is None:
        return
    wanted = set(record.copies) | set(record.appointment.staff_ids if record.appointment else ())
    targets = {t.staff_id: t for t in await asyncio.gather(*(_target(services, tenant, s) for s in wanted))}
    plan = plan_writes(record, targets, tenant.settings.multi_staff_mode, recheck=recheck)
    flagged = frozenset(job.events)
    run = _Run(services, tenant, record, frozenset(recheck), flagged, targets, {}, set(), [])
    try:
        await _in_parallel(run, plan.deletes)
        await _in_parallel(run, plan.writes)
        await _in_parallel(run, plan.links)
    except TenantAccessError as error:
        await mark_consent_revoked(services, tenant.tenant_id, error.reason)
        return
    await _save(run)
    if run.throttled is not None:
        await _retry_later(services, job, run.throttled)


async def _in_parallel(run: _Run, steps: Sequence[WriteStep]) -> None:
    gate = asyncio.Semaphore(CALENDAR_CONCURRENCY)

    async def one(step: WriteStep) -> None:
        async with gate:
            try:
                await _apply(run, step)
            except RateLimited as error:
                run.throttled = error

    await asyncio.gather(*(one(step) for step in steps))


async def _target(services: Services, tenant: Tenant, staff_id: str) -> StaffTarget:
    user = await services.users.get(tenant.tenant_id, staff_id)
    if user is None:
        return StaffTarget(staff_id, problem="no such staff member")
    if user.match is not MatchStatus.MATCHED or user.graph_user_id is None:
        reason = _PROBLEMS.get(user.match, f"the staff member is {user.match.value}")
        return StaffTarget(
            staff_id, problem=f"{reason}{': ' + user.match_reason if user.match_reason else ''}"
        )
    address = user.staff.email or user.staff.upn
    return StaffTarget(staff_id, user.graph_user_id, address, user.staff.display_name)


async def _apply(run: _Run, step: WriteStep) -> None:
    copy = step.copy
    failed = run.copies.get(copy.staff_id)
    if step.kind is not StepKind.DELETE and failed is not None and failed.deleting:
        return  # its old event may still be there: made anew once the delete went through
    with bound(user=copy.staff_id):
        try:
            if step.kind is StepKind.DELETE:
                await _delete(run, copy)
            elif step.kind is StepKind.FAIL:
                run.copies[copy.staff_id] = replace(copy, state=CopyState.ERROR, error=step.reason)
            elif step.kind is StepKind.LINK:
                assert step.target is not None
                await _link(run, copy, step.target)
            else:
                assert step.target is not None
                await _write(run, step.kind, copy, step.target)
        except MailboxUnavailable as error:
            run.copies[copy.staff_id] = replace(copy, state=CopyState.ERROR, error=error.reason)
        except EventRejected as error:
            run.copies[copy.staff_id] = replace(copy, state=CopyState.ERROR, error=error.reason)


async def _delete(run: _Run, copy: StaffCopy) -> None:
    """The staff member left the appointment (or it was deleted, or the copy must be made anew)."""
    if copy.event_id is None and copy.sent and copy.graph_user_id is not None:
        await _delete_unanswered(run, copy)
    if copy.event_id is not None and copy.graph_user_id is not None:
        # Forget the status first: the event's removal then reads as nobody's, never as an Outlook delete.
        ids = [copy.event_id, *copy.exceptions]
        await run.services.item_statuses.note(run.tenant.tenant_id, copy.staff_id, [], ids)
        try:
            await run.services.calendar_writer.delete(run.tenant, copy.graph_user_id, copy.event_id)
        except RateLimited:  # Graph may have deleted it: its absence is then the connector's own doing
            run.copies[copy.staff_id] = replace(copy, deleting=True)
            raise
    run.removed.add(copy.staff_id)


async def _delete_unanswered(run: _Run, copy: StaffCopy) -> None:
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


async def _write(run: _Run, kind: StepKind, copy: StaffCopy, target: StaffTarget) -> None:
    appointment = run.record.appointment
    assert appointment is not None and target.graph_user_id is not None
    draft = draft_for(appointment, copy.role, _invitees(run, appointment))
    if kind is StepKind.UPDATE:
        assert copy.event_id is not None
        updated = await _update(run, copy, target, draft)
        if updated is not None:
            run.copies[copy.staff_id] = updated
            return
        copy = replace(copy, event_id=None, exceptions=(), generation=copy.generation + 1)
    written = await _create(run, copy, target, draft)
    if written.shape is not None and not written.shape.holds(draft):
        # A retried create answers the event made the first time, as it is now (an earlier revision, whose
        # answer was lost): the copy is that event, brought to this revision.
        made = replace(
            copy,
            graph_user_id=target.graph_user_id,
            event_id=written.id,
            change_key=written.change_key,
            written_hash=written.written_hash,
        )
        updated = await _update(run, made, target, draft)
        if updated is None:  # gone meanwhile, or to be written anew: the next pass makes it
            run.copies[copy.staff_id] = replace(made, state=CopyState.PENDING, deleting=True)
            raise RateLimited(5, "the event made by a retried create must be written anew")
        run.copies[copy.staff_id] = updated
        return
    try:
        run.copies[copy.staff_id] = await _finish(run, copy, target, draft, written)
    except RateLimited:  # made, its exceptions not yet: the next pass updates this event (never a second)
        made = _synced(run, copy, target, written, written.join_url)
        run.copies[copy.staff_id] = replace(made, state=CopyState.PENDING, revision=copy.revision)
        raise


async def _create(run: _Run, copy: StaffCopy, target: StaffTarget, draft: EventDraft) -> WrittenEvent:
    uid = target.graph_user_id
    assert uid is not None
    try:
        return await run.services.calendar_writer.create(
            run.tenant, uid, draft, copy.transaction_id(run.record.appointment_id)
        )
    except RateLimited:  # Graph may have made it: the copy keeps the generation that names its transactionId
        pending = replace(copy, state=CopyState.PENDING, graph_user_id=target.graph_user_id)
        run.copies[copy.staff_id] = pending.with_sent(draft)
        raise


async def _update(run: _Run, copy: StaffCopy, target: StaffTarget, draft: EventDraft) -> StaffCopy | None:
    """PATCH the copy; None when it must be created anew (gone, or a series Outlook changed).

    Outlook changed it since the connector's last write (a recheck reads it; a plain update learns it from
    the 412 of its If-Match): Outlook wins keeps Outlook's version and reports it (the copy turns
    `conflict` holding Outlook's change key, so the host's next revision is written over it); host wins
    reports it and writes the host's version again."""
    assert copy.event_id is not None and target.graph_user_id is not None
    writer, tenant, uid = run.services.calendar_writer, run.tenant, target.graph_user_id
    event_id = copy.event_id
    policy = tenant.settings.conflict_policy
    if_match = copy.change_key
    if copy.staff_id in run.recheck:
        try:
            current = await writer.read(tenant, uid, event_id)
        except EventMissing:
            return await _gone_in_outlook(run, copy, policy)
        settled = await _rechecked(run, copy, target, current, draft, policy)
        if settled is not _WRITE:
            return settled if isinstance(settled, StaffCopy) else None
        if_match = current.change_key
        copy = _seen(copy, current)
    if draft.recurrence is not None and copy.exceptions:
        await _anew(run, copy)  # the host's exceptions may have changed: write the series anew
        return None
    for _ in range(UPDATE_ATTEMPTS):
        try:
            written = await _patch(run, copy, uid, event_id, draft, if_match)
        except EventMissing:
            return await _gone_in_outlook(run, copy, policy)
        except EventChanged:  # If-Match refused: someone changed it since `if_match`, maybe the connector
            try:
                current = await writer.read(tenant, uid, event_id)
            except EventMissing:
                return await _gone_in_outlook(run, copy, policy)
            if _holds(current, draft):  # its own write, whose answer was lost: nothing to put back
                return await _finish(run, copy, target, draft, current)
            if not _unchanged(copy, current):
                kept = await _changed_in_outlook(run, copy, current, policy)
                if kept is not None:
                    return kept
                if draft.recurrence is not None:
                    await _anew(run, copy)
                    return None
            if_match = current.change_key
            copy = _seen(copy, current)  # reported once: a later refusal compares with this version
            continue
        return await _finish(run, copy, target, draft, written)
    raise RateLimited(5, "the event kept changing while it was written")


async def _patch(  # noqa: PLR0917 (the PATCH's inputs, in order)
    run: _Run, copy: StaffCopy, graph_user_id: str, event_id: str, draft: EventDraft, if_match: str | None
) -> WrittenEvent:
    try:
        return await run.services.calendar_writer.update(run.tenant, graph_user_id, event_id, draft, if_match)
    except RateLimited:  # Graph may have applied it: Outlook holding it later is the connector's own write
        run.copies[copy.staff_id] = replace(copy, state=CopyState.PENDING).with_sent(draft)  # still to write
        raise


_WRITE: Final = object()  # `_rechecked`: go on and write the host's version


async def _rechecked(  # noqa: PLR0917 (one copy's recheck: its inputs, in order)
    run: _Run,
    copy: StaffCopy,
    target: StaffTarget,
    current: WrittenEvent,
    draft: EventDraft,
    policy: ConflictPolicy,
) -> StaffCopy | object | None:
    """A copy a delta read saw changed: the copy to keep, None to write it anew, or `_WRITE`."""
    behind = copy.revision < run.record.revision or copy.state is CopyState.PENDING
    # Occurrences the same read flagged are looked at first: the master holding the connector's own write
    # says nothing of an occurrence someone edited in Outlook meanwhile.
    series_changed = draft.recurrence is not None and await _occurrences_changed(run, copy)
    if behind and _holds(current, draft) and not series_changed:  # its own write, the answer lost
        return await _finish(run, copy, target, draft, current)
    if (_unchanged(copy, current) or _holds(current, draft)) and not series_changed:
        if not behind:  # the connector's echo, or a touch: its status goes on naming the connector's item
            await _remember(run, copy, current, master=draft.recurrence is not None)
            return replace(copy, change_key=current.change_key)
        return _WRITE
    kept = await _changed_in_outlook(run, copy, current, policy)
    if kept is not None:
        return kept
    if draft.recurrence is not None:
        await _anew(run, copy)  # an Outlook exception cannot be undone one by one
        return None
    return _WRITE


def _holds(current: WrittenEvent, draft: EventDraft) -> bool:
    """Outlook holds exactly what the connector sends (compared whatever Exchange did to the body)."""
    return current.shape is not None and current.shape.holds(draft)


def _seen(copy: StaffCopy, current: WrittenEvent) -> StaffCopy:
    """The copy measured against Outlook's version from now on (its change was reported already)."""
    return replace(copy, change_key=current.change_key, written_hash=current.written_hash)


def _unchanged(copy: StaffCopy, current: WrittenEvent) -> bool:
    """Outlook's version still holds what the connector wrote (the same change key, or only a touch), or an
    update the connector sent whose answer was lost."""
    if current.change_key == copy.change_key:
        return True
    if copy.sent_holds(current.shape):
        return True
    return current.written_hash is not None and current.written_hash == copy.written_hash


async def _occurrences_changed(run: _Run, copy: StaffCopy) -> bool:
    """Whether an occurrence the delta read flagged was changed in Outlook (an exception the connector did
    not make, or one it made that carries another change key now). A few are enough to tell."""
    flagged = sorted(run.flagged - {copy.event_id})[:MAX_FLAGGED_READS]
    if not flagged or copy.graph_user_id is None:
        return False
    writer = run.services.calendar_writer
    for item_id in flagged:
        try:
            found = await writer.read(run.tenant, copy.graph_user_id, item_id)
        except EventMissing:  # an occurrence cancelled in Outlook shows in its master's cancelledOccurrences
            continue  # (compared by `_unchanged` and `_holds`); a missing id may be an earlier copy's
        kind = found.event.kind if found.event is not None else None
        if kind is EventKind.EXCEPTION and (
            item_id not in copy.exceptions or found.change_key not in copy.exception_keys
        ):
            return True
    return False


async def _anew(run: _Run, copy: StaffCopy) -> None:
    """Delete the copy so that the caller creates it again (the staff member stays on the appointment)."""
    await _delete(run, copy)
    run.removed.discard(copy.staff_id)


async def _gone_in_outlook(run: _Run, copy: StaffCopy, policy: ConflictPolicy) -> StaffCopy | None:
    if policy is ConflictPolicy.OUTLOOK_WINS and copy.state is not CopyState.CONFLICT:
        _note_outlook_change(run, copy, "deleted", "kept", None)
        await run.services.item_statuses.note(run.tenant.tenant_id, copy.staff_id, [], [copy.event_id or ""])
        return replace(
            copy, state=CopyState.CONFLICT, revision=run.record.revision, error="deleted in Outlook"
        )
    if copy.state is not CopyState.CONFLICT:
        _note_outlook_change(run, copy, "deleted", "recreated", None)
    return None


async def _changed_in_outlook(
    run: _Run, copy: StaffCopy, current: WrittenEvent, policy: ConflictPolicy
) -> StaffCopy | None:
    """Outlook changed a connector event. Outlook wins: keep it (the host's next revision is written over
    it). Host wins: None, and the caller writes the host's version again."""
    if policy is ConflictPolicy.OUTLOOK_WINS:
        _note_outlook_change(run, copy, "updated", "kept", current)
        await _remember(
            run,
            copy,
            current,
            master=run.record.appointment is not None and bool(run.record.appointment.recurrence),
        )
        return replace(
            copy,
            state=CopyState.CONFLICT,
            change_key=current.change_key,
            written_hash=current.written_hash,
            revision=run.record.revision,
            error="changed in Outlook; the tenant's policy keeps Outlook's version",
        )
    _note_outlook_change(run, copy, "updated", "reverted", current)
    return None


def _note_outlook_change(
    run: _Run, copy: StaffCopy, change: str, resolution: str, current: WrittenEvent | None
) -> None:
    data: dict[str, Any] = {
        "appointment_id": run.record.appointment_id,
        "change": change,
        "resolution": resolution,
        "event_id": copy.event_id,
    }
    if current is not None and current.event is not None:
        data["event"] = current.event.details()
    now = run.services.clock.now()
    run.changes.append(
        Change("appointment.changed_in_outlook", run.tenant.tenant_id, data, now, staff_id=copy.staff_id)
    )


async def _finish(
    run: _Run, copy: StaffCopy, target: StaffTarget, draft: EventDraft, written: WrittenEvent
) -> StaffCopy:
    """After the series or single event is written: its exceptions, then its status (for the echo)."""
    assert target.graph_user_id is not None
    exceptions: tuple[str, ...] = ()
    exception_keys: tuple[str, ...] = ()
    recurrence = draft.recurrence
    if recurrence is not None and (recurrence.exdates or recurrence.overrides):
        writer, uid = run.services.calendar_writer, target.graph_user_id
        await _remember(run, copy, written, master=True)  # before its occurrences show up in a delta read
        days = [*recurrence.exdates, *(o.original_date for o in recurrence.overrides)]
        found = await writer.occurrences(run.tenant, uid, written.id, days, draft.time_zone)
        changed: list[WrittenEvent] = []
        for day in recurrence.exdates:
            if day in found:
                await writer.delete(run.tenant, uid, found[day].id)
        for override in recurrence.overrides:
            if override.original_date in found:
                occurrence = found[override.original_date]
                changed.append(
                    await writer.update_occurrence(run.tenant, uid, occurrence.id, draft, override)
                )
        exceptions = tuple(o.id for o in changed) + tuple(
            found[d].id for d in recurrence.exdates if d in found
        )
        exception_keys = tuple(o.change_key for o in changed if o.change_key)
        master = await writer.read(run.tenant, uid, written.id)  # cancelling and changing renew its key
        written = replace(master, join_url=written.join_url or master.join_url)
        for exception in changed:
            await _remember(run, copy, exception, master=False)
    await _remember(run, copy, written, master=recurrence is not None)
    synced = _synced(run, copy, target, written, written.join_url)
    return replace(synced, exceptions=exceptions, exception_keys=exception_keys)


def _synced(
    run: _Run,
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


async def _remember(run: _Run, copy: StaffCopy, written: WrittenEvent, *, master: bool) -> None:
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


async def _link(run: _Run, copy: StaffCopy, target: StaffTarget) -> None:
    """A meeting attendee: Exchange put the invitation into the calendar; find it by iCalUId."""
    appointment = run.record.appointment
    assert appointment is not None and target.graph_user_id is not None
    organiser = next(
        (c for c in run.copies.values() if c.role is CopyRole.ORGANIZER and c.state is CopyState.SYNCED),
        None,
    ) or next((c for c in run.record.copies.values() if c.role is CopyRole.ORGANIZER and c.ical_uid), None)
    if organiser is None or organiser.ical_uid is None:
        run.copies[copy.staff_id] = replace(copy, state=CopyState.ERROR, error="the meeting was not written")
        return
    found = await run.services.calendar_writer.find_by_ical_uid(
        run.tenant, target.graph_user_id, organiser.ical_uid
    )
    if found is None:
        run.copies[copy.staff_id] = replace(
            copy, state=CopyState.PENDING, error="the meeting invitation has not arrived in this calendar yet"
        )
        run.throttled = run.throttled or RateLimited(5, "waiting for the meeting invitation")
        return
    await _remember(run, copy, found, master=appointment.recurrence is not None)
    run.copies[copy.staff_id] = _synced(run, copy, target, found, organiser.join_url)


def _invitees(run: _Run, appointment: Appointment) -> list[Invitee]:
    """The meeting's staff attendees: every staff member but the organiser, by mailbox address."""
    found = [run.targets.get(staff_id) for staff_id in appointment.staff_ids[1:]]
    return [
        Invitee(t.display_name, t.address) for t in found if t is not None and t.address and not t.problem
    ]


# --- saving and reporting -------------------------------------------------------------------------------


async def _save(run: _Run) -> None:
    """Merge this pass's copies into the stored record (a newer PUT may have landed meanwhile), and put the
    pass's outcome on the feed first: a crash in between reports it again on redelivery (at least once),
    never not at all."""
    services = run.services
    record = run.record
    for _ in range(SAVE_ATTEMPTS):
        copies = {k: v for k, v in record.copies.items() if k not in run.removed or k in run.copies}
        copies.update(run.copies)
        updated = replace(record, copies=copies)
        outcome = _outcome(updated, services.clock.now())
        await publish(services, record.tenant_id, [*run.changes, *([outcome] if outcome else [])])
        run.changes = []
        if outcome is not None:
            updated = replace(updated, reported_revision=updated.revision)
        try:
            if updated.appointment is None and not updated.copies:
                await services.appointments.delete(updated)
            else:
                await services.appointments.save(updated)
            return
        except StaleWrite:
            fresh = await _reload(run)
            if fresh is None:
                return
            record = fresh
    raise Conflict("appointment_id", "the appointment kept changing while its copies were written")


async def _reload(run: _Run) -> AppointmentRecord | None:
    return await run.services.appointments.get(run.record.tenant_id, run.record.appointment_id)


def _outcome(record: AppointmentRecord, now: datetime) -> Change | None:
    """`appointment.synced` or `appointment.failed` once the revision settled, once per revision."""
    state = record.state
    if state in (AppointmentState.PENDING, AppointmentState.DELETING):
        return None
    if record.reported_revision >= record.revision:
        return None
    failed = state in (AppointmentState.FAILED, AppointmentState.PARTIAL)
    kind = "appointment.failed" if failed else "appointment.synced"
    data = {"appointment_id": record.appointment_id, "revision": record.revision, **copies_json(record)}
    return Change(kind, record.tenant_id, data, now)


def copies_json(record: AppointmentRecord) -> dict[str, Any]:
    return {
        "state": record.state.value,
        "staff": [
            {
                "staff_id": c.staff_id,
                "role": c.role.value,
                "state": c.state.value,
                "event_id": c.event_id,
                "ical_uid": c.ical_uid,
                "join_url": c.join_url,
                "error": c.error,
            }
            for c in record.copies.values()
        ],
    }


async def _retry_later(services: Services, job: WriteAppointment, error: RateLimited) -> None:
    attempt = job.attempt + 1
    if attempt > MAX_RETRIES:
        log.warning("gave up writing after %d attempts: %s", attempt - 1, error.reason)
        return
    delay = jobs.retry_delay(attempt, error.retry_after)
    await services.jobs.enqueue([replace(job, attempt=attempt, delay_seconds=delay)])
    log.info("throttled; writing again in %d s (attempt %d)", delay, attempt)
