"""The `messages` table: the message monitor (`MessageLog`).

Partition: escaped tenant id `|` the UTC day (`yyyymmdd`); row: the message id (`monitor.new_message_id`:
the inverted millisecond, then six random hex digits), so a partition reads newest first and `since` and a
cursor are RowKey bounds. The filters (staff, direction, status) are property filters within the days read.
A message's messages of one tenant and day are inserted in one entity-group transaction (a write job's rows
for its staff members, for instance); pruning deletes whole earlier days with one PartitionKey range query
and the cut-off day's older rows, 100 per transaction.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from shared.adapters.storage import TenantStorage
from shared.adapters.tables.item_statuses import USER_SEPARATOR
from shared.adapters.tables.rows import TableAdapter, delete_rows, escape_key, read_entity, required_utc
from shared.adapters.tables.transactions import MAX_OPERATIONS, Delete, Insert, submit
from shared.service.monitor import (
    MAX_DETAIL_CHARS,
    Direction,
    MessagePage,
    MessageQuery,
    MessageStatus,
    MonitoredMessage,
    message_time,
    time_key,
)

MESSAGES: Final = "messages"
_LAST_ROW: Final = "~"  # sorts after every message id (digits and hex)
MAX_DAYS_READ: Final = 92  # a listing reads at most this many days' partitions (the longest retention is 90)


def day_partition(tenant_id: str, at: datetime) -> str:
    return f"{escape_key(tenant_id)}{USER_SEPARATOR}{at.astimezone(UTC):%Y%m%d}"


def detail_json(detail: Any) -> str:
    text = json.dumps(detail, separators=(",", ":"), default=str)
    if len(text) <= MAX_DETAIL_CHARS:
        return text
    return json.dumps({"truncated": text[: MAX_DETAIL_CHARS - 40]}, separators=(",", ":"))


def message_to_entity(message: MonitoredMessage) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": day_partition(message.tenant_id, message_time(message.message_id)),
        "RowKey": message.message_id,
        "Dir": message.direction.value,
        "Kind": message.kind,
        "Status": message.status.value,
        "Key": message.key,
        "Attempts": message.attempts,
        "Started": message.started_at,
    }
    if message.staff_id is not None:
        entity["Staff"] = message.staff_id
    if message.detail:
        entity["Detail"] = detail_json(message.detail)
    return entity


def message_from_entity(tenant_id: str, entity: Any) -> MonitoredMessage:
    message_id = str(entity["RowKey"])
    return MonitoredMessage(
        tenant_id=tenant_id,
        direction=Direction(entity["Dir"]),
        kind=str(entity["Kind"]),
        status=MessageStatus(entity["Status"]),
        key=str(entity.get("Key") or ""),
        started_at=required_utc(entity["Started"]),
        at=message_time(message_id),
        attempts=int(entity.get("Attempts") or 1),
        staff_id=entity.get("Staff"),
        detail=json.loads(entity["Detail"]) if entity.get("Detail") else {},
        message_id=message_id,
    )


class TableMessages(TableAdapter):
    """`MessageLog` on Table Storage."""

    def __init__(self, storage: TenantStorage) -> None:
        super().__init__(storage, MESSAGES)

    async def record(self, messages: Sequence[MonitoredMessage]) -> None:
        by_partition: dict[tuple[str, str], list[Insert]] = defaultdict(list)
        for message in messages:
            entity = message_to_entity(message)
            by_partition[message.tenant_id, entity["PartitionKey"]].append(Insert(entity))
        for (tenant_id, _), inserts in by_partition.items():
            table = await self._table(tenant_id)
            for start in range(0, len(inserts), MAX_OPERATIONS):
                await submit(table, inserts[start : start + MAX_OPERATIONS])

    async def list(self, tenant_id: str, query: MessageQuery) -> MessagePage:
        table = await self._table(tenant_id)
        until = query.until or datetime.now(UTC)
        newest = min(message_time(query.cursor), until) if query.cursor else until
        if query.since < until - timedelta(days=MAX_DAYS_READ):
            query = replace(query, since=until - timedelta(days=MAX_DAYS_READ))
        oldest_key = time_key(query.since) + "ffffff"
        conditions = ["PartitionKey eq @pk", "RowKey gt @after", "RowKey le @oldest"]
        parameters: dict[str, Any] = {"oldest": oldest_key}
        for name, value in (
            ("Staff", query.staff_id),
            ("Dir", query.direction.value if query.direction else None),
            ("Status", query.status.value if query.status else None),
        ):
            if value is not None:
                conditions.append(f"{name} eq @{name.lower()}")
                parameters[name.lower()] = value
        found: list[MonitoredMessage] = []
        day = newest.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        while day + timedelta(days=1) > query.since and len(found) < query.limit:
            parameters["pk"] = day_partition(tenant_id, day)
            parameters["after"] = query.cursor if query.cursor and not found else ""
            rows = table.query_entities(
                " and ".join(conditions), parameters=parameters, results_per_page=min(query.limit, 1000)
            )
            async for entity in rows:
                found.append(message_from_entity(tenant_id, entity))
                if len(found) >= query.limit:
                    break
            day -= timedelta(days=1)
        next_cursor = found[-1].message_id if len(found) >= query.limit else None
        return MessagePage(found, next_cursor)

    async def get(self, tenant_id: str, message_id: str) -> MonitoredMessage | None:
        partition = day_partition(tenant_id, message_time(message_id))
        entity = await read_entity(await self._table(tenant_id), partition, message_id)
        return None if entity is None else message_from_entity(tenant_id, entity)

    async def prune(self, tenant_id: str, before: datetime) -> int:
        table = await self._table(tenant_id)
        prefix = f"{escape_key(tenant_id)}{USER_SEPARATOR}"
        cut_day = day_partition(tenant_id, before)
        query = table.query_entities(
            # (the SDK takes a parameter's name up to the next space, so none touches a parenthesis)
            "(PartitionKey ge @low and PartitionKey lt @cut ) or "
            "(PartitionKey eq @cut and RowKey gt @older )",
            parameters={"low": prefix, "cut": cut_day, "older": time_key(before) + "ffffff"},
            select=["PartitionKey", "RowKey"],
        )
        deletes = [Delete(e["PartitionKey"], e["RowKey"]) async for e in query]
        await delete_rows(table, deletes)
        return len(deletes)

    async def delete_staff(self, tenant_id: str, staff_id: str) -> None:
        """A property filter over the tenant's days (rare: a staff member's deletion)."""
        await self._delete_where(tenant_id, " and Staff eq @staff", {"staff": staff_id})

    async def delete_tenant(self, tenant_id: str) -> None:
        await self._delete_where(tenant_id, "", {})

    async def _delete_where(self, tenant_id: str, condition: str, parameters: dict[str, Any]) -> None:
        table = await self._table(tenant_id)
        prefix = f"{escape_key(tenant_id)}{USER_SEPARATOR}"
        query = table.query_entities(
            "PartitionKey ge @low and PartitionKey lt @high" + condition,
            parameters={"low": prefix, "high": prefix + _LAST_ROW, **parameters},
            select=["PartitionKey", "RowKey"],
        )
        await delete_rows(table, [Delete(e["PartitionKey"], e["RowKey"]) async for e in query])


class UnrecordedMessages:
    """`MessageLog` with the monitor switched off (`MESSAGE_MONITOR=off`): nothing is recorded or listed."""

    async def record(self, messages: Sequence[MonitoredMessage]) -> None:
        return None

    async def list(self, tenant_id: str, query: MessageQuery) -> MessagePage:
        return MessagePage([], None)

    async def get(self, tenant_id: str, message_id: str) -> MonitoredMessage | None:
        return None

    async def prune(self, tenant_id: str, before: datetime) -> int:
        return 0

    async def delete_staff(self, tenant_id: str, staff_id: str) -> None:
        return None

    async def delete_tenant(self, tenant_id: str) -> None:
        return None
