"""`BusyStore` in memory, with the table adapter's contract (guarded hold writes, UTC times)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime

from shared.service.errors import AlreadyExists, StaleWrite
from shared.service.records import BusyInstance, HostHold, SyncedBusy, UserBusy, WorkingHoursRecord

_etags = itertools.count(1)


def _utc(instance: BusyInstance) -> BusyInstance:
    if isinstance(instance.start, datetime) and isinstance(instance.end, datetime):
        return replace(instance, start=instance.start.astimezone(UTC), end=instance.end.astimezone(UTC))
    return instance


class FakeBusy:
    def __init__(self) -> None:
        self.indexes: dict[tuple[str, str], SyncedBusy] = {}
        self.hours: dict[tuple[str, str], WorkingHoursRecord] = {}
        self.holds: dict[tuple[str, str], dict[str, HostHold]] = {}
        self.index_writes = 0

    async def read(
        self, tenant_id: str, staff_id: str, near: tuple[datetime, datetime] | None = None
    ) -> UserBusy:
        key = (tenant_id, staff_id)  # every instance, `near` or not (the port allows it)
        holds = self.holds.get(key, {})
        return UserBusy(self.indexes.get(key), self.hours.get(key), tuple(holds[a] for a in sorted(holds)))

    async def write_index(self, tenant_id: str, staff_id: str, index: SyncedBusy) -> None:
        self.index_writes += 1
        self.indexes[(tenant_id, staff_id)] = replace(
            index, instances=tuple(_utc(i) for i in index.instances)
        )

    async def write_hours(self, tenant_id: str, staff_id: str, hours: WorkingHoursRecord) -> None:
        self.hours[(tenant_id, staff_id)] = hours

    async def get_hold(self, tenant_id: str, staff_id: str, appointment_id: str) -> HostHold | None:
        return self.holds.get((tenant_id, staff_id), {}).get(appointment_id)

    async def save_hold(self, tenant_id: str, staff_id: str, hold: HostHold) -> HostHold:
        holds = self.holds.setdefault((tenant_id, staff_id), {})
        current = holds.get(hold.appointment_id)
        if hold.etag is None and current is not None:
            raise AlreadyExists(hold.appointment_id)
        if hold.etag is not None and (current is None or current.etag != hold.etag):
            raise StaleWrite(hold.appointment_id)
        saved = replace(hold, etag=f"W/{next(_etags)}")
        holds[hold.appointment_id] = saved
        return saved

    async def delete_user(self, tenant_id: str, staff_id: str) -> None:
        for rows in (self.indexes, self.hours, self.holds):
            rows.pop((tenant_id, staff_id), None)

    async def delete_tenant(self, tenant_id: str) -> None:
        for rows in (self.indexes, self.hours, self.holds):
            for key in [k for k in rows if k[0] == tenant_id]:
                del rows[key]
