"""The records the ports speak (queries, pages, feed entries, Graph answers, stored indexes), frozen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.domain.appointments import WrittenShape
from shared.domain.calendar import DeltaItem, OutlookEvent
from shared.domain.users import UserRecord


@dataclass(frozen=True, slots=True)
class UserQuery:
    match: str | None = None
    state: str | None = None
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
class DeltaRead:
    """One complete delta round of a mailbox's calendar window (every page, in order)."""

    items: list[DeltaItem]
    delta_link: str
    requests: int = 1  # Graph requests it took


@dataclass(frozen=True, slots=True)
class GraphSubscription:
    id: str
    expires_at: datetime
    resource: str = ""


class LeaseOutcome(StrEnum):
    ACQUIRED = "acquired"
    DEFERRED = "deferred"  # another worker holds it; it was asked to run once more before letting go


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """The index from a Graph subscription to the user it serves (table `subscriptions`)."""

    subscription_id: str
    tenant_id: str
    staff_id: str
    graph_user_id: str
    expires_at: datetime
    last_notified_at: datetime | None = None
    etag: str | None = None


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
