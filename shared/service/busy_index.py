"""The sync's side of availability: the busy index brought up to date from a delta read, and the
mailbox's working hours read again at migration and by the nightly run.

Written in the same run as the item statuses, before the run publishes its changes, so an Outlook change
is in the availability answer no later than in the feed. The user's sync run is the index's one writer
(the sync lease), so a plain replace is right, and a redelivered job rewrites the same index.

- A complete read of the window rebuilds the index from what was read; a delta read applies its items to
  the stored index (an event upserts its instance, a removal or a cancellation removes it).
- A user synced before the index existed has none: its delta runs keep one marked incomplete, and the
  next complete read (a resync, the nightly run) builds the whole of it.
- Instances that ended before the window's start are dropped.
- Each instance carries the host appointment its item status links it to (its own, else its series
  master's), so the API can tell an appointment's Outlook copy from its hold.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from shared.domain.calendar import DeltaItem, EventKind, OutlookEvent, RemovedEvent
from shared.domain.planner import ItemStatus
from shared.domain.tenants import Tenant
from shared.domain.timezones import iana_zone
from shared.domain.users import UserRecord
from shared.observability import get_logger
from shared.service.errors import MailboxUnavailable, RateLimited
from shared.service.ports.availability import BusyStore
from shared.service.ports.graph import CalendarGateway
from shared.service.records import BusyInstance, SyncedBusy, WorkingHours, WorkingHoursRecord

log = get_logger("sync")

KEY_BYTES = 8  # 64 bits of BLAKE2b: collisions among a mailbox's few thousand instances are negligible
ALL_DAY_SLACK = timedelta(days=1)  # an all-day end date is local: kept a day past its UTC midnight

AppointmentOf = Callable[[OutlookEvent], "str | None"]


def busy_key(graph_id: str) -> str:
    """The short, fixed-length key of an Outlook item in the index (11 URL-safe characters)."""
    digest = hashlib.blake2b(graph_id.encode(), digest_size=KEY_BYTES).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def busy_instance(event: OutlookEvent, appointment_id: str | None) -> BusyInstance | None:
    """The instance an event puts in the index; None when it blocks nothing (cancelled), or is a series
    master (calendar views report its occurrences)."""
    if event.cancelled or event.kind is EventKind.SERIES_MASTER:
        return None
    return BusyInstance(
        key=busy_key(event.id),
        start=event.start,
        end=event.end,
        show_as=event.show_as,
        all_day=event.all_day,
        appointment_id=appointment_id,
    )


def linked_appointments(statuses: Mapping[str, ItemStatus]) -> AppointmentOf:
    """An event's host appointment, from its item status or else its series master's."""

    def appointment_of(event: OutlookEvent) -> str | None:
        own = statuses.get(event.id)
        if own is not None and own.appointment_id:
            return own.appointment_id
        master = statuses.get(event.series_master_id) if event.series_master_id else None
        return master.appointment_id if master is not None else None

    return appointment_of


def updated_index(
    stored: SyncedBusy | None,
    items: Sequence[DeltaItem],
    *,
    complete: bool,
    window: tuple[datetime, datetime],
    appointment_of: AppointmentOf,
    now: datetime,
) -> SyncedBusy:
    """The index after a read: rebuilt from a complete read, else the stored one with the delta applied
    (in order: an item's last report wins), pruned to the window."""
    rebuild = complete or stored is None
    instances: dict[str, BusyInstance] = {}
    if not rebuild and stored is not None:
        instances = {i.key: i for i in stored.instances}
    for item in items:
        key = busy_key(item.id)
        found = None if isinstance(item, RemovedEvent) else busy_instance(item, appointment_of(item))
        if found is None:
            instances.pop(key, None)
        else:
            instances[key] = found
    if rebuild or stored is None:
        window_start, window_end = window
    else:  # a delta round keeps the window its complete read opened; only the start moves on
        window_start, window_end = max(stored.window_start, window[0]), stored.window_end
    kept = [i for i in instances.values() if _ends_after(i, window_start)]
    kept.sort(key=lambda i: (i.ends_at(), i.key))
    return SyncedBusy(
        instances=tuple(kept),
        window_start=window_start,
        window_end=window_end,
        synced_at=now,
        complete=complete or (stored is not None and stored.complete),
    )


def same_index(before: SyncedBusy | None, after: SyncedBusy) -> bool:
    """Nothing to write: the same instances over the same window (when it was written aside)."""
    return before is not None and (
        before.instances,
        before.window_start,
        before.window_end,
        before.complete,
    ) == (after.instances, after.window_start, after.window_end, after.complete)


def _ends_after(instance: BusyInstance, moment: datetime) -> bool:
    slack = ALL_DAY_SLACK if instance.all_day else timedelta()
    return instance.ends_at() + slack > moment


async def refresh_index(  # noqa: PLR0917 (the run's read, as the executor holds it)
    busy: BusyStore,
    tenant_id: str,
    staff_id: str,
    stored: SyncedBusy | None,
    items: Sequence[DeltaItem],
    complete: bool,
    window: tuple[datetime, datetime],
    statuses: Mapping[str, ItemStatus],
    now: datetime,
) -> SyncedBusy:
    """Bring the stored index up to date with a read and write it if that changed it."""
    index = updated_index(
        stored,
        items,
        complete=complete,
        window=window,
        appointment_of=linked_appointments(statuses),
        now=now,
    )
    if same_index(stored, index):
        return stored if stored is not None else index
    await busy.write_index(tenant_id, staff_id, index)
    return index


async def refresh_hours(
    calendar: CalendarGateway, busy: BusyStore, tenant: Tenant, user: UserRecord, now: datetime
) -> WorkingHoursRecord | None:
    """Read the mailbox's working hours and store them. A mailbox that refuses or lacks them, or Graph
    throttling, never fails the sync: the hours stored before stay (None answered)."""
    return await store_hours(busy, tenant, user, await read_hours(calendar, tenant, user), now)


async def read_hours(calendar: CalendarGateway, tenant: Tenant, user: UserRecord) -> WorkingHours | None:
    """The mailbox's working hours; None when it refuses or lacks them or Graph throttles (logged)."""
    if user.graph_user_id is None:
        return None
    try:
        hours = await calendar.working_hours(tenant, user.graph_user_id)
    except (MailboxUnavailable, RateLimited) as error:
        log.info("working hours not read (the stored ones stay): %s", error)
        return None
    if hours is None:
        log.info("the mailbox reports no working hours (the stored ones stay)")
    return hours


async def store_hours(
    busy: BusyStore, tenant: Tenant, user: UserRecord, hours: WorkingHours | None, now: datetime
) -> WorkingHoursRecord | None:
    """Store hours `read_hours` found (None: the stored ones stay)."""
    if hours is None:
        return None
    record = WorkingHoursRecord(hours, iana_zone(hours.zone), now)
    await busy.write_hours(tenant.tenant_id, user.staff_id, record)
    return record
