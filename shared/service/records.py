"""The records the ports speak (queries, pages, feed entries, Graph answers, stored indexes), frozen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any, Final

from shared.domain.appointments import Recurrence, WrittenShape
from shared.domain.calendar import DeltaItem, OutlookEvent
from shared.domain.outlook_tasks import TaskItem
from shared.domain.users import UserRecord


@dataclass(frozen=True, slots=True)
class StoredSecret:
    """One version of a Key Vault secret. Its `repr` leaves the value out (never logged)."""

    value: str
    version: str

    def __repr__(self) -> str:
        return f"StoredSecret(version={self.version!r})"


@dataclass(frozen=True, slots=True)
class UserQuery:
    match: str | None = None
    state: str | None = None
    teams: str | None = None  # the Teams status
    switches: tuple[tuple[str, bool], ...] = ()  # (switch, on): every one must hold
    search: str | None = None
    sort: str = "display_name"
    descending: bool = False
    page_size: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class UserPage:
    users: list[UserRecord]
    next_cursor: str | None
    total: int


@dataclass(frozen=True, slots=True)
class ConsentState:
    """A one-time, expiring `state` for the admin-consent redirect, bound to one tenant."""

    state_hash: str
    tenant_id: str
    expires_at: datetime
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of a tenant's change feed (and of the host webhook)."""

    type: str
    tenant_id: str
    data: dict[str, Any]
    occurred_at: datetime
    staff_id: str | None = None
    sequence: int | None = None  # assigned by the feed


@dataclass(frozen=True, slots=True)
class Announcement:
    """Changes a sync run is about to publish, stored with the statuses they follow from (an outbox): a
    run that finds one left by a run that died publishes it first. `key` names it on the feed, which
    appends a key once."""

    key: str
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class DeltaRead:
    """One complete delta round of a mailbox's calendar window (every page, in order)."""

    items: list[DeltaItem]
    delta_link: str
    requests: int = 1  # Graph requests it took


@dataclass(frozen=True, slots=True)
class TaskDeltaRead:
    """One complete delta round of a To Do list (every page, in order)."""

    items: list[TaskItem]
    delta_link: str
    requests: int = 1  # Graph requests it took


@dataclass(frozen=True, slots=True)
class GraphSubscription:
    id: str
    expires_at: datetime
    resource: str = ""
    # Graph held it already (409: a run died before indexing it) and it was adopted, renewed: its
    # clientState names the key version current then, which is not known here (`VERSION_NOT_KNOWN`).
    adopted: bool = False


class LeaseOutcome(StrEnum):
    ACQUIRED = "acquired"
    DEFERRED = "deferred"  # another worker holds it; it was asked to run once more before letting go


class Watched(StrEnum):
    """What a Graph subscription of the connector watches."""

    EVENTS = "events"
    TASKS = "tasks"


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """The index from a Graph subscription to the user it serves (table `subscriptions`): on the user's
    events, or on the tasks of the user's To Do list (`watches`)."""

    subscription_id: str
    tenant_id: str
    staff_id: str
    graph_user_id: str
    expires_at: datetime
    last_notified_at: datetime | None = None
    etag: str | None = None
    watches: Watched = Watched.EVENTS
    # The notification key's version its clientState names; None: made before versions were recorded;
    # `VERSION_NOT_KNOWN`: adopted after a lost run (Graph's 409), its version never learned.
    key_version: str | None = None


# A subscription's key version when it was adopted (`GraphSubscription.adopted`): not the current one, so
# the renewal timer's next tenant run re-signs it, as after a rotation.
VERSION_NOT_KNOWN: Final = "not-known"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Changes the host's webhook never took, after every retry (table `deliveries`). They stay in the
    pull feed; the dead letter says which sequence numbers the webhook missed and why."""

    tenant_id: str
    first_sequence: int
    last_sequence: int
    attempts: int
    reason: str
    failed_at: datetime


@dataclass(frozen=True, slots=True)
class WrittenEvent:
    """An event as Graph answered it after a write or a read."""

    id: str
    change_key: str | None
    ical_uid: str | None
    join_url: str | None = None
    event: OutlookEvent | None = None  # the whole event, where the answer carried it
    written_hash: str | None = None  # what the connector writes into it (a series: with its pattern and
    # cancelled occurrences), to tell an Outlook edit from a touch
    shape: WrittenShape | None = None  # the same, comparable with a draft (Graph's answer to a write lost)
    conference_id: str | None = None  # a Teams meeting's, with its join URL
    toll_number: str | None = None
    original_start: datetime | None = None  # an occurrence's or exception's start as the rule made it


# --- availability state (table `busy`) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BusyInstance:
    """One Outlook instance that may block time (cancelled ones are never kept): when, and how busy.
    `key` is a short hash of its Graph id (`busy_key`); never a subject or any other detail."""

    key: str
    start: datetime | date  # aware UTC datetime, or a date when all_day (end exclusive)
    end: datetime | date
    show_as: str  # free | tentative | busy | oof | workingElsewhere | unknown
    all_day: bool = False
    appointment_id: str | None = None  # the host appointment it is a copy of, if any

    def ends_at(self) -> datetime:
        """The end as an instant (an all-day end date counts from its UTC midnight)."""
        if isinstance(self.end, datetime):
            return self.end
        return datetime.combine(self.end, time(), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SyncedBusy:
    """A user's busy index: the instances of the synced window, as the user's last sync run left them.

    `complete` is False until a complete read of the window built it (a user synced before the index
    existed, until its next resync or the nightly run; or a window with more instances than a row
    holds): the availability API must not answer from an incomplete index."""

    instances: tuple[BusyInstance, ...]
    window_start: datetime
    window_end: datetime
    synced_at: datetime  # when a sync run last changed it
    complete: bool


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """A mailbox's working hours as Outlook keeps them (`mailboxSettings.workingHours`)."""

    days: tuple[str, ...]  # monday .. sunday, as Graph names them
    start: time  # local wall-clock time in `zone`
    end: time
    zone: str  # as Graph gives it (a Windows or IANA name)


@dataclass(frozen=True, slots=True)
class WorkingHoursRecord:
    hours: WorkingHours
    iana_zone: str | None  # `zone` mapped to IANA (None: a name the connector cannot map)
    read_at: datetime


@dataclass(frozen=True, slots=True)
class HoldTimes:
    """When a host appointment holds a staff member, as the host sent it (no subject, no customers): the
    recurrence's overrides keep only their original dates and new times."""

    start: datetime | date  # aware, in `time_zone`; dates when all_day (end exclusive)
    end: datetime | date
    all_day: bool
    time_zone: str  # IANA
    show_as: str
    recurrence: Recurrence | None = None


@dataclass(frozen=True, slots=True)
class HostHold:
    """A host appointment's hold on one staff member's time, from the moment its PUT is accepted;
    `times` None is a tombstone (deleted, or the staff member was removed from it). Only a newer
    `revision` replaces a hold."""

    appointment_id: str
    revision: int
    times: HoldTimes | None
    etag: str | None = None

    @property
    def deleted(self) -> bool:
        return self.times is None


@dataclass(frozen=True, slots=True)
class ScheduleItem:
    """One busy item of Graph's `getSchedule`: UTC instants (an all-day event as its own zone's midnights)
    and its status (Graph's `showAs` words)."""

    start: datetime
    end: datetime
    show_as: str


@dataclass(frozen=True, slots=True)
class Schedule:
    """`getSchedule`'s answer for one address: its items and working hours, or the error Graph gave it."""

    address: str
    items: tuple[ScheduleItem, ...] = ()
    working_hours: WorkingHours | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class UserBusy:
    """Everything the availability API needs of one user, read in one partition query."""

    index: SyncedBusy | None  # None: never built
    hours: WorkingHoursRecord | None
    holds: tuple[HostHold, ...]  # tombstones included

    @property
    def live_holds(self) -> tuple[HostHold, ...]:
        return tuple(h for h in self.holds if not h.deleted)
