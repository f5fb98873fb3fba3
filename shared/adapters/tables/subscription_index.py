"""The `subscriptions` table: which user each Graph subscription serves (`SubscriptionIndex`)."""

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
    )


class TableSubscriptionIndex:
    """`SubscriptionIndex`: a point read by subscription id for the webhook; server-side filtered
    queries for the renewal timer (`expiring`) and the tenant purge (`for_tenant`). In the home account:
    a notification is matched to its user here, before the tenant is known."""

    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage

    async def _table(self) -> TableClient:
        return await self._storage.table(SUBSCRIPTIONS)

    async def get(self, subscription_id: str) -> SubscriptionRecord | None:
        try:
            entity = await (await self._table()).get_entity(escape_key(subscription_id), "")
        except ResourceNotFoundError:
            return None
        return subscription_from_entity(entity)

    async def put(self, record: SubscriptionRecord) -> None:
        await (await self._table()).upsert_entity(subscription_to_entity(record), mode=UpdateMode.REPLACE)

    async def delete(self, subscription_id: str) -> None:
        await (await self._table()).delete_entity(escape_key(subscription_id), "")

    async def _query(self, where: str, parameters: dict[str, Any]) -> list[SubscriptionRecord]:
        table = await self._table()
        query = table.query_entities(where, parameters=parameters, results_per_page=1000)
        return [subscription_from_entity(entity) async for entity in query]

    async def expiring(self, before: datetime) -> list[SubscriptionRecord]:
        """Those expiring before `before`, soonest first."""
        records = await self._query("ExpiresAt lt @before", {"before": before})
        return sorted(records, key=lambda r: (r.expires_at, r.subscription_id))

    async def for_tenant(self, tenant_id: str) -> list[SubscriptionRecord]:
        """The tenant's subscriptions, by subscription id."""
        records = await self._query("TenantId eq @tenant", {"tenant": tenant_id})
        return sorted(records, key=lambda r: r.subscription_id)
