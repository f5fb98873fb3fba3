"""Mailboxes' messages as Exchange Online keeps them: folders, drafts, attachments, upload sessions,
what was "delivered", and the sending limits (README "Mail").

Ids: a message has a REST id (`AAMkA…`) that changes when the item moves folder (sending moves the
draft to Sent Items), and an immutable id (`AAkALg…`, answered under `Prefer: IdType="ImmutableId"`)
that never does. Either is accepted wherever an id is taken.
"""

from __future__ import annotations

import base64
import math
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from m365emulator.calendar.ids import new_change_key
from m365emulator.clock import Clock
from m365emulator.errors import GraphError
from m365emulator.settings import Settings

_REST_PREFIX = "AAMkAD"
_IMMUTABLE_PREFIX = "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A"

#: Well-known folder names (mailFolder docs) and their display names.
WELL_KNOWN: dict[str, str] = {
    "inbox": "Inbox",
    "drafts": "Drafts",
    "sentitems": "Sent Items",
    "deleteditems": "Deleted Items",
    "outbox": "Outbox",
    "junkemail": "Junk Email",
    "archive": "Archive",
}

NOT_FOUND_TEXT = "The specified object was not found in the store."


def item_not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", NOT_FOUND_TEXT)


def _token(raw: int = 24) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(raw)).decode().rstrip("=")


def folder_id(mailbox: str, name: str) -> str:
    """A folder's id: stable per mailbox and well-known name."""
    digest = base64.urlsafe_b64encode(f"{mailbox}:{name}".encode()).decode().rstrip("=")
    return "AQMkAD" + digest


@dataclass
class Attachment:
    id: str
    name: str
    content_type: str
    content: bytes
    is_inline: bool
    content_id: str | None
    modified: datetime

    @property
    def size(self) -> int:
        return len(self.content)

    def to_json(self, with_content: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "@odata.mediaContentType": self.content_type,
            "id": self.id,
            "lastModifiedDateTime": self.modified,
            "name": self.name,
            "contentType": self.content_type,
            "size": self.size,
            "isInline": self.is_inline,
            "contentId": self.content_id,
            "contentLocation": None,
        }
        if with_content:
            out["contentBytes"] = base64.b64encode(self.content).decode()
        return out


@dataclass
class Message:
    mailbox: str  # the owner's user id
    rest_id: str
    immutable_id: str
    folder: str  # well-known name
    fields: dict[str, Any]  # the writable Graph properties as given (subject, body, recipients, ...)
    ext: dict[str, tuple[str, str]]  # ext_key(id) -> (id as given, value)
    created: datetime
    modified: datetime
    internet_message_id: str
    conversation_id: str
    change_key: str
    sent: datetime | None = None
    attachments: list[Attachment] = field(default_factory=list)

    @property
    def is_draft(self) -> bool:
        return self.sent is None

    def recipients(self) -> list[tuple[str, str]]:
        """[(kind, address)] over to/cc/bcc; raises 400 ErrorInvalidRecipients on a malformed one."""
        out: list[tuple[str, str]] = []
        for kind in ("toRecipients", "ccRecipients", "bccRecipients"):
            for entry in self.fields.get(kind) or []:
                address = entry.get("emailAddress", {}).get("address") if isinstance(entry, dict) else None
                if not isinstance(address, str) or "@" not in address:
                    raise invalid_recipients()
                out.append((kind, address))
        return out

    def size(self) -> int:
        body = self.fields.get("body") or {}
        content = body.get("content") if isinstance(body, dict) else None
        return sum(a.size for a in self.attachments) + len(str(content or "").encode())

    def touch(self, now: datetime) -> None:
        self.modified = now
        self.change_key = new_change_key()


def message_too_large(limit: int) -> GraphError:
    return GraphError(
        413, "ErrorMessageSizeExceeded", f"The message exceeds the maximum supported size of {limit} bytes."
    )


def invalid_recipients() -> GraphError:
    return GraphError(
        400,
        "ErrorInvalidRecipients",
        "At least one recipient isn't valid., A message can't be sent because it contains no recipients.",
    )


@dataclass
class UploadSession:
    id: str
    mailbox: str
    tenant_id: str
    message_id: str  # immutable id of the message
    token: str
    name: str
    size: int
    content_type: str
    is_inline: bool
    content_id: str | None
    expires: datetime
    received: bytearray = field(default_factory=bytearray)
    attachment_id: str | None = None  # set once the last byte arrived

    def next_ranges(self) -> list[str]:
        return [] if self.attachment_id else [f"{len(self.received)}-{self.size - 1}"]


class SendingLimits:
    """Exchange Online's sending limits per mailbox on the emulator clock: messages per minute and
    recipients per (rolling) day; recipients per message is checked by the caller."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._sends: dict[str, deque[float]] = {}
        self._recipients: dict[str, deque[tuple[float, int]]] = {}

    def reset(self) -> None:
        self._sends.clear()
        self._recipients.clear()

    def check(self, mailbox: str, recipients: int) -> None:
        """Record one message to `recipients` people, or raise the 4xx that refuses it."""
        limit = self._settings.mail_recipients_per_message
        if recipients > limit:
            raise GraphError(
                400,
                "ErrorTooManyRecipients",
                f"The message has {recipients} recipients; a message can have at most {limit}.",
            )
        now = self._clock.now().timestamp()
        sends = self._sends.setdefault(mailbox, deque())
        while sends and sends[0] <= now - 60:
            sends.popleft()
        if len(sends) >= self._settings.mail_message_rate_per_minute:
            retry = max(1, math.ceil(sends[0] + 60 - now))
            raise GraphError(
                429,
                "ErrorExceededMessageLimit",
                "Message rate limit exceeded: the mailbox sent "
                f"{self._settings.mail_message_rate_per_minute} messages in the last minute.",
                {"Retry-After": str(retry)},
            )
        day = 86_400.0
        history = self._recipients.setdefault(mailbox, deque())
        while history and history[0][0] <= now - day:
            history.popleft()
        used = sum(count for _, count in history)
        if used + recipients > self._settings.mail_recipients_per_day:
            freed, retry_at = used + recipients - self._settings.mail_recipients_per_day, now + day
            for stamp, count in history:
                freed -= count
                if freed <= 0:
                    retry_at = stamp + day
                    break
            raise GraphError(
                429,
                "ErrorSubmissionQuotaExceeded",
                "Recipient rate limit exceeded: the mailbox may send to "
                f"{self._settings.mail_recipients_per_day} recipients in 24 hours.",
                {"Retry-After": str(max(1, math.ceil(retry_at - now)))},
            )
        sends.append(now)
        history.append((now, recipients))


class MailStore:
    """Every mailbox's messages, the upload sessions, the delivery log and the sending limits."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.limits = SendingLimits(settings, clock)
        self.messages: dict[str, dict[str, Message]] = {}  # mailbox -> immutable id -> message
        self._by_rest: dict[str, str] = {}  # rest id -> immutable id
        self.sessions: dict[str, UploadSession] = {}
        self.deliveries: list[dict[str, Any]] = []

    def reset(self, *, data: bool) -> None:
        self.limits.reset()
        if data:
            self.messages.clear()
            self._by_rest.clear()
            self.sessions.clear()
            self.deliveries.clear()

    # messages ------------------------------------------------------------------------------------
    def new(
        self, mailbox: str, folder: str, fields: dict[str, Any], ext: dict[str, tuple[str, str]], domain: str
    ) -> Message:
        """A message not yet in any mailbox (`keep` puts it in)."""
        now = self.clock.now()
        raw = _token()
        return Message(
            mailbox=mailbox,
            rest_id=_REST_PREFIX + raw,
            immutable_id=_IMMUTABLE_PREFIX + raw,
            folder=folder,
            fields=fields,
            ext=ext,
            created=now,
            modified=now,
            internet_message_id=f"<{secrets.token_hex(16).upper()}@{domain}>",
            conversation_id="AAQkAD" + _token(16),
            change_key=new_change_key(),
        )

    def keep(self, message: Message) -> Message:
        self.messages.setdefault(message.mailbox, {})[message.immutable_id] = message
        self._by_rest[message.rest_id] = message.immutable_id
        return message

    def copy_to(self, message: Message, sender: dict[str, Any], mailbox: str, folder: str) -> Message:
        """The recipient's own item of a delivered message: same internetMessageId and conversation,
        its own ids, from the sender, no Bcc line, no extended properties (they are the sender's)."""
        raw = _token()
        now = self.clock.now()
        fields = {k: v for k, v in message.fields.items() if k != "bccRecipients"}
        fields["from"] = sender
        return self.keep(
            Message(
                mailbox=mailbox,
                rest_id=_REST_PREFIX + raw,
                immutable_id=_IMMUTABLE_PREFIX + raw,
                folder=folder,
                fields=fields,
                ext={},
                created=now,
                modified=now,
                internet_message_id=message.internet_message_id,
                conversation_id=message.conversation_id,
                change_key=new_change_key(),
                sent=message.sent,
                attachments=list(message.attachments),
            )
        )

    def get(self, mailbox: str, message_id: str) -> Message:
        key = message_id if message_id.startswith(_IMMUTABLE_PREFIX) else self._by_rest.get(message_id)
        message = self.messages.get(mailbox, {}).get(key or "")
        if message is None:
            raise item_not_found()
        return message

    def by_immutable_id(self, mailbox: str, immutable_id: str) -> Message | None:
        return self.messages.get(mailbox, {}).get(immutable_id)

    def move(self, message: Message, folder: str) -> None:
        """Into another folder: Exchange gives the item a new REST id (the immutable one stays)."""
        self._by_rest.pop(message.rest_id, None)
        message.rest_id = _REST_PREFIX + _token()
        self._by_rest[message.rest_id] = message.immutable_id
        message.folder = folder
        message.touch(self.clock.now())

    def delete(self, message: Message) -> None:
        self.messages.get(message.mailbox, {}).pop(message.immutable_id, None)
        self._by_rest.pop(message.rest_id, None)

    def in_mailbox(self, mailbox: str, folder: str | None = None) -> list[Message]:
        mine = self.messages.get(mailbox, {}).values()
        return [m for m in mine if folder is None or m.folder == folder]

    # upload sessions -----------------------------------------------------------------------------
    def open_session(self, session: UploadSession) -> None:
        now = self.clock.now()
        for key in [k for k, s in self.sessions.items() if s.expires <= now]:
            del self.sessions[key]
        self.sessions[session.id] = session

    def session_expiry(self) -> datetime:
        return self.clock.now() + timedelta(minutes=self.settings.mail_upload_session_minutes)
