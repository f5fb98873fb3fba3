"""The `subscriptions` table: which user each Graph subscription serves (`SubscriptionIndex`).

Two rows per subscription, each the whole record: the webhook's, alone in the subscription's partition
(the escaped subscription id, RowKey empty: a point read per notification), and the tenant's, in the
tenant's partition (`~` and the escaped tenant id, RowKey the escaped subscription id): the renewal timer
and the purge read their tenant's partition, never another tenant's rows. `~` starts no escaped key, so
the two kinds never share a partition.

Rows of the older layout (the webhook's row only) get their tenant row from a one-off backfill the app runs
itself: the first `for_tenant` of a worker reads the marker row, and while it is missing one worker scans
the table once, writes the missing tenant rows, then the marker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters.storage import StorageClients
from shared.adapters.tables.rows import as_utc, escape_key, etag_of, required_utc, unescape_key
from shared.service.records import SubscriptionRecord, Watched

SUBSCRIPTIONS: Final = "subscriptions"
TENANT_PREFIX: Final = "~"
LAYOUT_PARTITION: Final = "~~layout"  # the marker: every row has its tenant row (sorts after every tenant)
LAYOUT_ROW: Final = "tenant-rows"


def tenant_partition(tenant_id: str) -> str:
    return TENANT_PREFIX + escape_key(tenant_id)


def tenant_entity(record: SubscriptionRecord) -> dict[str, Any]:
    return {
        **subscription_to_entity(record),
        "PartitionKey": tenant_partition(record.tenant_id),
        "RowKey": escape_key(record.subscription_id),
    }


def subscription_to_entity(record: SubscriptionRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": escape_key(record.subscription_id),
        "RowKey": "",
        "SubscriptionId": record.subscription_id,
        "TenantId": record.tenant_id,
        "StaffId": record.staff_id,
        "GraphUserId": record.graph_user_id,
        "ExpiresAt": record.expires_at,
        "LastNotifiedAt": record.last_notified_at,
        "Watches": None if record.watches is Watched.EVENTS else record.watches.value,  # rows before: events
        "KeyVersion": record.key_version,
    }
    return {name: value for name, value in entity.items() if value is not None}


def subscription_from_entity(entity: Any) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=entity.get("SubscriptionId") or unescape_key(entity["PartitionKey"]),
        tenant_id=entity["TenantId"],
        staff_id=entity["StaffId"],
        graph_user_id=entity["GraphUserId"],
        expires_at=required_utc(entity["ExpiresAt"]),
        last_notified_at=as_utc(entity.get("LastNotifiedAt")),
        etag=etag_of(entity),
        watches=Watched(entity.get("Watches") or Watched.EVENTS),
        key_version=entity.get("KeyVersion"),
    )


class TableSubscriptionIndex:
    """`SubscriptionIndex`: a point read by subscription id for the webhook; the tenant's partition for
    the renewal timer and the tenant purge (`for_tenant`); a filtered scan for `expiring` (no caller in
    the app: the renewal goes tenant by tenant). In the home account: a notification is matched to its
    user here, before the tenant is known."""

    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage
        self._backfilled = False  # the marker seen by this worker

    async def _table(self) -> TableClient:
        return await self._storage.table(SUBSCRIPTIONS)

    async def get(self, subscription_id: str) -> SubscriptionRecord | None:
        try:
            entity = await (await self._table()).get_entity(escape_key(subscription_id), "")
        except ResourceNotFoundError:
            return None
        return subscription_from_entity(entity)

    async def put(self, record: SubscriptionRecord) -> None:
        """The tenant's row first: a crash in between leaves a tenant row the renewal confirms with Graph
        (and removes), never a subscription the renewal cannot see."""
        table = await self._table()
        await table.upsert_entity(tenant_entity(record), mode=UpdateMode.REPLACE)
        await table.upsert_entity(subscription_to_entity(record), mode=UpdateMode.REPLACE)

    async def delete(self, subscription_id: str) -> None:
        table = await self._table()
        found = await self.get(subscription_id)
        if found is not None:
            await table.delete_entity(escape_key(subscription_id), "")
            await table.delete_entity(tenant_partition(found.tenant_id), escape_key(subscription_id))

    async def _query(self, where: str, parameters: dict[str, Any]) -> list[SubscriptionRecord]:
        table = await self._table()
        query = table.query_entities(where, parameters=parameters, results_per_page=1000)
        return [subscription_from_entity(entity) async for entity in query]

    async def expiring(self, before: datetime) -> list[SubscriptionRecord]:
        """Those expiring before `before`, soonest first (the webhook's rows: a scan of the table)."""
        records = await self._query("RowKey eq @row and ExpiresAt lt @before", {"row": "", "before": before})
        return sorted(records, key=lambda r: (r.expires_at, r.subscription_id))

    async def for_tenant(self, tenant_id: str) -> list[SubscriptionRecord]:
        """The tenant's subscriptions, by subscription id: its partition only."""
        await self._backfill()
        records = await self._query("PartitionKey eq @pk", {"pk": tenant_partition(tenant_id)})
        return sorted(records, key=lambda r: r.subscription_id)

    async def _backfill(self) -> None:
        """Once per deployment: a tenant row for every webhook row written before tenant rows existed."""
        if self._backfilled:
            return
        table = await self._table()
        try:
            await table.get_entity(LAYOUT_PARTITION, LAYOUT_ROW)
        except ResourceNotFoundError:
            legacy = table.query_entities("RowKey eq @row", parameters={"row": ""}, results_per_page=1000)
            async for entity in legacy:
                record = subscription_from_entity(entity)
                await table.upsert_entity(tenant_entity(record), mode=UpdateMode.REPLACE)
            await table.upsert_entity({"PartitionKey": LAYOUT_PARTITION, "RowKey": LAYOUT_ROW})
        self._backfilled = True
