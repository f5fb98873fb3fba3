"""Microsoft To Do tasks as the connector reads them from a staff member's list: typed, with a content hash.

The Graph edge (`shared/adapters/graph/task_changes.py`) parses a tasks delta page into these models;
nothing above it touches Graph's dictionaries. Dates keep the day Outlook shows: To Do keeps a due or
start date as midnight of that day in the zone it was set in and answers the instant in UTC, so the
edge reads it as that instant's date in the user's own zone, and it never shifts a day
(Pacific/Kiritimati, UTC+14, and Pacific/Pago_Pago, UTC-11, alike). Reminders and completion times are
instants (aware UTC).

A task is the host's when it carries a `linkedResource` whose `applicationName` is the connector's
(`TASK_LINK_APPLICATION`): its `externalId` is the host's task id (contract §8).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Final, TypeAlias

from shared.domain.tasks import TASK_LINK_APPLICATION as HOST_TASK_APPLICATION

# The `applicationName` of the linkedResource the connector puts on each task it writes (the write side's,
# `shared/domain/tasks.py`); the resource's `externalId` is the host's task id.
TASK_LINK_APPLICATION: Final = HOST_TASK_APPLICATION
# A status the write side noted before the task was read: its content is taken from the first read.
UNOBSERVED: Final = ""
BODY_LIMIT: Final = 32_000  # characters of a task's body the host receives (as for an event's)
# Tasks never age out of a window: their stored status carries this as its end (`ItemStatus.ends_at`).
NEVER_ENDS: Final = datetime(9999, 12, 31, tzinfo=UTC)


class TaskStatus(StrEnum):
    """To Do's status, in the host's words."""

    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    WAITING_ON_OTHERS = "waiting_on_others"
    DEFERRED = "deferred"


GRAPH_STATUSES: Final = {
    "notStarted": TaskStatus.NOT_STARTED,
    "inProgress": TaskStatus.IN_PROGRESS,
    "completed": TaskStatus.COMPLETED,
    "waitingOnOthers": TaskStatus.WAITING_ON_OTHERS,
    "deferred": TaskStatus.DEFERRED,
}


class RemovalReason(StrEnum):
    """Why a task left the list: deleted, or moved to another list (To Do gives a moved task a new id; the
    old one's delta entry says `@removed` with OData's reason `changed`, a deletion says `deleted`)."""

    DELETED = "deleted"
    MOVED = "moved"


@dataclass(frozen=True, slots=True)
class OutlookTask:
    """One task in the staff member's list, as a tasks delta read reports it."""

    id: str
    change_key: str | None  # the task's @odata.etag
    title: str
    body: str
    body_type: str  # text | html
    status: TaskStatus
    importance: str  # low | normal | high
    due: date | None
    start: date | None
    reminder_at: datetime | None
    completed_at: datetime | None
    categories: tuple[str, ...]
    recurrence: dict[str, Any] | None  # To Do's patternedRecurrence, as Graph sent it
    created_at: datetime | None
    last_modified: datetime | None
    host_task_id: str | None = None  # the externalId of the connector's linkedResource

    def content_hash(self) -> str:
        """Everything the host can see; equal hashes mean nothing the host cares about changed."""
        parts = (
            self.title,
            self.body,
            self.body_type,
            self.status.value,
            self.importance,
            _text(self.due),
            _text(self.start),
            _text(self.reminder_at),
            _text(self.completed_at),
            "\x1f".join(self.categories),
            repr(sorted((self.recurrence or {}).items())),
            self.host_task_id or "",
        )
        return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()

    def details(self) -> dict[str, Any]:
        """What the host is told of the task."""
        return {
            **self.private(),
            "title": self.title,
            "body": {
                "content_type": self.body_type,
                "content": self.body[:BODY_LIMIT],
                "truncated": len(self.body) > BODY_LIMIT,
            },
            "importance": self.importance,
            "reminder_at": _text(self.reminder_at),
            "categories": list(self.categories),
            "recurrence": self.recurrence,
            "created_at": _text(self.created_at),
            "last_modified": _text(self.last_modified),
        }

    def private(self) -> dict[str, Any]:
        """What the host is told of the task in privacy mode: its state and days, no words."""
        return {
            "id": self.id,
            "status": self.status.value,
            "due": _text(self.due),
            "start": _text(self.start),
            "completed_at": _text(self.completed_at),
        }


@dataclass(frozen=True, slots=True)
class RemovedTask:
    """A tasks delta's `@removed` entry."""

    id: str
    reason: RemovalReason = RemovalReason.DELETED


TaskItem: TypeAlias = OutlookTask | RemovedTask


def _text(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()
