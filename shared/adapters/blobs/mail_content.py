"""A message's content (subject, body, recipients, attachments) in Blob Storage until it is sent or failed.

Container `outgoing-mail` (created on first use; Bicep creates it too), one blob per message named
`{escaped tenant}/{escaped message id}.json`: the content as JSON, attachments base64. Deleted when the
message is sent or failed, and with the tenant's purge (a prefix listing).
"""

from __future__ import annotations

import json
from typing import Final

from azure.core.exceptions import ResourceNotFoundError

from shared.adapters.storage import TenantStorage
from shared.adapters.tables.rows import escape_key
from shared.domain.mail import MailContent

CONTAINER: Final = "outgoing-mail"


def blob_name(tenant_id: str, message_id: str) -> str:
    return f"{escape_key(tenant_id)}/{escape_key(message_id)}.json"


class BlobMailContent:
    """`MailContentStore` on Blob Storage."""

    def __init__(self, storage: TenantStorage, container: str = CONTAINER) -> None:
        self._storage = storage
        self._container = container

    async def put(self, tenant_id: str, message_id: str, content: MailContent) -> None:
        container = await (await self._storage.for_tenant(tenant_id)).container(self._container)
        data = json.dumps(content.to_json(), separators=(",", ":")).encode()
        await container.upload_blob(blob_name(tenant_id, message_id), data, overwrite=True)

    async def get(self, tenant_id: str, message_id: str) -> MailContent | None:
        container = await (await self._storage.for_tenant(tenant_id)).container(self._container)
        try:
            stream = await container.download_blob(blob_name(tenant_id, message_id))
            data = await stream.readall()
        except ResourceNotFoundError:
            return None
        return MailContent.from_json(json.loads(data))

    async def delete(self, tenant_id: str, message_id: str) -> None:
        container = await (await self._storage.for_tenant(tenant_id)).container(self._container)
        try:
            await container.delete_blob(blob_name(tenant_id, message_id))
        except ResourceNotFoundError:
            return

    async def delete_tenant(self, tenant_id: str) -> None:
        container = await (await self._storage.for_tenant(tenant_id)).container(self._container)
        names = [b.name async for b in container.list_blobs(name_starts_with=f"{escape_key(tenant_id)}/")]
        for name in names:
            try:
                await container.delete_blob(name)
            except ResourceNotFoundError:
                continue
