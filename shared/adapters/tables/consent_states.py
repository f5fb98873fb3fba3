"""The `consentstates` table: outstanding consent links, taken once (`ConsentStateRepository`)."""

from __future__ import annotations

from typing import Final

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables.aio import TableClient

from shared.adapters.storage import StorageClients
from shared.adapters.tables.rows import etag_of, insert_entity, required_utc
from shared.service.records import ConsentState

CONSENT_STATES: Final = "consentstates"
STATE_PARTITION: Final = "state"


class TableConsentStates:
    """One row per outstanding consent link, keyed by the hash of its state (never the state itself)."""

    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage

    async def _table(self) -> TableClient:
        return await self._storage.table(CONSENT_STATES)

    async def add(self, state: ConsentState) -> None:
        await insert_entity(
            await self._table(),
            {
                "PartitionKey": STATE_PARTITION,
                "RowKey": state.state_hash,
                "TenantId": state.tenant_id,
                "ExpiresAt": state.expires_at,
            },
        )

    async def take(self, state_hash: str) -> ConsentState | None:
        table = await self._table()
        try:
            entity = await table.get_entity(STATE_PARTITION, state_hash)
        except ResourceNotFoundError:
            return None
        try:
            # Deleting with the etag makes the take one-time even when two callbacks race.
            await table.delete_entity(
                STATE_PARTITION,
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
        return ConsentState(state_hash, entity["TenantId"], required_utc(entity["ExpiresAt"]))

    async def delete_tenant(self, tenant_id: str) -> None:
        table = await self._table()
        query = table.query_entities(
            "PartitionKey eq @pk and TenantId eq @tid",
            parameters={"pk": STATE_PARTITION, "tid": tenant_id},
            select="RowKey",
        )
        for key in [e["RowKey"] async for e in query]:
            await table.delete_entity(STATE_PARTITION, key)
