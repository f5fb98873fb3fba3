"""The `consentstates` table: outstanding consent links, taken once (`ConsentStateRepository`).

Two rows per link. The callback's, in a partition named by the first characters of the state's hash
(`STATE_BUCKET_CHARS` hex digits: 4,096 partitions, the links spread evenly, the hash being random), keyed by
the hash; and the tenant's, in its partition (`~` and the tenant id, RowKey the hash), so a disconnect
deletes the tenant's links without reading another tenant's. Links written before, in the single `state`
partition, are still taken (a miss looks there too) and deleted with their tenant.
"""

from __future__ import annotations

from typing import Final

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables.aio import TableClient

from shared.adapters.storage import StorageClients
from shared.adapters.tables.rows import escape_key, etag_of, insert_entity, read_entity, required_utc
from shared.service.records import ConsentState

CONSENT_STATES: Final = "consentstates"
LEGACY_PARTITION: Final = "state"  # every link, before links were spread
STATE_BUCKET_CHARS: Final = 3
TENANT_PREFIX: Final = "~"


def state_partition(state_hash: str) -> str:
    return f"s-{state_hash[:STATE_BUCKET_CHARS]}"


def tenant_partition(tenant_id: str) -> str:
    return TENANT_PREFIX + escape_key(tenant_id)


class TableConsentStates:
    """One row per outstanding consent link, keyed by the hash of its state (never the state itself), and
    its tenant's row."""

    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage

    async def _table(self) -> TableClient:
        return await self._storage.table(CONSENT_STATES)

    async def add(self, state: ConsentState) -> None:
        table = await self._table()
        row = {"RowKey": state.state_hash, "TenantId": state.tenant_id, "ExpiresAt": state.expires_at}
        await insert_entity(table, {**row, "PartitionKey": tenant_partition(state.tenant_id)})
        await insert_entity(table, {**row, "PartitionKey": state_partition(state.state_hash)})

    async def take(self, state_hash: str) -> ConsentState | None:
        table = await self._table()
        partition = state_partition(state_hash)
        entity = await read_entity(table, partition, state_hash)
        if entity is None:
            partition = LEGACY_PARTITION
            entity = await read_entity(table, partition, state_hash)
        if entity is None:
            return None
        try:
            # Deleting with the etag makes the take one-time even when two callbacks race.
            await table.delete_entity(
                partition,
                state_hash,
                etag=etag_of(entity),
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        except HttpResponseError as error:
            if error.status_code in (404, 412):
                return None
            raise
        await table.delete_entity(tenant_partition(entity["TenantId"]), state_hash)
        return ConsentState(state_hash, entity["TenantId"], required_utc(entity["ExpiresAt"]))

    async def delete_tenant(self, tenant_id: str) -> None:
        table = await self._table()
        mine = table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": tenant_partition(tenant_id)}, select="RowKey"
        )
        for key in [e["RowKey"] async for e in mine]:
            await table.delete_entity(state_partition(key), key)
            await table.delete_entity(tenant_partition(tenant_id), key)
        legacy = table.query_entities(
            "PartitionKey eq @pk and TenantId eq @tid",
            parameters={"pk": LEGACY_PARTITION, "tid": tenant_id},
            select="RowKey",
        )
        for key in [e["RowKey"] async for e in legacy]:
            await table.delete_entity(LEGACY_PARTITION, key)
