"""Mail the host sends from a staff member's mailbox: the message, its fingerprint, and its tracked state.

The content (subject, body, recipients, attachments) is `MailContent`; it lives in Blob Storage only until
the message is sent or failed. `MailRecord` is what the `mail` table keeps for good: ids, the content's
fingerprint, the recipient count, the state, attempts, times, the draft's Graph id and the sent message's
`internetMessageId`, never the text or the addresses.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

# The connector's named property on every draft it makes: the host's message id. A GUID-named String
# property like the appointments' (`APPOINTMENT_PROPERTY_ID`), looked up with $filter in Drafts, Outbox
# and Sent Items before anything is created again.
MAIL_PROPERTY_ID: Final = "String {9d3f6b2a-71c4-4e0b-8a6d-2c5e8f1b4a93} Name ConnectorMessageId"


class MailState(StrEnum):
    QUEUED = "queued"  # accepted; no send requested yet
    SENDING = "sending"  # a draft exists and a send was (or is about to be) requested
    SENT = "sent"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (MailState.SENT, MailState.FAILED)


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    address: str


@dataclass(frozen=True, slots=True)
class MailAttachment:
    name: str
    content_type: str
    content: bytes
    content_id: str | None = None
    is_inline: bool = False

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True, slots=True)
class MailContent:
    """What is sent: kept in Blob Storage until the message is sent or failed."""

    subject: str
    body_type: str  # text | html
    body: str
    to: tuple[Recipient, ...]
    cc: tuple[Recipient, ...] = ()
    bcc: tuple[Recipient, ...] = ()
    reply_to: tuple[Recipient, ...] = ()
    attachments: tuple[MailAttachment, ...] = ()
    importance: str = "normal"  # low | normal | high
    headers: tuple[tuple[str, str], ...] = ()  # X- headers, in the host's order

    @property
    def recipient_count(self) -> int:
        return len(self.to) + len(self.cc) + len(self.bcc)

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "body_type": self.body_type,
            "body": self.body,
            "to": _people(self.to),
            "cc": _people(self.cc),
            "bcc": _people(self.bcc),
            "reply_to": _people(self.reply_to),
            "attachments": [
                [a.name, a.content_type, base64.b64encode(a.content).decode(), a.content_id, a.is_inline]
                for a in self.attachments
            ],
            "importance": self.importance,
            "headers": [list(h) for h in self.headers],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MailContent:
        return cls(
            subject=data["subject"],
            body_type=data["body_type"],
            body=data["body"],
            to=_recipients(data["to"]),
            cc=_recipients(data["cc"]),
            bcc=_recipients(data["bcc"]),
            reply_to=_recipients(data["reply_to"]),
            attachments=tuple(
                MailAttachment(n, t, base64.b64decode(c), i, bool(inline))
                for n, t, c, i, inline in data["attachments"]
            ),
            importance=data["importance"],
            headers=tuple((k, v) for k, v in data["headers"]),
        )


def _people(recipients: tuple[Recipient, ...]) -> list[list[str]]:
    return [[r.name, r.address] for r in recipients]


def _recipients(raw: list[list[str]]) -> tuple[Recipient, ...]:
    return tuple(Recipient(name, address) for name, address in raw)


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """The host's message as the API took it; `message_id` is the host's idempotency key."""

    message_id: str
    from_staff_id: str
    content: MailContent
    save_to_sent_items: bool = True

    def fingerprint(self) -> str:
        """SHA-256 over everything the host sent (attachments by their bytes): same content, same print."""
        digest = hashlib.sha256()
        head = {"from": self.from_staff_id, "save": self.save_to_sent_items, **self.content.to_json()}
        head["attachments"] = [
            [a.name, a.content_type, hashlib.sha256(a.content).hexdigest(), a.content_id, a.is_inline]
            for a in self.content.attachments
        ]
        digest.update(json.dumps(head, sort_keys=True, separators=(",", ":")).encode())
        return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class MailRecord:
    """A message's row (table `mail`): nothing of its text or addresses."""

    tenant_id: str
    message_id: str
    fingerprint: str
    staff_id: str
    recipients: int
    save_to_sent_items: bool
    state: MailState
    created_at: datetime
    updated_at: datetime
    attempts: int = 0  # tries that reached Graph (throttled ones included)
    graph_user_id: str | None = None
    draft_id: str | None = None  # the draft in the sender's mailbox (its Graph id)
    send_requested_at: datetime | None = None  # the last send call whose outcome may not be known
    sent_at: datetime | None = None
    internet_message_id: str | None = None
    error: str | None = None
    sent_copy_removed: bool = False  # save_to_sent_items=false: the Sent Items copy was deleted
    etag: str | None = field(default=None, compare=False)
