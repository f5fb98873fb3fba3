"""`AppointmentRepository` in memory, with the adapter's contract: etag-guarded replace, AlreadyExists."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime

from shared.domain.appointments import AppointmentRecord
from shared.service.errors import AlreadyExists, StaleWrite

_etags = itertools.count(1)


class FakeAppointments:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], AppointmentRecord] = {}
        self.meetings: dict[tuple[str, str], str] = {}  # (tenant, iCalUId) -> appointment id

    async def get(self, tenant_id: str, appointment_id: str) -> AppointmentRecord | None:
        return self.rows.get((tenant_id, appointment_id))

    async def save(self, record: AppointmentRecord) -> AppointmentRecord:
        key = (record.tenant_id, record.appointment_id)
        current = self.rows.get(key)
        if record.etag is None:
            if current is not None:
                raise AlreadyExists(record.appointment_id)
        elif current is None or current.etag != record.etag:
            raise StaleWrite(record.appointment_id)
        saved = replace(record, etag=f"e{next(_etags)}")
        self.rows[key] = saved
        return saved

    async def delete(self, record: AppointmentRecord) -> None:
        key = (record.tenant_id, record.appointment_id)
        current = self.rows.get(key)
        if current is None:
            return
        if current.etag != record.etag:
            raise StaleWrite(record.appointment_id)
        del self.rows[key]

    async def unsettled(self, tenant_id: str, *, updated_before: datetime | None = None) -> list[str]:
        return [
            r.appointment_id
            for (t, _), r in self.rows.items()
            if t == tenant_id
            and r.reported_revision < r.revision
            and (updated_before is None or r.updated_at < updated_before)
        ]

    async def naming(self, tenant_id: str, staff_id: str) -> list[str]:
        return [
            r.appointment_id
            for (t, _), r in self.rows.items()
            if t == tenant_id
            and (staff_id in r.copies or (r.appointment is not None and staff_id in r.appointment.staff_ids))
        ]

    async def note_meeting(self, tenant_id: str, ical_uid: str, appointment_id: str) -> None:
        self.meetings[(tenant_id, ical_uid)] = appointment_id

    async def forget_meeting(self, tenant_id: str, ical_uid: str) -> None:
        self.meetings.pop((tenant_id, ical_uid), None)

    async def meeting(self, tenant_id: str, ical_uid: str) -> str | None:
        return self.meetings.get((tenant_id, ical_uid))

    async def delete_tenant(self, tenant_id: str) -> None:
        for key in [k for k in self.rows if k[0] == tenant_id]:
            del self.rows[key]
        for meeting in [k for k in self.meetings if k[0] == tenant_id]:
            del self.meetings[meeting]
