"""A video appointment's one Teams meeting, in the write job (`appointment_writes.py`).

Every pass, before the copies are written: a standalone meeting (`access_policy`, `service_account`) is
made with `createOrGet` (the appointment id as externalId, so a retried pass answers the same meeting),
moved when the appointment's times changed (PATCH: the join URL stays), or deleted when the appointment
was deleted or its video turned off. With the `event` method the first writable staff member's event is
written first, as the meeting, and its join details read from Graph's answer. The other copies then carry
those join details in their body (and location, when the host gave none); a copy whose join details
changed is written again. A meeting keeps the method it was made with: a later change of the tenant's
method leaves it (and its join URL) as it was.

A staff member Teams refuses (no access policy, no licence) still gets their copy, with the meeting's join
details if the meeting exists, and the reason as the copy's error (on the feed with the outcome).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Final, Protocol

from shared.domain.appointments import (
    AppointmentRecord,
    CopyRole,
    CopyState,
    StaffTarget,
    desired_roles,
)
from shared.domain.teams import TeamsMeeting
from shared.domain.tenants import MultiStaffMode, TeamsMethod, Tenant
from shared.domain.users import MatchStatus, StaffMember, match_staff
from shared.observability import get_logger
from shared.service.appointment_copies import WritePass
from shared.service.context import UsesDirectory, UsesMeetings
from shared.service.errors import MailboxUnavailable, RateLimited, TeamsRefused
from shared.service.ports.graph import DirectoryGateway

log = get_logger("teams")

TEAMS_ERROR: Final = "Teams: "  # the prefix of a copy's error that concerns its meeting, not its event
ORGANISER_ATTEMPTS: Final = 3  # staff tried as a standalone meeting's organiser before giving up


class TeamsWritePorts(UsesMeetings, UsesDirectory, Protocol):
    """The write job's Teams steps: standalone meetings, and the organiser account's directory lookup."""


def prepared(record: AppointmentRecord) -> AppointmentRecord:
    """The record to plan from: an event that is a Teams meeting cannot stop being one (contract §3.8), so
    when the video is turned off its copy is deleted and written anew."""
    meeting, appointment = record.meeting, record.appointment
    if meeting is None or meeting.standalone or appointment is None or appointment.video:
        return record
    holder = record.copies.get(meeting.holder_staff_id or "")
    if holder is None or holder.event_id is None:
        return record
    return replace(record, copies={**record.copies, holder.staff_id: replace(holder, deleting=True)})


def method_of(run: WritePass) -> TeamsMethod | None:
    """How this appointment's meeting is (or is to be) made; None when it wants none."""
    appointment = run.record.appointment
    if appointment is None or not appointment.video:
        return None
    if run.meeting is not None:
        return run.meeting.method
    return run.tenant.settings.teams_method


def holder_of(run: WritePass, mode: MultiStaffMode) -> str | None:
    """The `event` method: the staff member whose event is the meeting (the one it already is, while they
    stay on the appointment and writable; else the first writable staff member)."""
    if method_of(run) is not TeamsMethod.EVENT:
        return None
    roles = desired_roles(run.record.appointment, mode)
    writable = [
        s for s, role in roles.items() if role is not CopyRole.ATTENDEE and _usable(run.targets.get(s))
    ]
    current = run.meeting.holder_staff_id if run.meeting is not None else None
    if current in writable:
        return current
    return writable[0] if writable else None


def _usable(target: StaffTarget | None) -> bool:
    """May hold or organise the meeting: writable, and their video switch on."""
    return target is not None and target.usable and target.video


def _video_off(run: WritePass, staff_id: str) -> bool:
    target = run.targets.get(staff_id)
    return target is not None and not target.video


async def settle_standalone(services: TeamsWritePorts, run: WritePass) -> None:
    """The standalone meeting made, moved or ended before the copies are written."""
    appointment, meeting = run.record.appointment, run.meeting
    video = appointment is not None and appointment.video
    try:
        if meeting is not None and meeting.standalone:
            if not video:
                await _end(services, run.tenant, meeting)
                run.meeting = None
            elif appointment is not None and (meeting.start, meeting.end) != (
                appointment.start,
                appointment.end,
            ):
                assert meeting.organizer_user_id is not None and meeting.meeting_id is not None
                await services.meetings.move(
                    run.tenant,
                    meeting.organizer_user_id,
                    meeting.meeting_id,
                    appointment.start,
                    appointment.end,
                )
                run.meeting = replace(meeting, start=appointment.start, end=appointment.end)
            return
        if meeting is not None and not video:
            run.meeting = None  # the event's meeting ends with the event (written anew without it)
            return
        if meeting is None and video and run.tenant.settings.teams_method is not TeamsMethod.EVENT:
            await _make(services, run)
    except RateLimited as error:
        run.throttled = run.throttled or error
        run.meeting_problem = run.meeting_problem or f"the meeting is not made yet ({error.reason})"


async def _end(services: TeamsWritePorts, tenant: Tenant, meeting: TeamsMeeting) -> None:
    assert meeting.organizer_user_id is not None and meeting.meeting_id is not None
    try:
        await services.meetings.delete(tenant, meeting.organizer_user_id, meeting.meeting_id)
    except (TeamsRefused, MailboxUnavailable) as error:  # it stays as it was; its join URL keeps working
        reason = error.reason
        log.warning("the Teams meeting %s could not be deleted: %s", meeting.meeting_id, reason)


async def _make(services: TeamsWritePorts, run: WritePass) -> None:
    appointment = run.record.appointment
    assert appointment is not None
    method = run.tenant.settings.teams_method
    if method is TeamsMethod.SERVICE_ACCOUNT:
        organiser = await organiser_id(services.directory, run.tenant)
        if organiser is None:
            run.meeting_problem = organiser_problem(run.tenant)
            return
        candidates: list[tuple[str | None, str | None]] = [(None, organiser)]
    else:
        staff = [s for s in dict.fromkeys(appointment.staff_ids) if _usable(run.targets.get(s))]
        staff.sort(key=lambda s: run.targets[s].teams_problem is not None)  # those Teams accepted first
        candidates = [(s, run.targets[s].graph_user_id) for s in staff[:ORGANISER_ATTEMPTS]]
    problems: list[str] = []
    for staff_id, user_id in candidates:
        assert user_id is not None
        try:
            made = await services.meetings.create_or_get(
                run.tenant,
                user_id,
                external_id=appointment.appointment_id,
                subject=appointment.subject,
                start=appointment.start,
                end=appointment.end,
            )
        except (TeamsRefused, MailboxUnavailable) as refused:
            problems.append(refused.reason)
            if staff_id is not None:
                run.teams_errors[staff_id] = refused.reason
            continue
        run.meeting = TeamsMeeting.made(
            method, made, organizer=user_id, times=(appointment.start, appointment.end)
        )
        return
    if method is TeamsMethod.SERVICE_ACCOUNT:
        run.meeting_problem = (
            f"the organiser account {run.tenant.settings.teams_organizer} is refused: {problems[0]}"
        )
    else:
        run.meeting_problem = "no staff member of the appointment may organise Teams meetings" + (
            f": {problems[0]}" if problems else ""
        )


async def organiser_id(directory: DirectoryGateway, tenant: Tenant) -> str | None:
    """The object id of the tenant's `teams_organizer` (a UPN or mailbox), None when it is no mailbox
    user of the tenant."""
    name = tenant.settings.teams_organizer
    if not name:
        return None
    account = StaffMember("teams-organizer", name, name, "")
    match = match_staff(account, await directory.find_candidates(tenant, account))
    return match.user.id if match.status is MatchStatus.MATCHED and match.user is not None else None


def organiser_problem(tenant: Tenant) -> str:
    name = tenant.settings.teams_organizer
    if not name:
        return "the tenant's Teams method is service_account and no teams_organizer is set"
    return f"the Teams organiser {name} is not a user of the organisation"


def after_holder(run: WritePass, holder: str | None) -> None:
    """The `event` method, once the holder's event was written: the meeting is its `onlineMeeting`."""
    if holder is None:
        if method_of(run) is TeamsMethod.EVENT:
            run.meeting, run.meeting_problem = None, "no staff calendar could hold the meeting"
        return
    copy = run.copies.get(holder) or run.record.copies.get(holder)
    if copy is None or copy.join_url is None or copy.state is CopyState.ERROR:
        run.meeting = None
        run.meeting_problem = "the meeting's event was not written" + (
            f": {copy.error}" if copy and copy.error else ""
        )
        return
    known = run.meeting
    if known is not None and known.join_url == copy.join_url and known.holder_staff_id == holder:
        return
    answer = run.answers.get(holder)
    run.meeting = TeamsMeeting(
        TeamsMethod.EVENT,
        copy.join_url,
        conference_id=answer.conference_id if answer is not None else None,
        toll_number=answer.toll_number if answer is not None else None,
        holder_staff_id=holder,
    )


def draft_terms(run: WritePass, staff_id: str, holder: str | None) -> tuple[bool, TeamsMeeting | None]:
    """What one copy's draft says of Teams: whether its event is the meeting, and whose join details its
    body carries."""
    if method_of(run) is None or _video_off(run, staff_id):
        return False, None
    if staff_id == holder:
        return True, None
    return False, run.meeting


def stale_joins(run: WritePass, mode: MultiStaffMode, holder: str | None) -> list[str]:
    """Staff whose written copy carries other join details than the meeting's (made, replaced or ended)."""
    join = run.meeting.join_url if run.meeting is not None else None
    roles = desired_roles(run.record.appointment, mode)
    stale = []
    for staff_id, role in roles.items():
        copy = run.record.copies.get(staff_id)
        if staff_id == holder or role is CopyRole.ATTENDEE or copy is None or copy.event_id is None:
            continue
        wanted = None if _video_off(run, staff_id) else join
        if copy.join_url != wanted and staff_id not in run.copies:
            stale.append(staff_id)
    return stale


def mark_errors(run: WritePass, targets: Mapping[str, StaffTarget]) -> None:
    """Every written copy of a video appointment says why Teams refused its staff member, if it did (and a
    copy's earlier Teams error goes once it no longer holds)."""
    appointment = run.record.appointment
    if appointment is None:
        return
    method = method_of(run)
    for staff_id in dict.fromkeys(appointment.staff_ids):
        copy = run.copies.get(staff_id) or run.record.copies.get(staff_id)
        if copy is None or copy.state in (CopyState.ERROR, CopyState.DISABLED):
            continue
        wanted = None
        if method is not None and not _video_off(run, staff_id):
            target = targets.get(staff_id)
            reason = run.teams_errors.get(staff_id)
            if reason is None and method is TeamsMethod.ACCESS_POLICY and target is not None:
                reason = target.teams_problem
            if reason is None and run.meeting is None:
                reason = run.meeting_problem
            wanted = f"{TEAMS_ERROR}{reason}" if reason else None
        teams_error = copy.error if copy.error and copy.error.startswith(TEAMS_ERROR) else None
        if copy.error is not None and teams_error is None:
            continue  # an error of the copy itself says more
        if wanted != teams_error:
            run.copies[staff_id] = replace(copy, error=wanted)
