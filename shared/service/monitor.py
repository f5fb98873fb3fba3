"""The message monitor: what went to Outlook (`push`), what came back (`pull`) and every post to the host's
webhook (`delivery`), per tenant and staff member, kept `monitor_retention_days` (default 14).

Each recording site adds one small row through `record`, in the service that did the work (the write job,
the mail send, the sync run, the delivery): a blind insert, never read first, and never allowed to fail
the work it describes (a storage error is logged). A message's id orders the tenant's messages newest
first: the inverted millisecond of its time, then six random hex digits (`new_message_id`), so `since`
and `cursor` are RowKey ranges.

Task writes (To Do) record `push` messages of kind `task`, and the list's sync runs `pull` messages whose kind
starts with `tasks` (`tasks_notification`, `tasks_resync`, ...), keyed by the list's subscription id.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Protocol

from shared.observability import get_logger
from shared.service.records import Change

log = get_logger("monitor")

_MAX_MS: Final = 10**13 - 1  # the inverted time's ceiling: 13 digits hold every millisecond to 2286
MESSAGE_ID: Final = re.compile(r"[0-9]{13}[0-9a-f]{6}")
MAX_DETAIL_CHARS: Final = 2000  # a message's detail as stored (JSON), cut beyond this
MAX_SEQUENCES: Final = 50  # sequence numbers listed in a pull's detail; a longer run gives its range
DEFAULT_PAGE: Final = 100


class Direction(StrEnum):
    PUSH = "push"  # host to Outlook: an appointment, task or mail write
    PULL = "pull"  # Outlook to host: a notification's or a resync's sync run
    DELIVERY = "delivery"  # a post of the feed to the host's webhook


class MessageStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"  # final: nothing will try again by itself (a retry can)
    RETRYING = "retrying"  # throttled or refused; queued again
    HELD = "held"  # a delivery held by the tenant's admin; released later, in order


class PushKind(StrEnum):
    APPOINTMENT = "appointment"
    MAIL = "mail"
    TASK = "task"  # To Do: a host task's write


def new_message_id(at: datetime) -> str:
    """Newest first: the inverted epoch millisecond, then six random hex digits."""
    millis = int(at.astimezone(UTC).timestamp() * 1000)
    return f"{_MAX_MS - millis:013d}{secrets.token_hex(3)}"


def time_key(at: datetime) -> str:
    """The RowKey prefix of the messages of `at`'s millisecond (messages of later times sort before)."""
    return f"{_MAX_MS - int(at.astimezone(UTC).timestamp() * 1000):013d}"


def message_time(message_id: str) -> datetime:
    """When the message of this id was recorded (to the millisecond)."""
    return datetime.fromtimestamp((_MAX_MS - int(message_id[:13])) / 1000, UTC)


@dataclass(frozen=True, slots=True)
class MonitoredMessage:
    tenant_id: str
    direction: Direction
    kind: str  # push: appointment, mail, task; pull: the sync job's kind; delivery: deliver
    status: MessageStatus
    key: str  # push: the host's key; pull: the subscription id; delivery: the delivery id
    started_at: datetime
    at: datetime  # when it ended (its id's time)
    attempts: int = 1
    staff_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)  # Graph ids, counts, sequences, status, error
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class MessageQuery:
    since: datetime
    staff_id: str | None = None
    direction: Direction | None = None
    status: MessageStatus | None = None
    cursor: str | None = None  # the last message id of the previous page
    limit: int = DEFAULT_PAGE
    until: datetime | None = None  # the newest time read (now) when there is no cursor

    def admits(self, message: MonitoredMessage) -> bool:
        return (
            (self.staff_id is None or message.staff_id == self.staff_id)
            and (self.direction is None or message.direction is self.direction)
            and (self.status is None or message.status is self.status)
        )


@dataclass(frozen=True, slots=True)
class MessagePage:
    messages: list[MonitoredMessage]
    next_cursor: str | None


def message(
    tenant_id: str,
    direction: Direction,
    kind: str,
    status: MessageStatus,
    key: str,
    *,
    started_at: datetime,
    at: datetime,
    staff_id: str | None = None,
    attempts: int = 1,
    **detail: Any,
) -> MonitoredMessage:
    """A message to record, its id from its end time; detail members that are None are left out."""
    return MonitoredMessage(
        tenant_id,
        direction,
        kind,
        status,
        key,
        started_at,
        at,
        attempts,
        staff_id,
        {name: value for name, value in detail.items() if value is not None},
        new_message_id(at),
    )


class Recorder(Protocol):
    """The part of the `MessageLog` port that `record` uses."""

    async def record(self, messages: Sequence[MonitoredMessage]) -> None: ...


async def record(store: Recorder, messages: Sequence[MonitoredMessage]) -> None:
    """Store the messages; a failure is logged, never raised (the work they describe is done)."""
    if not messages:
        return
    try:
        await store.record(messages)
    except Exception as error:
        log.warning("%d monitor message(s) not recorded: %s", len(messages), error)


def sequences_detail(sequences: Sequence[int]) -> dict[str, Any]:
    """The sequence numbers a run published: listed, or their range when there are many."""
    if not sequences:
        return {}
    if len(sequences) <= MAX_SEQUENCES:
        return {"sequences": list(sequences)}
    return {"first_sequence": sequences[0], "last_sequence": sequences[-1], "published": len(sequences)}


def retention_cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


@dataclass(frozen=True, slots=True)
class Pulled:
    """What a sync run read and published, for the monitor."""

    subscription_id: str | None
    read: str  # "full" or "delta"
    items: int  # what the read found
    requests: int
    published: Sequence[Change]
    held: str | None = None  # the mass-deletion guard's reason

    def detail(self) -> dict[str, Any]:
        sequences = [c.sequence for c in self.published if c.sequence is not None]
        types = sorted({c.type for c in self.published})
        return {
            "read": self.read,
            "found": self.items,
            "requests": self.requests,
            "changes": len(self.published),
            "types": types or None,
            **sequences_detail(sequences),
        }


def pull(
    tenant_id: str,
    kind: str,
    status: MessageStatus,
    *,
    started_at: datetime,
    at: datetime,
    staff_id: str,
    attempts: int,
    subscription_id: str | None,
    pulled: Pulled | None,
    error: str | None,
) -> MonitoredMessage:
    """A sync run's `pull` message (the calendar's or the To Do list's), keyed by the subscription it
    reads for: what it read and published when it got that far, its error otherwise."""
    subscription = pulled.subscription_id if pulled and pulled.subscription_id else subscription_id
    return message(
        tenant_id,
        Direction.PULL,
        kind,
        status,
        subscription or "",
        started_at=started_at,
        at=at,
        staff_id=staff_id,
        attempts=attempts,
        error=error,
        **(pulled.detail() if pulled else {}),
    )
