"""What the availability API reads and the sync and appointment paths write: per user, the busy index of
the synced window, the Outlook working hours and the host's holds (table `busy`, one partition per user)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared.service.records import HostHold, SyncedBusy, UserBusy, WorkingHoursRecord


class BusyStore(Protocol):
    """One partition per user, so reading a user is one partition query and no tenant shares a hot one."""

    async def read(
        self, tenant_id: str, staff_id: str, near: tuple[datetime, datetime] | None = None
    ) -> UserBusy:
        """The user's index, working hours and holds (tombstones included), in one query. With `near`
        (start, end), the index may leave out instances that cannot overlap [start, end): every timed one
        that does is there, and every all-day one whose dates reach a day either side of it (dates are
        local); the rest of the index (window, completeness) is as stored. Without it, every instance."""
        ...

    async def write_index(self, tenant_id: str, staff_id: str, index: SyncedBusy) -> None:
        """Replace the index (the user's sync run is its one writer, under the sync lease). An index too
        large for one row is stored incomplete, without instances."""
        ...

    async def write_hours(self, tenant_id: str, staff_id: str, hours: WorkingHoursRecord) -> None: ...

    async def get_hold(self, tenant_id: str, staff_id: str, appointment_id: str) -> HostHold | None:
        """The hold (or tombstone) with its etag, for `save_hold`."""
        ...

    async def save_hold(self, tenant_id: str, staff_id: str, hold: HostHold) -> HostHold:
        """Insert (etag None; `AlreadyExists` if one is there) or replace If-Match (`StaleWrite` when it
        changed since it was read); answers the hold with its new etag."""
        ...

    async def delete_user(self, tenant_id: str, staff_id: str) -> None: ...

    async def delete_tenant(self, tenant_id: str) -> None:
        """Every user's partition under the tenant (idempotent)."""
        ...
