"""Table Storage for the host's appointments (table `appointments`).

One row per appointment: partition = escaped tenant id, row = escaped appointment id. The appointment is
kept in its stored form (`stored_appointments.py`: the API's members, read back without the API's rules),
the copies as JSON; long values are split over several string properties (a property holds 64 KiB, an
entity 1 MiB). Replaces are guarded by the entity's etag.

The meetings the connector organised are indexed by iCalUId in a partition of their own per tenant
(`~meetings~` + escaped tenant id, row = escaped iCalUId, a few bytes each): the appointments' partition
stays appointments only; a row is forgotten when its organiser's event is deleted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import date, datetime
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

from shared.adapters.storage import TenantStorage
from shared.adapters.stored_appointments import from_stored, to_stored
from shared.adapters.tables.rows import (
    TableAdapter,
    delete_partition,
    escape_key,
    etag_of,
    read_entity,
    required_utc,
    write_entity,
)
from shared.domain.appointments import (
    AppointmentRecord,
    AppointmentState,
    CopyRole,
    CopyState,
    RestoredOccurrence,
    StaffCopy,
)
from shared.domain.teams import TeamsMeeting
from shared.domain.tenants import TeamsMethod
from shared.service.errors import StaleWrite

APPOINTMENTS: Final = "appointments"
MEETINGS_PREFIX: Final = "~meetings~"  # sorts after every escaped tenant id: never a tenant's partition
CHUNK: Final = 30_000  # characters per string property (UTF-16: 60 KiB of the 64 KiB a property holds)


def _split(name: str, text: str) -> dict[str, str]:
    chunks = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
    return {f"{name}{index}": chunk for index, chunk in enumerate(chunks)}


def _joined(entity: Any, name: str) -> str:
    parts: list[str] = []
    while f"{name}{len(parts)}" in entity:
        parts.append(entity[f"{name}{len(parts)}"])
    return "".join(parts)


def _copy_from(raw: dict[str, Any]) -> StaffCopy:
    return StaffCopy(
        **{
            **raw,
            "role": CopyRole(raw["role"]),
            "state": CopyState(raw["state"]),
            "exceptions": tuple(raw.get("exceptions") or ()),
            "exception_keys": tuple(raw.get("exception_keys") or ()),
            "override_days": tuple(date.fromisoformat(d) for d in raw.get("override_days") or ()),
            "restored": tuple(
                RestoredOccurrence(date.fromisoformat(day), event_id)
                for day, event_id in raw.get("restored") or ()
            ),
        }
    )


def _copy_to(copy: StaffCopy) -> dict[str, Any]:
    raw = asdict(copy)
    raw["override_days"] = [d.isoformat() for d in copy.override_days]
    raw["restored"] = [[r.day.isoformat(), r.event_id] for r in copy.restored]
    return raw


def _meeting_to(meeting: TeamsMeeting) -> dict[str, Any]:
    raw = asdict(meeting)
    raw["start"] = _when_to(meeting.start)
    raw["end"] = _when_to(meeting.end)
    return raw


def _when_to(value: datetime | date | None) -> dict[str, str] | None:
    if value is None:
        return None
    return {"datetime" if isinstance(value, datetime) else "date": value.isoformat()}


def _when_from(raw: dict[str, str] | None) -> datetime | date | None:
    if not raw:
        return None
    if "datetime" in raw:
        return datetime.fromisoformat(raw["datetime"])
    return date.fromisoformat(raw["date"])


def _meeting_from(raw: dict[str, Any]) -> TeamsMeeting:
    return TeamsMeeting(
        **{
            **raw,
            "method": TeamsMethod(raw["method"]),
            "start": _when_from(raw.get("start")),
            "end": _when_from(raw.get("end")),
        }
    )


def record_to_entity(record: AppointmentRecord) -> dict[str, Any]:
    document = "" if record.appointment is None else json.dumps(to_stored(record.appointment))
    copies = json.dumps([_copy_to(c) for c in record.copies.values()], separators=(",", ":"))
    return {
        "PartitionKey": escape_key(record.tenant_id),
        "RowKey": escape_key(record.appointment_id),
        "TenantId": record.tenant_id,
        "AppointmentId": record.appointment_id,
        "Revision": record.revision,
        "ReportedRevision": record.reported_revision,
        **({"ReportedState": record.reported_state.value} if record.reported_state else {}),
        "UpdatedAt": record.updated_at,
        "Deleted": record.appointment is None,
        "Unsettled": record.reported_revision < record.revision,
        **_split("Document", document),
        **_split("Copies", copies),
        **({"Meeting": json.dumps(_meeting_to(record.meeting))} if record.meeting else {}),
    }


def record_from_entity(entity: Any) -> AppointmentRecord:
    appointment_id = entity["AppointmentId"]
    document = _joined(entity, "Document")
    appointment = None if entity.get("Deleted") else from_stored(appointment_id, json.loads(document))
    copies = [_copy_from(raw) for raw in json.loads(_joined(entity, "Copies") or "[]")]
    record = AppointmentRecord(
        tenant_id=entity["TenantId"],
        appointment_id=appointment_id,
        revision=int(entity["Revision"]),
        appointment=appointment,
        copies={c.staff_id: c for c in copies},
        updated_at=required_utc(entity["UpdatedAt"]),
        reported_revision=int(entity.get("ReportedRevision") or 0),
        meeting=_meeting_from(json.loads(entity["Meeting"])) if entity.get("Meeting") else None,
        etag=etag_of(entity),
    )
    if entity.get("ReportedState"):
        return replace(record, reported_state=AppointmentState(entity["ReportedState"]))
    # A row written before outcomes were kept: its reported revision's outcome is the one it holds now.
    told = record.state if record.reported_revision >= record.revision else None
    return replace(record, reported_state=told)


class TableAppointments(TableAdapter):
    """`AppointmentRepository` on Table Storage."""

    def __init__(self, storage: TenantStorage) -> None:
        super().__init__(storage, APPOINTMENTS)

    async def get(self, tenant_id: str, appointment_id: str) -> AppointmentRecord | None:
        entity = await read_entity(
            await self._table(tenant_id), escape_key(tenant_id), escape_key(appointment_id)
        )
        return None if entity is None else record_from_entity(entity)

    async def save(self, record: AppointmentRecord) -> AppointmentRecord:
        etag = await write_entity(await self._table(record.tenant_id), record_to_entity(record), record.etag)
        return replace(record, etag=etag)

    async def delete(self, record: AppointmentRecord) -> None:
        table = await self._table(record.tenant_id)
        try:
            await table.delete_entity(
                escape_key(record.tenant_id),
                escape_key(record.appointment_id),
                etag=record.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError as error:
            raise StaleWrite(record.appointment_id) from error
        except ResourceNotFoundError:
            return

    async def unsettled(self, tenant_id: str, *, updated_before: datetime | None = None) -> list[str]:
        table = await self._table(tenant_id)
        query = table.query_entities(
            "PartitionKey eq @pk and Unsettled eq true",
            parameters={"pk": escape_key(tenant_id)},
            select=["AppointmentId", "UpdatedAt"],
            results_per_page=1000,
        )
        return [
            entity["AppointmentId"]
            async for entity in query
            if updated_before is None or required_utc(entity["UpdatedAt"]) < updated_before
        ]

    async def naming(self, tenant_id: str, staff_id: str) -> list[str]:
        """A scan of the tenant's partition (a switch turned on is rare; the rows are read, not written)."""
        table = await self._table(tenant_id)
        query = table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": escape_key(tenant_id)}, results_per_page=1000
        )
        found: list[str] = []
        async for entity in query:
            record = record_from_entity(entity)
            staff = record.appointment.staff_ids if record.appointment is not None else ()
            if staff_id in record.copies or staff_id in staff:
                found.append(record.appointment_id)
        return found

    async def note_meeting(self, tenant_id: str, ical_uid: str, appointment_id: str) -> None:
        table = await self._table(tenant_id)
        row = {
            "PartitionKey": _meetings(tenant_id),
            "RowKey": escape_key(ical_uid),
            "AppointmentId": appointment_id,
        }
        await table.upsert_entity(row)

    async def forget_meeting(self, tenant_id: str, ical_uid: str) -> None:
        await (await self._table(tenant_id)).delete_entity(_meetings(tenant_id), escape_key(ical_uid))

    async def meeting(self, tenant_id: str, ical_uid: str) -> str | None:
        entity = await read_entity(await self._table(tenant_id), _meetings(tenant_id), escape_key(ical_uid))
        return None if entity is None else str(entity["AppointmentId"])

    async def delete_tenant(self, tenant_id: str) -> None:
        table = await self._table(tenant_id)
        await delete_partition(table, escape_key(tenant_id))
        await delete_partition(table, _meetings(tenant_id))


def _meetings(tenant_id: str) -> str:
    return MEETINGS_PREFIX + escape_key(tenant_id)
