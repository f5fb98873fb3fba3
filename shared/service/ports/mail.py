"""Mail sent from a staff member's mailbox: the tracked rows, the content until it is sent, and Graph."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from shared.domain.mail import MailAttachment, MailContent, MailRecord
from shared.domain.tenants import Tenant


class MailRepository(Protocol):
    """One row per message (table `mail`)."""

    async def get(self, tenant_id: str, message_id: str) -> MailRecord | None: ...
    async def save(self, record: MailRecord) -> MailRecord:
        """Insert when `etag` is None (AlreadyExists if taken), else replace guarded by it (StaleWrite)."""
        ...

    async def unfinished(self, tenant_id: str, *, updated_before: datetime) -> list[MailRecord]:
        """The messages neither sent nor failed whose row has not changed since `updated_before`."""
        ...

    async def delete_tenant(self, tenant_id: str) -> None: ...


class MailContentStore(Protocol):
    """A message's content (subject, body, recipients, attachments) until it is sent or failed
    (Blob Storage, container `outgoing-mail`)."""

    async def put(self, tenant_id: str, message_id: str, content: MailContent) -> None: ...
    async def get(self, tenant_id: str, message_id: str) -> MailContent | None: ...
    async def delete(self, tenant_id: str, message_id: str) -> None:
        """Idempotent: gone already is fine."""
        ...

    async def delete_tenant(self, tenant_id: str) -> None: ...


class MailFolder(StrEnum):
    """Graph's well-known folder names."""

    DRAFTS = "drafts"
    OUTBOX = "outbox"
    SENT_ITEMS = "sentitems"


@dataclass(frozen=True, slots=True)
class MailItem:
    """A message in the sender's mailbox that carries the connector's property."""

    id: str
    internet_message_id: str | None = None
    attachment_names: tuple[str, ...] = ()  # a draft's attachments, when read


class MailGateway(Protocol):
    """The sender's mailbox through Graph. Every method raises RateLimited (429), MailAccessDenied (403),
    MailRejected (another 4xx on the message), MailboxUnavailable (404 on the user) and TenantAccessError
    like the calendar's gateways."""

    async def find(
        self, tenant: Tenant, graph_user_id: str, message_id: str, folder: MailFolder
    ) -> MailItem | None:
        """The message stamped with `message_id` in `folder`, if any (a draft with its attachments' names)."""
        ...

    async def create_draft(
        self,
        tenant: Tenant,
        graph_user_id: str,
        message_id: str,
        content: MailContent,
        inline: Sequence[MailAttachment],
    ) -> MailItem:
        """A draft stamped with the connector's property, `inline` attachments in the same request."""
        ...

    async def add_attachment(
        self, tenant: Tenant, graph_user_id: str, draft_id: str, attachment: MailAttachment
    ) -> None:
        """One attachment on the draft: through an upload session when it is `INLINE_ATTACHMENT_BYTES` or
        more, else a plain POST (DraftMissing when the draft is gone)."""
        ...

    async def send(self, tenant: Tenant, graph_user_id: str, draft_id: str) -> None:
        """Send the draft once, without retries: SendUncertain after a 5xx or a timeout (it may have left),
        RateLimited after a 429 (it did not), DraftMissing when the draft is gone."""
        ...

    async def delete(self, tenant: Tenant, graph_user_id: str, item_id: str) -> None:
        """Idempotent: gone already is fine."""
        ...
