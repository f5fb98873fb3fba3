"""Taking over: a host appointment that already has an event in a staff calendar is written by updating
that event, never by creating a second one beside it.

An appointment's event is found in two ways:
- **linked**: the mailbox's item statuses link an Outlook item to the appointment (its EWS-era id through
  `translateExchangeIds`, the connector's extended property, or its iCalUId; found at migration and at
  every sync, `sync.py`). The write job's first write to that calendar makes the linked event the copy
  (`linked_copies`): its plan is then an update, not a create.
- **adopted**: the host's `PUT` names an event made in Outlook (`outlook: {staff_id, event_id}`):
  `adopted_copy` checks it (it exists in that staff member's calendar, is not an occurrence, is not a
  meeting someone else organises, and is not the host's under another appointment id), `claim_adoption`
  takes an insert-only claim on the event for the appointment (a lease `{tenant}/{staff}/adopt/{event}`
  owned by the appointment id), so of two PUTs adopting one event under two ids one wins and the other is
  refused; and the PUT stores it as the staff member's copy (`adopting`). The claim lasts as long as the
  adoption is pending: each write pass over a copy still adopting renews it for `ADOPTION_CLAIM` (longer
  than a pending write waits for its next pass), and it ends when the adoption settles
  (`settle_adoptions`: the write recorded the event as the connector's, which the checks see from then
  on) or the copy goes (`delete_copy`); a PUT that fails after claiming gives it back.
Either way the first write records the event as the connector's (`remember_written`), so from then on an
Outlook change of it reaches the host as `appointment.changed_in_outlook` and the host's PUTs update it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Final, Protocol

from shared.domain.appointments import (
    AppointmentRecord,
    CopyRole,
    CopyState,
    StaffCopy,
    StaffTarget,
    appointment_of_transaction,
    desired_roles,
)
from shared.domain.planner import ItemStatus
from shared.domain.tenants import Tenant
from shared.domain.users import MatchStatus
from shared.observability import get_logger
from shared.service.context import UsesCalendarWriter, UsesClock, UsesItemStatuses, UsesLeases, UsesUsers
from shared.service.errors import (
    Conflict,
    DependencyUnavailable,
    EventMissing,
    EventRejected,
    InvalidInput,
    MailboxUnavailable,
    RateLimited,
)
from shared.service.ports.sync_storage import ItemStatusRepository
from shared.service.records import LeaseOutcome

log = get_logger("appointments")

# How long an adoption's claim holds the event past its last renewal: longer than a pending write waits
# for its next pass (throttling's back-off is at most 15 minutes a retry; the renewal timer's stalled-writes
# sweep queues an unfinished write again every 6 hours), so the claim outlives no settled adoption by more
# than this and lapses only when nothing works on the write any more (its appointment failed for good).
ADOPTION_CLAIM: Final = timedelta(days=1)
RELEASES: Final = 3  # a release that finds another's refused claim flagged ('again') lets go once more


@dataclass(frozen=True, slots=True)
class Adoption:
    """The host's `outlook` member of a PUT: the staff member's event the appointment takes over."""

    staff_id: str
    event_id: str


class AdoptionPorts(UsesUsers, UsesCalendarWriter, UsesItemStatuses, UsesLeases, UsesClock, Protocol):
    """An adoption's checks: the staff member, their calendar, the links in its item statuses; its claim."""


def linked_event(statuses: Mapping[str, ItemStatus], appointment_id: str) -> ItemStatus | None:
    """The item a mailbox's statuses link to the appointment (a series by its master), if any. Of several
    (the host's old sync wrote it twice), the single event or series master first, then the lowest id."""
    linked = [s for s in statuses.values() if s.appointment_id == appointment_id]
    if not linked:
        return None
    return min(linked, key=lambda s: (s.series_master_id is not None, s.series_master_id or s.graph_id))


async def linked_copies(
    statuses: ItemStatusRepository,
    tenant: Tenant,
    record: AppointmentRecord,
    targets: Mapping[str, StaffTarget],
) -> dict[str, StaffCopy]:
    """The copies to take over: for each staff member the connector has not written to yet (no copy, or
    one whose create was never sent), the event their mailbox links to the appointment, as a copy holding
    no revision (so the plan updates it). A meeting's attendees are left out: Exchange delivers theirs."""
    roles = desired_roles(record.appointment, tenant.settings.multi_staff_mode)
    wanted = [
        staff_id
        for staff_id, role in roles.items()
        if role is not CopyRole.ATTENDEE
        and _unwritten(record.copies.get(staff_id), role)
        and (target := targets.get(staff_id)) is not None
        and target.usable
    ]
    loaded = await asyncio.gather(*(statuses.load(tenant.tenant_id, s) for s in wanted))
    found: dict[str, StaffCopy] = {}
    for staff_id, mailbox in zip(wanted, loaded, strict=True):
        linked = linked_event(mailbox, record.appointment_id)
        if linked is None:
            continue
        current = record.copies.get(staff_id)
        found[staff_id] = StaffCopy(
            staff_id,
            roles[staff_id],
            graph_user_id=targets[staff_id].graph_user_id,
            event_id=linked.series_master_id or linked.graph_id,
            ical_uid=None if linked.series_master_id else linked.ical_uid,
            generation=current.generation if current is not None else 0,
        )
    return found


def _unwritten(copy: StaffCopy | None, role: CopyRole) -> bool:
    return copy is None or (copy.event_id is None and not copy.sent and copy.role is role)


async def adopted_copy(  # noqa: PLR0917 (an adoption's inputs, in order)
    services: AdoptionPorts,
    tenant: Tenant,
    appointment_id: str,
    record: AppointmentRecord | None,
    adoption: Adoption,
    role: CopyRole,
) -> StaffCopy:
    """The copy an adoption makes, once its event is checked: it is in the staff member's calendar, it is a
    single event or a series master, and no other appointment holds it. Each refusal names the member."""
    if role is CopyRole.ATTENDEE:
        raise InvalidInput(
            "outlook.staff_id",
            "in meeting mode the adopted event must be the organiser's: name the first of staff_ids",
            status=422,
        )
    user = await services.users.get(tenant.tenant_id, adoption.staff_id)
    if user is None or user.match is not MatchStatus.MATCHED or user.graph_user_id is None:
        state = "unknown" if user is None else user.match.value
        raise Conflict("outlook.staff_id", f"the staff member is {state}: their calendar cannot be read")
    held = record.copies.get(adoption.staff_id) if record is not None else None
    if held is not None and held.event_id not in (None, adoption.event_id):
        raise Conflict(
            "outlook.event_id",
            f"the appointment already has the event {held.event_id} in this staff member's calendar",
        )
    try:
        event = await services.calendar_writer.read(tenant, user.graph_user_id, adoption.event_id)
    except (EventMissing, EventRejected):
        raise InvalidInput(
            "outlook.event_id",
            f"no event with this id in the calendar of staff member {adoption.staff_id}",
            status=422,
        ) from None
    except MailboxUnavailable as error:
        raise Conflict(
            "outlook.staff_id", f"the staff member's calendar cannot be read: {error.reason}"
        ) from None
    except RateLimited as error:
        raise DependencyUnavailable("Microsoft Graph", error.reason) from None
    if event.event is not None and event.event.series_master_id:
        raise InvalidInput(
            "outlook.event_id",
            f"is an occurrence of a series: adopt the series by its id {event.event.series_master_id}",
            status=422,
        )
    owner = appointment_of_transaction(event.event.transaction_id if event.event else None)
    if owner is None:
        statuses = await services.item_statuses.load(tenant.tenant_id, adoption.staff_id)
        owner = _owner(statuses, event.id)
    if owner is not None and owner != appointment_id:
        raise Conflict("outlook.event_id", f"the event is already the host's appointment {owner}")
    if event.event is not None and event.event.is_organizer is False:
        organiser = event.event.organizer.address if event.event.organizer else "someone else"
        raise Conflict(
            "outlook.event_id",
            f"is a meeting {organiser} organises: only the organiser's event can be adopted (the connector's "
            "writes to an attendee's copy would not reach the meeting)",
        )
    return StaffCopy(
        adoption.staff_id,
        role,
        graph_user_id=user.graph_user_id,
        event_id=event.id,
        ical_uid=event.ical_uid,
        generation=held.generation if held is not None else 0,
        adopting=held.adopting if held is not None and held.event_id == event.id else True,
    )


def claim_key(tenant_id: str, staff_id: str, event_id: str) -> str:
    return f"{tenant_id}/{staff_id}/adopt/{event_id}"


class ClaimPorts(UsesLeases, UsesClock, Protocol):
    """An adoption's claim: the leases, and the time."""


async def claim_adoption(services: ClaimPorts, tenant_id: str, appointment_id: str, copy: StaffCopy) -> None:
    """Take the event for the appointment, or refuse (409 naming `outlook.event_id`) when another
    appointment's adoption holds it. The same appointment may claim it again (a replayed PUT)."""
    assert copy.event_id is not None
    key = claim_key(tenant_id, copy.staff_id, copy.event_id)
    outcome = await services.leases.acquire(key, appointment_id, ADOPTION_CLAIM, services.clock.now())
    if outcome is LeaseOutcome.DEFERRED:
        raise Conflict("outlook.event_id", "another appointment is adopting this event right now")


async def release_adoption(
    services: UsesLeases, tenant_id: str, appointment_id: str, copy: StaffCopy
) -> None:
    """Give the claim back: the PUT that took it failed before storing the adoption, the adoption settled,
    or the copy went. A refused claimant's flag ('run again', for a lease) keeps no claim alive."""
    assert copy.event_id is not None
    key = claim_key(tenant_id, copy.staff_id, copy.event_id)
    for _ in range(RELEASES):
        if not await services.leases.release(key, appointment_id):
            return


async def settle_adoptions(
    services: ClaimPorts, tenant_id: str, appointment_id: str, copies: dict[str, StaffCopy]
) -> None:
    """After a write pass: each copy still adopting whose event the pass recorded as the connector's
    (`synced`, or `conflict` under Outlook wins) ends its claim, which the checks no longer need; one still
    pending or failed renews it, so the claim lasts as long as the adoption is pending."""
    for staff_id, copy in list(copies.items()):
        if not copy.adopting or copy.event_id is None:
            continue
        if copy.state in (CopyState.SYNCED, CopyState.CONFLICT):
            await release_adoption(services, tenant_id, appointment_id, copy)
            copies[staff_id] = replace(copy, adopting=False)
            continue
        key = claim_key(tenant_id, copy.staff_id, copy.event_id)
        outcome = await services.leases.acquire(key, appointment_id, ADOPTION_CLAIM, services.clock.now())
        if outcome is LeaseOutcome.DEFERRED:  # lapsed and taken by another adoption: theirs now
            log.warning("the claim on adopted event %s lapsed and another appointment took it", copy.event_id)


def _owner(statuses: Mapping[str, ItemStatus], event_id: str) -> str | None:
    """The appointment the statuses link the event to (or one of its occurrences)."""
    for status in statuses.values():
        if status.appointment_id and event_id in (status.graph_id, status.series_master_id):
            return status.appointment_id
    return None
