"""The write job: the host's appointments written into every involved staff calendar.

The job (from the `outlook-writes` queue; one at a time per appointment across workers: a lease with a
'run again' flag, as the sync's) plans with `plan_writes` and applies the steps:
- creates carry the copy's `transactionId`, so a retried job, a redelivered message or a crash between
  Graph's answer and the state write finds the event made the first time instead of making a second;
- updates go through `outlook_conflicts.update_copy` (If-Match, rechecks, the conflict policy);
- meeting attendees' copies are found by iCalUId, never written.
Each revision's outcome goes on the feed once: `appointment.synced` or `appointment.failed`, per staff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

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
from shared.domain.teams import TeamsMeeting, TeamsStatus
from shared.domain.tenants import Tenant
from shared.domain.users import MatchStatus
from shared.observability import bound, get_logger
from shared.service import jobs, monitor
from shared.service import teams_meetings as teams
from shared.service.appointment_copies import (
    WritePass,
    WritePassPorts,
    delete_copy,
    finish_write,
    remember_written,
    synced_copy,
)
from shared.service.appointment_takeover import linked_copies, settle_adoptions
from shared.service.context import (
    UsesAppointments,
    UsesJobs,
    UsesLeases,
    UsesMessages,
    UsesTenants,
    UsesUsers,
)
from shared.service.errors import Conflict, EventRejected, MailboxUnavailable, RateLimited, TenantAccessError
from shared.service.jobs import CatchUpWrites, WriteAppointment
from shared.service.leasing import check_back, run_leased
from shared.service.monitor import Direction, MessageStatus, PushKind
from shared.service.outlook_conflicts import update_copy
from shared.service.ports import JobQueue
from shared.service.ports.tenancy import UserRepository
from shared.service.publishing import publish
from shared.service.records import Change, WrittenEvent
from shared.service.retries import THROTTLED, starting_from, update_optimistically
from shared.service.tenants import TenantEventPorts, mark_consent_revoked

log = get_logger("appointments")


class CatchUpPorts(UsesTenants, UsesAppointments, UsesJobs, Protocol):
    """The catch-up after a switch: the tenant, its appointments, the write queue."""


class WritePorts(
    WritePassPorts,
    TenantEventPorts,
    teams.TeamsWritePorts,
    UsesUsers,
    UsesJobs,
    UsesLeases,
    UsesMessages,
    Protocol,
):
    """The write job, under its lease: its passes, the staff it targets, the Teams meeting, a retry when
    throttled."""


LEASE_TTL: Final = timedelta(minutes=2)
CALENDAR_CONCURRENCY: Final = 8  # staff calendars written at once (each is its own mailbox)
SAVE_ATTEMPTS: Final = 5
CREATE_SENT: Final = "create"  # a copy's `sent` before its first create: no draft's digest, only the mark

SWITCHED_OFF: Final = "calendar_to_outlook is switched off for this staff member; the copy is left as it was"
_PROBLEMS: Final = {
    MatchStatus.UNMATCHED: "the staff member matches no user of the organisation",
    MatchStatus.FORBIDDEN: "an access policy keeps the app out of the staff member's mailbox",
    MatchStatus.NO_MAILBOX: "the staff member has no Exchange Online mailbox",
    MatchStatus.DISABLED: "the staff member is disabled",
    MatchStatus.PENDING: "the staff member is not matched yet",
}


async def run_write_job(services: WritePorts, job: WriteAppointment) -> None:
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
        if not await run_leased(services.leases, services.clock, key, LEASE_TTL, write_pass):
            await check_back(services.jobs, job, LEASE_TTL)


async def run_catch_up(services: CatchUpPorts, job: CatchUpWrites) -> None:
    """A staff member's `calendar_to_outlook` or `video` switch changed: a write of every appointment naming
    them. Each write job brings every copy to the current revision by the switches as they are then, and
    finds or updates the events it made before (transactionId, the stored copy), so none is made twice."""
    tenant = await services.tenants.get(job.tenant_id)
    if tenant is None or not tenant.state.connected:
        return
    with bound(tenant=job.tenant_id, user=job.staff_id):
        named = await services.appointments.naming(job.tenant_id, job.staff_id)
        await services.jobs.enqueue([jobs.write_appointment(job.tenant_id, a, "switched") for a in named])
        log.info("switch changed: %d appointments queued for writing", len(named))


async def _write_once(services: WritePorts, job: WriteAppointment, recheck: Sequence[str]) -> None:
    tenant = await services.tenants.get(job.tenant_id)
    if tenant is None or not tenant.state.connected:
        return
    appointment_id = job.appointment_id
    mode = tenant.settings.multi_staff_mode
    for _ in range(SAVE_ATTEMPTS):
        record = await services.appointments.get(tenant.tenant_id, appointment_id)
        if record is None:
            return
        wanted = set(record.copies) | set(record.appointment.staff_ids if record.appointment else ())
        targets = {
            t.staff_id: t for t in await asyncio.gather(*(_target(services.users, tenant, s) for s in wanted))
        }
        planned = teams.prepared(record)
        linked = await linked_copies(services.item_statuses, tenant, planned, targets)
        if linked:  # events the host made before (EWS-era, linked at a sync): updated, never made twice
            planned = replace(planned, copies={**planned.copies, **linked})
        plan = plan_writes(planned, targets, mode, recheck=recheck)
        noted = await _note_creates(services, record, plan.writes)
        if noted is not None:
            record = noted
            break
        # Revised or deleted between the read and the note: the plan is the old revision's (a create it
        # made unnoted, its worker killed after Graph's answer, would stay in a calendar nothing names).
    else:
        raise Conflict("appointment_id", "the appointment kept changing while its copies were written")
    flagged = frozenset(job.events)
    started = services.clock.now()
    run = WritePass(services, tenant, record, frozenset(recheck), flagged, targets, {}, set(), [])
    run.meeting = record.meeting
    try:
        await _in_parallel(run, plan.deletes)
        await teams.settle_standalone(services, run)
        holder = teams.holder_of(run, mode)
        run.holder = holder
        await _in_parallel(run, [s for s in plan.writes if s.copy.staff_id == holder])
        teams.after_holder(run, holder)
        refresh = teams.stale_joins(run, mode, holder)
        if refresh:
            plan = plan_writes(planned, targets, mode, recheck=recheck, refresh=refresh)
        await _in_parallel(run, [s for s in plan.writes if s.copy.staff_id != holder])
        await _in_parallel(run, plan.links)
        teams.mark_errors(run, targets)
    except TenantAccessError as error:
        await mark_consent_revoked(services, tenant.tenant_id, error.reason)
        return
    await settle_adoptions(services, tenant.tenant_id, appointment_id, run.copies)
    await _save(run)
    if run.throttled is not None:
        await _retry_later(services.jobs, job, run.throttled)
    await monitor.record(services.messages, _pushes(run, job, started))


async def _note_creates(
    services: WritePorts, record: AppointmentRecord, steps: Sequence[WriteStep]
) -> AppointmentRecord | None:
    """Before Graph makes an event the record has no copy for, the record says a create goes out to that
    mailbox (a pending copy, `sent`): a job that dies after Graph's answer, or whose save fails (storage
    restarting), leaves a copy the next pass makes again with the same transactionId (Graph answers the
    event made the first time) or, the staff member gone or the appointment deleted, finds by the
    connector's property and deletes (`delete_copy`); never an event nothing points to. One save per pass
    that makes new copies. None when the appointment was revised or deleted meanwhile: plan again."""
    fresh = {
        step.copy.staff_id: replace(
            step.copy,
            state=CopyState.PENDING,
            graph_user_id=step.target.graph_user_id,
            sent=step.copy.sent or CREATE_SENT,
        )
        for step in steps
        if step.kind is StepKind.CREATE
        and step.target is not None
        and step.target.graph_user_id is not None
        and step.copy.event_id is None
        and not step.copy.sent
    }
    if not fresh:
        return record

    def noted(current: AppointmentRecord | None) -> AppointmentRecord | None:
        if current is None or current.revision != record.revision:
            return None  # deleted or revised meanwhile: that revision's job notes its own
        unknown = {
            staff_id: copy
            for staff_id, copy in fresh.items()
            if (held := current.copies.get(staff_id)) is None or (held.event_id is None and not held.sent)
        }
        return replace(current, copies={**current.copies, **unknown}) if unknown else None

    done = await update_optimistically(
        starting_from(record, lambda: services.appointments.get(record.tenant_id, record.appointment_id)),
        noted,
        services.appointments.save,
        attempts=SAVE_ATTEMPTS,
        contended=Conflict("appointment_id", "the appointment kept changing while its copies were written"),
    )
    latest = done.latest
    return latest if latest is not None and latest.revision == record.revision else None


def _pushes(run: WritePass, job: WriteAppointment, started: datetime) -> list[monitor.MonitoredMessage]:
    """The pass in the message monitor: a `push` per staff member whose copy it wrote, removed or
    failed, keyed by the host's appointment id, with the Graph ids."""
    now = run.services.clock.now()
    revision = run.record.revision
    pushes = []
    for staff_id in sorted(set(run.copies) | run.removed):
        copy = run.copies.get(staff_id)
        if copy is None:
            status, state, event_id, error = MessageStatus.OK, "removed", None, None
        else:
            state, event_id, error = copy.state.value, copy.event_id, copy.error
            if copy.state is CopyState.ERROR:
                status = MessageStatus.FAILED
            elif run.throttled is not None and copy.state is CopyState.PENDING:
                gave_up = THROTTLED.exhausted(job.attempt + 1)  # `_retry_later` queued no retry
                status = MessageStatus.FAILED if gave_up else MessageStatus.RETRYING
            else:
                status = MessageStatus.OK
        pushes.append(
            monitor.message(
                run.tenant.tenant_id,
                Direction.PUSH,
                PushKind.APPOINTMENT,
                status,
                run.record.appointment_id,
                started_at=started,
                at=now,
                staff_id=staff_id,
                attempts=job.attempt + 1,
                revision=revision,
                reason=job.reason,
                state=state,
                graph_user_id=copy.graph_user_id if copy else None,
                event_id=event_id,
                error=error,
            )
        )
    return pushes


async def _in_parallel(run: WritePass, steps: Sequence[WriteStep]) -> None:
    gate = asyncio.Semaphore(CALENDAR_CONCURRENCY)

    async def one(step: WriteStep) -> None:
        async with gate:
            try:
                await _apply(run, step)
            except RateLimited as error:
                run.throttled = error

    await asyncio.gather(*(one(step) for step in steps))


async def _target(users: UserRepository, tenant: Tenant, staff_id: str) -> StaffTarget:
    user = await users.get(tenant.tenant_id, staff_id)
    if user is None:
        return StaffTarget(staff_id, problem="no such staff member")
    if not user.staff.switches.calendar_to_outlook:
        return StaffTarget(staff_id, user.graph_user_id, switched_off=SWITCHED_OFF)
    if user.match is not MatchStatus.MATCHED or user.graph_user_id is None:
        reason = _PROBLEMS.get(user.match, f"the staff member is {user.match.value}")
        return StaffTarget(
            staff_id, problem=f"{reason}{': ' + user.match_reason if user.match_reason else ''}"
        )
    address = user.staff.email or user.staff.upn
    teams_problem = (
        user.teams_reason or "Teams refuses the app" if user.teams is TeamsStatus.FORBIDDEN else None
    )
    return StaffTarget(
        staff_id,
        user.graph_user_id,
        address,
        user.staff.display_name,
        teams_problem=teams_problem,
        video=user.staff.switches.video,
    )


async def _apply(run: WritePass, step: WriteStep) -> None:
    copy = step.copy
    failed = run.copies.get(copy.staff_id)
    if step.kind is not StepKind.DELETE and failed is not None and failed.deleting:
        return  # its old event may still be there: made anew once the delete went through
    with bound(user=copy.staff_id):
        try:
            if step.kind is StepKind.DELETE:
                await delete_copy(run, copy)
            elif step.kind is StepKind.FAIL:
                run.copies[copy.staff_id] = replace(copy, state=CopyState.ERROR, error=step.reason)
            elif step.kind is StepKind.SKIP:
                run.copies[copy.staff_id] = replace(copy, state=CopyState.DISABLED, error=step.reason)
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


async def _write(run: WritePass, kind: StepKind, copy: StaffCopy, target: StaffTarget) -> None:
    appointment = run.record.appointment
    assert appointment is not None and target.graph_user_id is not None
    online, meeting = teams.draft_terms(run, copy.staff_id, run.holder)
    draft = draft_for(
        appointment, copy.role, _invitees(run, appointment), online_meeting=online, meeting=meeting
    )
    try:
        await _written(run, kind, copy, target, draft)
    finally:
        done = run.copies.get(copy.staff_id)
        if done is not None and done.state is CopyState.SYNCED and not online:  # its body holds the join URL
            run.copies[copy.staff_id] = replace(done, join_url=meeting.join_url if meeting else None)


async def _written(
    run: WritePass, kind: StepKind, copy: StaffCopy, target: StaffTarget, draft: EventDraft
) -> None:
    if kind is StepKind.UPDATE:
        assert copy.event_id is not None
        updated = await update_copy(run, copy, target, draft)
        if updated is not None:
            run.copies[copy.staff_id] = updated
            return
        copy = replace(copy, event_id=None, exceptions=(), override_days=(), generation=copy.generation + 1)
    written = await _create(run, copy, target, draft)
    if written.shape is not None and not written.shape.holds(draft, copy.restored):
        # A retried create answers the event made the first time, as it is now (an earlier revision, whose
        # answer was lost): the copy is that event, brought to this revision.
        made = replace(
            copy,
            graph_user_id=target.graph_user_id,
            event_id=written.id,
            change_key=written.change_key,
            written_hash=written.written_hash,
        )
        updated = await update_copy(run, made, target, draft)
        if updated is None:  # gone meanwhile, or to be written anew: the next pass makes it
            run.copies[copy.staff_id] = replace(made, state=CopyState.PENDING, deleting=True)
            raise RateLimited(5, "the event made by a retried create must be written anew")
        run.copies[copy.staff_id] = updated
        return
    try:
        run.copies[copy.staff_id] = await finish_write(run, copy, target, draft, written)
    except RateLimited:  # made, its exceptions not yet: the next pass updates this event (never a second)
        made = synced_copy(run, copy, target, written, written.join_url)
        run.copies[copy.staff_id] = replace(made, state=CopyState.PENDING, revision=copy.revision)
        raise


async def _create(run: WritePass, copy: StaffCopy, target: StaffTarget, draft: EventDraft) -> WrittenEvent:
    uid = target.graph_user_id
    assert uid is not None
    try:
        made = await run.services.calendar_writer.create(
            run.tenant, uid, draft, copy.transaction_id(run.record.appointment_id)
        )
    except RateLimited:  # Graph may have made it: the copy keeps the generation that names its transactionId
        pending = replace(copy, state=CopyState.PENDING, graph_user_id=target.graph_user_id)
        run.copies[copy.staff_id] = pending.with_sent(draft)
        raise
    if copy.role is CopyRole.ORGANIZER and made.ical_uid:  # before Exchange delivers its invitations
        await run.services.appointments.note_meeting(
            run.tenant.tenant_id, made.ical_uid, run.record.appointment_id
        )
    return made


async def _link(run: WritePass, copy: StaffCopy, target: StaffTarget) -> None:
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
    await remember_written(run, copy, found, master=appointment.recurrence is not None)
    run.copies[copy.staff_id] = synced_copy(run, copy, target, found, organiser.join_url)


def _invitees(run: WritePass, appointment: Appointment) -> list[Invitee]:
    """The meeting's staff attendees: every staff member but the organiser, by mailbox address."""
    found = [run.targets.get(staff_id) for staff_id in appointment.staff_ids[1:]]
    return [
        Invitee(t.display_name, t.address) for t in found if t is not None and t.address and not t.problem
    ]


# --- saving and reporting -------------------------------------------------------------------------------


async def _save(run: WritePass) -> None:
    """Merge this pass's copies into the stored record (a newer PUT may have landed meanwhile), and put the
    pass's outcome on the feed first: a crash in between reports it again on redelivery (at least once),
    never not at all."""
    services = run.services

    def merged(record: AppointmentRecord | None) -> AppointmentRecord | None:
        if record is None:  # deleted meanwhile
            return None
        copies = {k: v for k, v in record.copies.items() if k not in run.removed or k in run.copies}
        copies.update(run.copies)
        return replace(record, copies=copies, meeting=run.meeting)

    async def reported(updated: AppointmentRecord) -> AppointmentRecord:
        outcome = _outcome(updated, services.clock.now())
        await publish(services, updated.tenant_id, [*run.changes, *([outcome] if outcome else [])])
        run.changes = []
        if outcome is not None:
            updated = replace(updated, reported_revision=updated.revision, reported_state=updated.state)
        if updated.appointment is None and not updated.copies:
            await services.appointments.delete(updated)
            return updated
        return await services.appointments.save(updated)

    await update_optimistically(
        starting_from(run.record, lambda: _reload(run)),
        merged,
        reported,
        attempts=SAVE_ATTEMPTS,
        contended=Conflict("appointment_id", "the appointment kept changing while its copies were written"),
    )


async def _reload(run: WritePass) -> AppointmentRecord | None:
    return await run.services.appointments.get(run.record.tenant_id, run.record.appointment_id)


def _outcome(record: AppointmentRecord, now: datetime) -> Change | None:
    """`appointment.synced` or `appointment.failed` once the revision settled, once per outcome: a failed
    revision that a retry, the nightly run or a resync then writes is told `appointment.synced` too."""
    if not record.unreported:
        return None
    state = record.state
    failed = state in (AppointmentState.FAILED, AppointmentState.PARTIAL)
    kind = "appointment.failed" if failed else "appointment.synced"
    data = {"appointment_id": record.appointment_id, "revision": record.revision, **copies_json(record)}
    return Change(kind, record.tenant_id, data, now)


def copies_json(record: AppointmentRecord) -> dict[str, Any]:
    return {
        "state": record.state.value,
        "meeting": meeting_json(record.meeting),
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


async def _retry_later(queue: JobQueue, job: WriteAppointment, error: RateLimited) -> None:
    attempt = job.attempt + 1
    if THROTTLED.exhausted(attempt):
        log.warning("gave up writing after %d attempts: %s", attempt - 1, error.reason)
        return
    delay = THROTTLED.delay_after(attempt, error.retry_after)
    await queue.enqueue([replace(job, attempt=attempt, delay_seconds=delay)])
    log.info("throttled; writing again in %d s (attempt %d)", delay, attempt)


def meeting_json(meeting: TeamsMeeting | None) -> dict[str, Any] | None:
    """The appointment's Teams meeting as the host sees it (GET and the outcome on the feed)."""
    if meeting is None:
        return None
    return {
        "method": meeting.method.value,
        "join_url": meeting.join_url,
        "conference_id": meeting.conference_id,
        "toll_number": meeting.toll_number,
        "meeting_id": meeting.meeting_id,
    }
