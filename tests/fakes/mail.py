"""Fakes of the mail ports: the `mail` rows, the content store, and the senders' mailboxes in Graph.

`FakeOutlookMail` keeps Graph's contract for drafts: a draft is created in Drafts (stamped with the
connector's property), attachments are added to it, sending it moves it out of Drafts (to Outbox, then Sent
Items, at once or when `file_sent` runs, as Exchange does asynchronously) and delivers one copy per send;
sending a draft that is no longer in Drafts is a 404 (`DraftMissing`). Faults are queued per operation:
`throttle` (429: nothing happened), `lost` (5xx after the effect: the message left), `refused` (5xx before
it), `denied` (403).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from shared.domain.mail import MailAttachment, MailContent, MailRecord
from shared.domain.tenants import Tenant
from shared.service.errors import (
    AlreadyExists,
    DraftMissing,
    MailAccessDenied,
    MailboxUnavailable,
    RateLimited,
    SendUncertain,
    StaleWrite,
)
from shared.service.ports.mail import MailFolder, MailItem

_etags = itertools.count(1)
_ids = itertools.count(1)


class FakeMailRows:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], MailRecord] = {}

    async def get(self, tenant_id: str, message_id: str) -> MailRecord | None:
        return self.rows.get((tenant_id, message_id))

    async def save(self, record: MailRecord) -> MailRecord:
        key = (record.tenant_id, record.message_id)
        current = self.rows.get(key)
        if record.etag is None:
            if current is not None:
                raise AlreadyExists(record.message_id)
        elif current is None or current.etag != record.etag:
            raise StaleWrite(record.message_id)
        saved = replace(record, etag=f"m{next(_etags)}")
        self.rows[key] = saved
        return saved

    async def unfinished(self, tenant_id: str, *, updated_before: datetime) -> list[MailRecord]:
        return [
            r
            for (t, _), r in self.rows.items()
            if t == tenant_id and not r.state.final and r.updated_at < updated_before
        ]

    async def delete_tenant(self, tenant_id: str) -> None:
        for key in [k for k in self.rows if k[0] == tenant_id]:
            del self.rows[key]


class FakeMailContent:
    def __init__(self) -> None:
        self.blobs: dict[tuple[str, str], dict[str, object]] = {}

    async def put(self, tenant_id: str, message_id: str, content: MailContent) -> None:
        self.blobs[(tenant_id, message_id)] = content.to_json()  # stored as the adapter stores it

    async def get(self, tenant_id: str, message_id: str) -> MailContent | None:
        raw = self.blobs.get((tenant_id, message_id))
        return None if raw is None else MailContent.from_json(raw)

    async def delete(self, tenant_id: str, message_id: str) -> None:
        self.blobs.pop((tenant_id, message_id), None)

    async def delete_tenant(self, tenant_id: str) -> None:
        for key in [k for k in self.blobs if k[0] == tenant_id]:
            del self.blobs[key]


@dataclass
class FakeMessage:
    id: str
    stamp: str  # the connector's property: the host's message id
    internet_message_id: str
    subject: str
    recipients: int
    attachments: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Delivered:
    mailbox: str
    stamp: str
    internet_message_id: str
    subject: str
    attachments: list[tuple[str, int]]


class FakeOutlookMail:
    """Every mailbox's Drafts, Outbox and Sent Items, what was delivered, and queued faults."""

    def __init__(self) -> None:
        self.folders: dict[tuple[str, MailFolder], dict[str, FakeMessage]] = {}
        self.delivered: list[Delivered] = []
        self.faults: dict[str, list[str]] = {}  # operation -> faults, first first
        self.file_at_once = True  # False: a sent draft waits in Outbox until `file_sent`
        self.draft_ids_known = True  # False: drafts carry no internetMessageId until sent
        self.requests = 0
        self.uploads = 0  # attachments added through upload sessions
        self.missing_mailboxes: set[str] = set()

    def fail(self, operation: str, *faults: str) -> None:
        self.faults.setdefault(operation, []).extend(faults)

    def folder(self, user: str, folder: MailFolder) -> dict[str, FakeMessage]:
        return self.folders.setdefault((user, folder), {})

    def copies(self, stamp: str) -> int:
        return sum(1 for d in self.delivered if d.stamp == stamp)

    def file_sent(self) -> None:
        """Exchange files what is in Outbox: delivered, and in Sent Items."""
        for (user, folder), messages in list(self.folders.items()):
            if folder is MailFolder.OUTBOX:
                for message in list(messages.values()):
                    del messages[message.id]
                    self._deliver(user, message)

    def _deliver(self, user: str, message: FakeMessage) -> None:
        self.folder(user, MailFolder.SENT_ITEMS)[message.id] = message
        self.delivered.append(
            Delivered(
                user, message.stamp, message.internet_message_id, message.subject, list(message.attachments)
            )
        )

    def _enter(self, operation: str, user: str) -> str | None:
        self.requests += 1
        if user in self.missing_mailboxes:
            raise MailboxUnavailable("the user has no Exchange Online mailbox")
        queued = self.faults.get(operation) or []
        fault = queued.pop(0) if queued else None
        if fault == "throttle":
            raise RateLimited(7, "429 ApplicationThrottled: MailboxConcurrency")
        if fault == "refused":
            raise SendUncertain("503 ServiceUnavailable")
        if fault == "denied":
            raise MailAccessDenied("403 ErrorAccessDenied: Access is denied")
        return fault

    async def find(
        self, tenant: Tenant, graph_user_id: str, message_id: str, folder: MailFolder
    ) -> MailItem | None:
        self._enter("find", graph_user_id)
        for message in self.folder(graph_user_id, folder).values():
            if message.stamp == message_id:
                known = folder is not MailFolder.DRAFTS or self.draft_ids_known
                return MailItem(
                    message.id,
                    message.internet_message_id if known else None,
                    tuple(name for name, _ in message.attachments),
                )
        return None

    async def create_draft(
        self,
        tenant: Tenant,
        graph_user_id: str,
        message_id: str,
        content: MailContent,
        inline: Sequence[MailAttachment],
    ) -> MailItem:
        fault = self._enter("create", graph_user_id)
        number = next(_ids)
        message = FakeMessage(
            f"draft-{number}",
            message_id,
            f"<{number}@fake.example>",
            content.subject,
            content.recipient_count,
            [(a.name, a.size) for a in inline],
        )
        self.folder(graph_user_id, MailFolder.DRAFTS)[message.id] = message
        if fault == "lost":
            raise RateLimited(5, "503 after the draft was made")
        known = message.internet_message_id if self.draft_ids_known else None
        return MailItem(message.id, known, tuple(a.name for a in inline))

    async def add_attachment(
        self, tenant: Tenant, graph_user_id: str, draft_id: str, attachment: MailAttachment
    ) -> None:
        fault = self._enter("attach", graph_user_id)
        draft = self.folder(graph_user_id, MailFolder.DRAFTS).get(draft_id)
        if draft is None:
            raise DraftMissing(draft_id)
        self.uploads += 1
        draft.attachments.append((attachment.name, attachment.size))
        if fault == "lost":
            raise RateLimited(5, "503 after the attachment was added")

    async def send(self, tenant: Tenant, graph_user_id: str, draft_id: str) -> None:
        fault = self._enter("send", graph_user_id)
        draft = self.folder(graph_user_id, MailFolder.DRAFTS).pop(draft_id, None)
        if draft is None:
            raise DraftMissing(draft_id)
        if self.file_at_once:
            self._deliver(graph_user_id, draft)
        else:
            self.folder(graph_user_id, MailFolder.OUTBOX)[draft.id] = draft
        if fault == "lost":
            raise SendUncertain("503 ServiceUnavailable (the message left)")

    async def delete(self, tenant: Tenant, graph_user_id: str, item_id: str) -> None:
        self._enter("delete", graph_user_id)
        for (user, _), messages in self.folders.items():
            if user == graph_user_id:
                messages.pop(item_id, None)
