"""The host's holds on its staff's time: written by the appointment API as soon as a PUT or DELETE is
accepted, before it answers, so a slot just booked is never offered while the write to Outlook is still
queued.

Each staff member of the current version gets a hold (the appointment's times, its recurrence with its
cancelled dates and the overrides' new times, no subject or customers); each staff member it no longer
names (dropped from it, or every one on DELETE) gets a tombstone. A hold is only replaced by a newer
revision (If-Match on the hold's row, through `update_optimistically`), so of two PUTs racing, the older
never overwrites the newer; a PUT the host retries writes the same hold again, or nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace
from typing import Final

from shared.domain.appointments import Appointment, AppointmentRecord, Recurrence
from shared.service.errors import AlreadyExists, StaleWrite
from shared.service.ports.availability import BusyStore
from shared.service.records import HoldTimes, HostHold
from shared.service.retries import update_optimistically

HOLD_ATTEMPTS: Final = 5


def hold_times(appointment: Appointment) -> HoldTimes:
    """When the appointment holds its staff (what the host sent, without any text of it)."""
    recurrence = appointment.recurrence
    kept: Recurrence | None = None
    if recurrence is not None:
        overrides = tuple(replace(o, subject=None, location=None, body=None) for o in recurrence.overrides)
        kept = Recurrence(recurrence.rrule, recurrence.exdates, overrides)
    return HoldTimes(
        start=appointment.start,
        end=appointment.end,
        all_day=appointment.all_day,
        time_zone=appointment.time_zone,
        show_as=appointment.show_as,
        recurrence=kept,
    )


async def write_holds(busy: BusyStore, record: AppointmentRecord, earlier: Iterable[str] = ()) -> None:
    """A hold for each staff member of the record's version, a tombstone for each other staff member it
    named before (`earlier`, and those with a copy): all at the record's revision."""
    appointment = record.appointment
    current = tuple(appointment.staff_ids) if appointment is not None else ()
    dropped = sorted({*earlier, *record.copies} - set(current))
    times = hold_times(appointment) if appointment is not None else None
    wanted = [HostHold(record.appointment_id, record.revision, times) for _ in current]
    gone = [HostHold(record.appointment_id, record.revision, None) for _ in dropped]
    await asyncio.gather(
        *(
            _put(busy, record.tenant_id, staff_id, hold)
            for staff_id, hold in zip((*current, *dropped), (*wanted, *gone), strict=True)
        )
    )


async def _put(busy: BusyStore, tenant_id: str, staff_id: str, hold: HostHold) -> None:
    def newer(stored: HostHold | None) -> HostHold | None:
        if stored is not None and stored.revision >= hold.revision:
            return None  # a newer revision is there, or this one (a retried PUT: a revision has one hold)
        return replace(hold, etag=stored.etag if stored is not None else None)

    await update_optimistically(
        lambda: busy.get_hold(tenant_id, staff_id, hold.appointment_id),
        newer,
        lambda h: busy.save_hold(tenant_id, staff_id, h),
        attempts=HOLD_ATTEMPTS,
        races=(StaleWrite, AlreadyExists),
    )
