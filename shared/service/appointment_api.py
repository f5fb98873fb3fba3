"""Host API: the host's appointments (PUT, GET, DELETE).

The API stores the host's version (a new revision) and queues a write job (`appointment_writes.py`); it
answers at once. A replay of the current version changes nothing; the ETag is the revision, and `If-Match`
makes a PUT or DELETE conditional. Kept apart from the write job because the two run on different
triggers (HTTP and the `outlook-writes` queue) and share only the stored record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from shared.domain.appointments import (
    Appointment,
    AppointmentRecord,
    AppointmentState,
    StaffCopy,
    desired_roles,
)
from shared.domain.tenants import TeamsMethod, Tenant
from shared.service import jobs
from shared.service.appointment_takeover import (
    Adoption,
    AdoptionPorts,
    adopted_copy,
    claim_adoption,
    release_adoption,
)
from shared.service.context import UsesAppointments, UsesBusy, UsesClock, UsesJobs
from shared.service.errors import Conflict, InvalidInput, NotFound
from shared.service.host_holds import write_holds
from shared.service.ports import JobQueue
from shared.service.ports.tenancy import UserRepository
from shared.service.revisions import check_if_match, connected_tenant, revision_etag, save_revision
from shared.service.tenants import TenantPorts, get_tenant


class AppointmentReadPorts(TenantPorts, UsesAppointments, Protocol):
    """GET: the tenant, then the appointment."""


class AppointmentDeletePorts(AppointmentReadPorts, UsesJobs, UsesClock, UsesBusy, Protocol):
    """DELETE: a new revision, and its write job."""


class AppointmentPutPorts(AppointmentDeletePorts, AdoptionPorts, Protocol):
    """PUT: as DELETE, the staff it names are known, and an event it adopts is checked."""


def etag(record: AppointmentRecord) -> str:
    """The API's ETag: the revision (the copies' progress does not change it)."""
    return revision_etag(record.revision)


async def put_appointment(
    services: AppointmentPutPorts,
    tenant_id: str,
    appointment: Appointment,
    *,
    if_match: str | None = None,
    adopt: Adoption | None = None,
) -> AppointmentRecord:
    """Store the host's version and queue its writes. A replay of the current version changes nothing.
    `adopt`: an event made in Outlook becomes this appointment's copy in that staff member's calendar (the
    write job updates it; from then on it is the host's)."""
    tenant = await _connected(services, tenant_id)
    _check_video(tenant, appointment)
    await _known_staff(services.users, tenant.tenant_id, appointment.staff_ids)
    adopted = await _adopted(services, tenant, appointment, adopt)
    claiming = adopted is not None and adopted.adopting  # an adoption that settled needs no claim
    if claiming:
        assert adopted is not None
        await claim_adoption(services, tenant.tenant_id, appointment.appointment_id, adopted)
    try:
        return await _revise(services, tenant, appointment, if_match, adopted)
    except BaseException:
        if claiming:
            assert adopted is not None
            await release_adoption(services, tenant.tenant_id, appointment.appointment_id, adopted)
        raise


async def _revise(
    services: AppointmentPutPorts,
    tenant: Tenant,
    appointment: Appointment,
    if_match: str | None,
    adopted: StaffCopy | None,
) -> AppointmentRecord:
    """The PUT's new revision stored (with its adopted copy) and its write queued."""

    def revised(record: AppointmentRecord | None) -> AppointmentRecord | None:
        _check_precondition(record, if_match)
        taken = adopted is not None and _takes(record, adopted)
        if record is not None and record.appointment == appointment and not taken:
            return None  # a replay of the current version
        now = services.clock.now()
        if record is None:
            record = AppointmentRecord(tenant.tenant_id, appointment.appointment_id, 0, None, {}, now)
        if taken:
            assert adopted is not None
            record = replace(record, copies={**record.copies, adopted.staff_id: adopted})
        return replace(record, appointment=appointment, revision=record.revision + 1, updated_at=now)

    done = await save_revision(
        lambda: services.appointments.get(tenant.tenant_id, appointment.appointment_id),
        revised,
        services.appointments.save,
        field="appointment_id",
        what="appointment",
    )
    earlier = done.read.appointment.staff_ids if done.read and done.read.appointment else ()
    if done.saved is None:
        assert done.read is not None
        await write_holds(services.busy, done.read, earlier)  # a retried PUT: the same holds again
        if done.read.state is AppointmentState.PENDING:  # the first PUT may not have queued its job
            await _queue_write(services.jobs, done.read)
        return done.read
    await write_holds(services.busy, done.saved, earlier)  # before answering: the slot is taken now
    await _queue_write(services.jobs, done.saved)
    return done.saved


async def delete_appointment(
    services: AppointmentDeletePorts, tenant_id: str, appointment_id: str, *, if_match: str | None = None
) -> AppointmentRecord:
    """Mark it deleted and queue the removal of every copy (idempotent)."""
    await get_tenant(services, tenant_id)

    def deleted(record: AppointmentRecord | None) -> AppointmentRecord | None:
        if record is None:
            raise NotFound("appointment", appointment_id, "appointment_id")
        _check_precondition(record, if_match)
        if record.appointment is None:
            return None  # deleted already: its removal is queued again
        return replace(
            record, appointment=None, revision=record.revision + 1, updated_at=services.clock.now()
        )

    done = await save_revision(
        lambda: services.appointments.get(tenant_id, appointment_id),
        deleted,
        services.appointments.save,
        field="appointment_id",
        what="appointment",
    )
    record = done.latest
    assert record is not None
    earlier = done.read.appointment.staff_ids if done.read and done.read.appointment else ()
    await write_holds(services.busy, record, earlier)  # every staff member's time is free again
    await _queue_write(services.jobs, record)
    return record


async def get_appointment(
    services: AppointmentReadPorts, tenant_id: str, appointment_id: str
) -> AppointmentRecord:
    await get_tenant(services, tenant_id)
    record = await services.appointments.get(tenant_id, appointment_id)
    if record is None:
        raise NotFound("appointment", appointment_id, "appointment_id")
    return record


async def _adopted(
    services: AppointmentPutPorts, tenant: Tenant, appointment: Appointment, adopt: Adoption | None
) -> StaffCopy | None:
    """The copy an adoption makes (checked against the calendar; each refusal names its member)."""
    if adopt is None:
        return None
    roles = desired_roles(appointment, tenant.settings.multi_staff_mode)
    role = roles.get(adopt.staff_id)
    if role is None:
        raise InvalidInput("outlook.staff_id", "must be one of the appointment's staff_ids", status=422)
    record = await services.appointments.get(tenant.tenant_id, appointment.appointment_id)
    return await adopted_copy(services, tenant, appointment.appointment_id, record, adopt, role)


def _takes(record: AppointmentRecord | None, adopted: StaffCopy) -> bool:
    """Whether the adopted event is new to the record (False: it is that staff member's copy already)."""
    held = record.copies.get(adopted.staff_id) if record is not None else None
    if held is not None and held.event_id not in (None, adopted.event_id):  # another, written meanwhile
        raise Conflict("outlook.event_id", f"the appointment already has the event {held.event_id} there")
    return held is None or held.event_id is None


def _check_video(tenant: Tenant, appointment: Appointment) -> None:
    """A video appointment needs a way to make its meeting: service_account needs its organiser."""
    settings = tenant.settings
    if (
        appointment.video
        and settings.teams_method is TeamsMethod.SERVICE_ACCOUNT
        and not settings.teams_organizer
    ):
        raise Conflict(
            "video",
            "the tenant's Teams method is service_account and no teams_organizer is set; set one in the "
            "settings or choose another teams_method",
        )


async def _connected(services: TenantPorts, tenant_id: str) -> Tenant:
    return await connected_tenant(services, tenant_id, "appointments")


async def _known_staff(users: UserRepository, tenant_id: str, staff_ids: Sequence[str]) -> None:
    found = await asyncio.gather(*(users.get(tenant_id, s) for s in staff_ids))
    for index, user in enumerate(found):
        if user is None:
            raise InvalidInput(
                f"staff_ids[{index}]", "no such staff member (PUT the staff member first)", status=422
            )


def _check_precondition(record: AppointmentRecord | None, if_match: str | None) -> None:
    revision = record.revision if record is not None and record.appointment is not None else None
    check_if_match(if_match, revision, "appointment")


async def _queue_write(queue: JobQueue, record: AppointmentRecord) -> None:
    await queue.enqueue(
        [jobs.write_appointment(record.tenant_id, record.appointment_id, revision=record.revision)]
    )
