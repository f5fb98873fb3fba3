"""The host's tasks and what the connector keeps of each (table `tasks`); how one becomes a To Do task.

A due or start is a day in the staff member's zone (or a date-time in an IANA zone, whose day it is): To Do
keeps it as the instant of that day's midnight in the zone it was written in and answers it in UTC, so the
day is written at midnight in the staff member's Windows zone and read back through the same zone; it
never moves to the day before (Pacific/Kiritimati, UTC+14) or after (Pacific/Pago_Pago, UTC-11). A
reminder and a completion time are instants: written in UTC, to the second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

TASK_LINK_APPLICATION: Final = "Host tasks (M365 connector)"  # the linkedResource's applicationName


class TaskStatus(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    WAITING_ON_OTHERS = "waiting_on_others"
    DEFERRED = "deferred"

    @property
    def graph(self) -> str:
        head, *rest = self.value.split("_")
        return head + "".join(part.title() for part in rest)

    @classmethod
    def of_graph(cls, value: str) -> TaskStatus:
        return next((s for s in cls if s.graph == value), cls.NOT_STARTED)


class TaskImportance(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class TaskState(StrEnum):
    PENDING = "pending"  # a revision not written yet
    SYNCED = "synced"  # the current revision is in To Do
    PARTIAL = "partial"  # the task is in To Do, some of its checklist is not
    FAILED = "failed"  # not written; `error` says why


@dataclass(frozen=True, slots=True)
class TaskDay:
    """A due or start: a day, or a date-time in an IANA zone (whose day it is)."""

    day: date
    at: datetime | None = None  # aware, in `zone`
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    id: str  # the host's
    title: str
    checked: bool = False


@dataclass(frozen=True, slots=True)
class HostTask:
    task_id: str
    staff_id: str
    title: str
    body: str = ""
    body_type: str = "text"  # text | html
    due: TaskDay | None = None
    start: TaskDay | None = None
    reminder_at: datetime | None = None  # aware
    importance: TaskImportance = TaskImportance.NORMAL
    status: TaskStatus = TaskStatus.NOT_STARTED
    completed_at: datetime | None = None  # aware
    categories: tuple[str, ...] = ()
    recurrence: str | None = None  # an RRULE (without DTSTART: it recurs from the due day)
    checklist: tuple[ChecklistItem, ...] = ()
    time_zone: str | None = None  # the staff member's zone for a due or start given as a day


@dataclass(frozen=True, slots=True)
class WrittenChecklistItem:
    """A checklist item as the connector wrote it: the host's id, To Do's id, and what it wrote. An empty
    To Do id is an add asked for whose answer is not in yet (`adding`): a later pass looks it up first."""

    id: str
    graph_id: str
    title: str
    checked: bool

    @property
    def adding(self) -> bool:
        return not self.graph_id


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One host task: its current revision (None: deleted) and where the connector wrote it."""

    tenant_id: str
    task_id: str
    revision: int
    task: HostTask | None
    updated_at: datetime
    state: TaskState = TaskState.PENDING
    error: str | None = None
    written_revision: int = 0  # the revision the To Do task holds (0: none written)
    staff_id: str | None = None  # whose list holds the written task
    graph_user_id: str | None = None
    list_id: str | None = None
    graph_task_id: str | None = None
    checklist: tuple[WrittenChecklistItem, ...] = ()
    written_etag: str | None = None  # the task's @odata.etag after the connector's last write
    reported_revision: int = 0  # the last revision whose outcome went on the feed
    reported_state: TaskState | None = None  # that outcome (a later, different one is told too)
    etag: str | None = field(default=None, compare=False)

    @property
    def placed(self) -> bool:
        return self.graph_task_id is not None

    @property
    def unreported(self) -> bool:
        """The revision settled on an outcome the feed has not told: its first, or one that differs from
        the one told (a failed revision a retry, the nightly run or a resync then wrote)."""
        if self.state is TaskState.PENDING:
            return False
        return self.reported_revision < self.revision or self.reported_state is not self.state


def utc_wall(instant: datetime) -> datetime:
    """An aware instant as a naive UTC wall clock, to the second."""
    return instant.astimezone(UTC).replace(tzinfo=None, microsecond=0)


def day_wall(value: TaskDay) -> datetime:
    """The naive midnight of the day (written in the staff member's zone)."""
    return datetime.combine(value.day, time())


def day_of(instant: datetime, zone: str) -> date:
    """The day an instant To Do answered falls on in `zone`."""
    return instant.astimezone(ZoneInfo(zone)).date()
