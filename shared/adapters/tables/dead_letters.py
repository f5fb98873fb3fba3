"""The `deliveries` table: dead letters, feed ranges the host webhook never took (`DeadLetterRepository`)."""

from __future__ import annotations

from typing import Final

from azure.data.tables import UpdateMode

from shared.adapters.storage import TenantStorage
from shared.adapters.tables.rows import TableAdapter, delete_partition, required_utc, sequence_key
from shared.service.records import DeadLetter

DELIVERIES: Final = "deliveries"
MAX_REASON: Final = 2000  # a dead letter's reason, in characters (a string property holds 64 KiB)


class TableDeadLetters(TableAdapter):
    """`DeadLetterRepository`: one partition per tenant, rows in sequence order."""

    def __init__(self, storage: TenantStorage) -> None:
        super().__init__(storage, DELIVERIES)

    async def add(self, letter: DeadLetter) -> None:
        entity = {
            "PartitionKey": letter.tenant_id,
            "RowKey": sequence_key(letter.first_sequence),
            "LastSequence": letter.last_sequence,
            "Attempts": letter.attempts,
            "Reason": letter.reason[:MAX_REASON],
            "FailedAt": letter.failed_at,
        }
        await (await self._table(letter.tenant_id)).upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def list(self, tenant_id: str) -> list[DeadLetter]:
        table = await self._table(tenant_id)
        query = table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": tenant_id}, results_per_page=1000
        )
        return [
            DeadLetter(
                tenant_id=tenant_id,
                first_sequence=int(e["RowKey"]),
                last_sequence=int(e["LastSequence"]),
                attempts=int(e["Attempts"]),
                reason=e.get("Reason") or "",
                failed_at=required_utc(e["FailedAt"]),
            )
            async for e in query
        ]

    async def delete(self, tenant_id: str, first_sequence: int) -> None:
        await (await self._table(tenant_id)).delete_entity(tenant_id, sequence_key(first_sequence))

    async def delete_tenant(self, tenant_id: str) -> None:
        await delete_partition(await self._table(tenant_id), tenant_id)
