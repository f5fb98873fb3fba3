"""Table Storage for the messages sent from staff mailboxes (table `mail`).

One row per message: partition = escaped tenant id, row = escaped message id. Only ids, the content's
fingerprint, the recipient count, the state, attempts, times, the draft's Graph id and the sent message's
internetMessageId: never the subject, the body or an address (the content is in Blob Storage until the
message is sent or failed, `blobs/mail_content.py`). Replaces are guarded by the entity's etag.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from shared.adapters.storage import TenantStorage
from shared.adapters.tables.rows import (
    TableAdapter,
    as_utc,
    delete_partition,
    escape_key,
    etag_of,
    read_entity,
    required_utc,
    without_none,
    write_entity,
)
from shared.domain.mail import MailRecord, MailState

MAIL: Final = "mail"


def mail_to_entity(record: MailRecord) -> dict[str, Any]:
    return without_none(
        {
            "PartitionKey": escape_key(record.tenant_id),
            "RowKey": escape_key(record.message_id),
            "TenantId": record.tenant_id,
            "MessageId": record.message_id,
            "Fingerprint": record.fingerprint,
            "StaffId": record.staff_id,
            "Recipients": record.recipients,
            "SaveToSentItems": record.save_to_sent_items,
            "State": record.state.value,
            "Attempts": record.attempts,
            "CreatedAt": record.created_at,
            "UpdatedAt": record.updated_at,
            "GraphUserId": record.graph_user_id,
            "DraftId": record.draft_id,
            "SendRequestedAt": record.send_requested_at,
            "SentAt": record.sent_at,
            "InternetMessageId": record.internet_message_id,
            "Error": record.error,
            "SentCopyRemoved": record.sent_copy_removed,
        }
    )


def mail_from_entity(entity: Any) -> MailRecord:
    return MailRecord(
        tenant_id=entity["TenantId"],
        message_id=entity["MessageId"],
        fingerprint=entity["Fingerprint"],
        staff_id=entity["StaffId"],
        recipients=int(entity["Recipients"]),
        save_to_sent_items=bool(entity.get("SaveToSentItems", True)),
        state=MailState(entity["State"]),
        created_at=required_utc(entity["CreatedAt"]),
        updated_at=required_utc(entity["UpdatedAt"]),
        attempts=int(entity.get("Attempts") or 0),
        graph_user_id=entity.get("GraphUserId"),
        draft_id=entity.get("DraftId"),
        send_requested_at=as_utc(entity.get("SendRequestedAt")),
        sent_at=as_utc(entity.get("SentAt")),
        internet_message_id=entity.get("InternetMessageId"),
        error=entity.get("Error"),
        sent_copy_removed=bool(entity.get("SentCopyRemoved", False)),
        etag=etag_of(entity),
    )


class TableMail(TableAdapter):
    """`MailRepository` on Table Storage."""

    def __init__(self, storage: TenantStorage) -> None:
        super().__init__(storage, MAIL)

    async def get(self, tenant_id: str, message_id: str) -> MailRecord | None:
        entity = await read_entity(
            await self._table(tenant_id), escape_key(tenant_id), escape_key(message_id)
        )
        return None if entity is None else mail_from_entity(entity)

    async def save(self, record: MailRecord) -> MailRecord:
        etag = await write_entity(await self._table(record.tenant_id), mail_to_entity(record), record.etag)
        return replace(record, etag=etag)

    async def unfinished(self, tenant_id: str, *, updated_before: datetime) -> list[MailRecord]:
        table = await self._table(tenant_id)
        query = table.query_entities(
            "PartitionKey eq @pk and State ne @sent and State ne @failed and UpdatedAt lt @before",
            parameters={
                "pk": escape_key(tenant_id),
                "sent": MailState.SENT.value,
                "failed": MailState.FAILED.value,
                "before": updated_before,
            },
            results_per_page=1000,
        )
        return [mail_from_entity(entity) async for entity in query]

    async def delete_tenant(self, tenant_id: str) -> None:
        await delete_partition(await self._table(tenant_id), escape_key(tenant_id))
