"""The `busy` table: per user, the busy index, the working hours and the host's holds (`BusyStore`).

A user's partition is `escape_key(tenant id)` `|` `escape_key(staff id)` (as in `outlookitems`), so the
availability API reads a user in one partition query and no tenant has a hot partition. Its rows:

- `index`: the busy index, one instance a line, `key start span code[ appointment]`: the key is 11
  characters of the Graph id's hash; start and span are base-36 epoch seconds and seconds (days since the
  epoch and days for an all-day instance); the code is one letter for `show_as`, upper case when all-day.
  Measured: 24 characters an instance with its newline (49 bytes as Table Storage keeps strings, UTF-16),
  plus a space and the appointment id for a linked one (61 characters with a GUID); 2,000 instances are
  about 97 KB. The text is split over string properties of `PART_CHARS`; an index over `MAX_INDEX_CHARS`
  (about 18,000 unlinked instances, 7,000 all linked) would not fit the entity's 1 MiB and is stored
  incomplete and empty, so the API falls back to Graph for that user.
- `hours`: the working hours.
- `h-` + escaped appointment id: a host hold, or its tombstone, with its revision.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from azure.data.tables import UpdateMode

from shared.adapters.storage import TenantStorage
from shared.adapters.tables.item_statuses import USER_SEPARATOR, user_partition
from shared.adapters.tables.rows import (
    TableAdapter,
    delete_partition,
    delete_rows,
    escape_key,
    etag_of,
    read_entity,
    required_utc,
    unescape_key,
    write_entity,
)
from shared.adapters.tables.transactions import Delete
from shared.domain.appointments import Override, Recurrence
from shared.service.records import (
    BusyInstance,
    HoldTimes,
    HostHold,
    SyncedBusy,
    UserBusy,
    WorkingHours,
    WorkingHoursRecord,
)

BUSY: Final = "busy"
INDEX_ROW: Final = "index"
HOURS_ROW: Final = "hours"
HOLD_PREFIX: Final = "h-"
PART_CHARS: Final = 30_000  # characters per string property (one holds 32K UTF-16 units)
MAX_INDEX_CHARS: Final = 450_000  # 900 KB as stored: the rest of the entity fits its 1 MiB beside it
_AFTER_SEPARATOR: Final = chr(ord(USER_SEPARATOR) + 1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY: Final = date(1970, 1, 1).toordinal()
_SHOW_AS: Final = {
    "free": "f",
    "tentative": "t",
    "busy": "b",
    "oof": "o",
    "workingElsewhere": "w",
    "unknown": "u",
}
_SHOW_AS_OF: Final = {code: name for name, code in _SHOW_AS.items()}
_DIGITS: Final = "0123456789abcdefghijklmnopqrstuvwxyz"


# --- the index's packing ---------------------------------------------------------------------------


def _base36(number: int) -> str:
    if number < 0:
        return "-" + _base36(-number)
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = _DIGITS[digit] + text
        if not number:
            return text


def _seconds(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(seconds=1)


def encode_instance(instance: BusyInstance) -> str:
    """One instance as a line of the index (see the module)."""
    if instance.all_day:
        start = _as_date(instance.start).toordinal() - _EPOCH_DAY
        span = _as_date(instance.end).toordinal() - _EPOCH_DAY - start
    else:
        start = _seconds(_as_datetime(instance.start))
        span = _seconds(_as_datetime(instance.end)) - start
    code = _SHOW_AS.get(instance.show_as, "u")
    fields = [instance.key, _base36(start), _base36(span), code.upper() if instance.all_day else code]
    if instance.appointment_id:
        fields.append(instance.appointment_id)
    return " ".join(fields)


def decode_instance(line: str) -> BusyInstance:
    key, start_text, span_text, code, *linked = line.split(" ")
    start, span = int(start_text, 36), int(span_text, 36)
    all_day = code.isupper()
    begin: datetime | date
    end: datetime | date
    if all_day:
        begin = date.fromordinal(_EPOCH_DAY + start)
        end = date.fromordinal(_EPOCH_DAY + start + span)
    else:
        begin = _EPOCH + timedelta(seconds=start)
        end = begin + timedelta(seconds=span)
    show_as = _SHOW_AS_OF[code.lower()]
    return BusyInstance(key, begin, end, show_as, all_day, linked[0] if linked else None)


def _as_date(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _as_datetime(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value, time(), tzinfo=UTC)


def index_entity(partition: str, index: SyncedBusy) -> dict[str, Any]:
    text = "\n".join(encode_instance(i) for i in index.instances)
    overflowed = len(text) > MAX_INDEX_CHARS
    entity: dict[str, Any] = {
        "PartitionKey": partition,
        "RowKey": INDEX_ROW,
        "WindowStart": index.window_start,
        "WindowEnd": index.window_end,
        "SyncedAt": index.synced_at,
        "Complete": index.complete and not overflowed,
        "Count": len(index.instances),
        "Overflowed": overflowed,
    }
    if overflowed:
        return entity
    for start in range(0, len(text), PART_CHARS):
        entity[f"I{start // PART_CHARS}"] = text[start : start + PART_CHARS]
    return entity


def index_from_entity(entity: Mapping[str, Any], near: tuple[datetime, datetime] | None = None) -> SyncedBusy:
    """The stored index; with `near`, only the instances that may overlap it are decoded (see
    `BusyStore.read`): a line's start and span are read first, and only a line that passes is made into
    an instance (a question over 4 weeks of a 26-week window decodes about a sixth of them)."""
    parts: list[str] = []
    while (part := entity.get(f"I{len(parts)}")) is not None:
        parts.append(part)
    text = "".join(parts)
    lines = text.split("\n") if text else []
    if near is not None:
        lines = list(filter(_overlapping(near), lines))
    return SyncedBusy(
        instances=tuple(decode_instance(line) for line in lines),
        window_start=required_utc(entity["WindowStart"]),
        window_end=required_utc(entity["WindowEnd"]),
        synced_at=required_utc(entity["SyncedAt"]),
        complete=bool(entity.get("Complete")),
    )


def _overlapping(near: tuple[datetime, datetime]) -> Callable[[str], bool]:
    """Whether an index line may overlap [start, end): a timed one by its epoch seconds (whole seconds
    around the span); an all-day one by its dates, with a day's slack either side (they are local)."""
    low, high = math.floor(near[0].timestamp()), math.ceil(near[1].timestamp())
    first = near[0].astimezone(UTC).date().toordinal() - _EPOCH_DAY - 1
    last = near[1].astimezone(UTC).date().toordinal() - _EPOCH_DAY + 1

    def overlapping(line: str) -> bool:
        _, start_text, span_text, code = line.split(" ", 4)[:4]
        start, span = int(start_text, 36), int(span_text, 36)
        if code.isupper():  # all-day: days since the epoch
            return start <= last and start + span >= first
        return start < high and start + span > low

    return overlapping


# --- working hours and holds ---------------------------------------------------------------------------


def hours_entity(partition: str, record: WorkingHoursRecord) -> dict[str, Any]:
    hours = record.hours
    entity = {
        "PartitionKey": partition,
        "RowKey": HOURS_ROW,
        "Days": " ".join(hours.days),
        "Start": hours.start.isoformat(),
        "End": hours.end.isoformat(),
        "Zone": hours.zone,
        "ReadAt": record.read_at,
    }
    if record.iana_zone is not None:
        entity["IanaZone"] = record.iana_zone
    return entity


def hours_from_entity(entity: Mapping[str, Any]) -> WorkingHoursRecord:
    hours = WorkingHours(
        days=tuple(str(entity.get("Days") or "").split()),
        start=time.fromisoformat(str(entity["Start"])),
        end=time.fromisoformat(str(entity["End"])),
        zone=str(entity["Zone"]),
    )
    return WorkingHoursRecord(hours, entity.get("IanaZone"), required_utc(entity["ReadAt"]))


def hold_key(appointment_id: str) -> str:
    return f"{HOLD_PREFIX}{escape_key(appointment_id)}"


def hold_entity(partition: str, hold: HostHold) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": partition,
        "RowKey": hold_key(hold.appointment_id),
        "Revision": hold.revision,
        "Deleted": hold.times is None,
    }
    times = hold.times
    if times is None:
        return entity
    entity |= {
        "Start": times.start.isoformat(),
        "End": times.end.isoformat(),
        "AllDay": times.all_day,
        "TimeZone": times.time_zone,
        "ShowAs": times.show_as,
    }
    if times.recurrence is not None:
        rule = times.recurrence
        entity["Rrule"] = rule.rrule
        entity["Exdates"] = " ".join(d.isoformat() for d in rule.exdates)
        entity["Overrides"] = json.dumps(
            [[o.original_date.isoformat(), o.start.isoformat(), o.end.isoformat()] for o in rule.overrides],
            separators=(",", ":"),
        )
    return entity


def hold_from_entity(entity: Mapping[str, Any]) -> HostHold:
    appointment_id = unescape_key(str(entity["RowKey"])[len(HOLD_PREFIX) :])
    etag = etag_of(entity)
    if entity.get("Deleted"):
        return HostHold(appointment_id, int(entity["Revision"]), None, etag)
    all_day = bool(entity["AllDay"])
    zone_name = str(entity["TimeZone"])
    zone = ZoneInfo(zone_name)

    def moment(text: str) -> datetime | date:
        return date.fromisoformat(text) if all_day else datetime.fromisoformat(text).astimezone(zone)

    recurrence = None
    if entity.get("Rrule"):
        overrides = tuple(
            Override(date.fromisoformat(original), moment(start), moment(end))
            for original, start, end in json.loads(str(entity.get("Overrides") or "[]"))
        )
        exdates = tuple(date.fromisoformat(d) for d in str(entity.get("Exdates") or "").split())
        recurrence = Recurrence(str(entity["Rrule"]), exdates, overrides)
    times = HoldTimes(
        start=moment(str(entity["Start"])),
        end=moment(str(entity["End"])),
        all_day=all_day,
        time_zone=zone_name,
        show_as=str(entity["ShowAs"]),
        recurrence=recurrence,
    )
    return HostHold(appointment_id, int(entity["Revision"]), times, etag)


class TableBusy(TableAdapter):
    """`BusyStore` over the `busy` table (see the module)."""

    def __init__(self, storage: TenantStorage) -> None:
        super().__init__(storage, BUSY)

    async def read(
        self, tenant_id: str, staff_id: str, near: tuple[datetime, datetime] | None = None
    ) -> UserBusy:
        table = await self._table(tenant_id)
        partition = user_partition(tenant_id, staff_id)
        query = table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": partition}, results_per_page=1000
        )
        index: SyncedBusy | None = None
        hours: WorkingHoursRecord | None = None
        holds: list[HostHold] = []
        async for entity in query:
            row_key = str(entity["RowKey"])
            if row_key == INDEX_ROW:
                index = index_from_entity(entity, near)
            elif row_key == HOURS_ROW:
                hours = hours_from_entity(entity)
            elif row_key.startswith(HOLD_PREFIX):
                holds.append(hold_from_entity(entity))
        return UserBusy(index, hours, tuple(holds))

    async def write_index(self, tenant_id: str, staff_id: str, index: SyncedBusy) -> None:
        entity = index_entity(user_partition(tenant_id, staff_id), index)
        await (await self._table(tenant_id)).upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def write_hours(self, tenant_id: str, staff_id: str, hours: WorkingHoursRecord) -> None:
        entity = hours_entity(user_partition(tenant_id, staff_id), hours)
        await (await self._table(tenant_id)).upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def get_hold(self, tenant_id: str, staff_id: str, appointment_id: str) -> HostHold | None:
        entity = await read_entity(
            await self._table(tenant_id), user_partition(tenant_id, staff_id), hold_key(appointment_id)
        )
        return None if entity is None else hold_from_entity(entity)

    async def save_hold(self, tenant_id: str, staff_id: str, hold: HostHold) -> HostHold:
        entity = hold_entity(user_partition(tenant_id, staff_id), hold)
        etag = await write_entity(await self._table(tenant_id), entity, hold.etag)
        return HostHold(hold.appointment_id, hold.revision, hold.times, etag)

    async def delete_user(self, tenant_id: str, staff_id: str) -> None:
        await delete_partition(await self._table(tenant_id), user_partition(tenant_id, staff_id))

    async def delete_tenant(self, tenant_id: str) -> None:
        table = await self._table(tenant_id)
        query = table.query_entities(
            "PartitionKey ge @first and PartitionKey lt @after",
            parameters={
                "first": f"{escape_key(tenant_id)}{USER_SEPARATOR}",
                "after": f"{escape_key(tenant_id)}{_AFTER_SEPARATOR}",
            },
            select=["PartitionKey", "RowKey"],
            results_per_page=1000,
        )
        await delete_rows(table, [Delete(e["PartitionKey"], e["RowKey"]) async for e in query])
