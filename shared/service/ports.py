"""The ports the handlers need, as Protocols named by role. Adapters implement them; tests fake them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Protocol

from shared.domain.appointments import AppointmentRecord, EventDraft, Override, WrittenShape
from shared.domain.calendar import DeltaItem, OutlookEvent
from shared.domain.planner import ItemStatus
from shared.domain.tenants import Tenant
from shared.domain.users import DirectoryUser, MailboxAccess, StaffMember, UserRecord
from shared.service.jobs import Job


class Clock(Protocol):
    def now(self) -> datetime: ...


class StaleWrite(Exception):
    """An optimistic-concurrency write lost the race: re-read and decide again."""


class AlreadyExists(Exception):
    """A create found the key taken."""


class DirectoryTaken(Exception):
    """A tenant claimed a directory (an Entra tenant) that another tenant key holds."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


class TenantRepository(Protocol):
    async def get(self, tenant_id: str) -> Tenant | None: ...
    async def list(self) -> list[Tenant]: ...
    async def add(self, tenant: Tenant) -> Tenant:
        """Insert the row and claim its directory, both or neither. Raises AlreadyExists (the key is
        taken) or DirectoryTaken (another tenant key holds the directory)."""
        ...

    async def reconnect(self, tenant: Tenant) -> Tenant:
        """Replace a disconnected row (guarded by `tenant.etag`) and claim its directory, both or neither.
        Raises StaleWrite or DirectoryTaken."""
        ...

    async def release_directory(self, tenant: Tenant) -> None:
        """Drop the tenant's claim on its directory (if it holds it), so the directory can connect again."""
        ...

    async def save(self, tenant: Tenant) -> Tenant:
        """Replace, guarded by `tenant.etag`; raises StaleWrite. Returns the tenant with its new etag."""
        ...

    async def delete(self, tenant_id: str) -> None: ...


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


class UserRepository(Protocol):
    async def get(self, tenant_id: str, staff_id: str) -> UserRecord | None: ...
    async def list_all(self, tenant_id: str) -> list[UserRecord]: ...
    async def migration_pending(self, tenant_id: str) -> bool:
        """Whether any matched user is still pending or migrating (a filtered query, stops at the first)."""
        ...

    async def query(self, tenant_id: str, query: UserQuery) -> UserPage: ...
    async def save(self, user: UserRecord) -> UserRecord:
        """Insert when `etag` is None (AlreadyExists if taken), else replace guarded by it (StaleWrite)."""
        ...

    async def delete(self, tenant_id: str, staff_id: str) -> None: ...
    async def delete_tenant(self, tenant_id: str) -> None: ...
    async def save_all(self, users: Sequence[UserRecord]) -> list[UserRecord | None]:
        """`save` for many users of one tenant, up to 100 per transaction; in order, each saved record, or
        None where that one lost a race (`save` would have raised StaleWrite or AlreadyExists)."""
        ...


@dataclass(frozen=True, slots=True)
class ConsentState:
    """A one-time, expiring `state` for the admin-consent redirect, bound to one tenant."""

    state_hash: str
    tenant_id: str
    expires_at: datetime
    etag: str | None = None


class ConsentStateRepository(Protocol):
    async def add(self, state: ConsentState) -> None: ...
    async def take(self, state_hash: str) -> ConsentState | None:
        """Remove and return it; None if absent or already taken (one-time, race-safe)."""
        ...

    async def delete_tenant(self, tenant_id: str) -> None: ...


class SecretStore(Protocol):
    async def get(self, name: str) -> str | None: ...
    async def set(self, name: str, value: str, *, expires_on: datetime | None = None) -> None: ...
    async def delete(self, name: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of a tenant's change feed (and of the host webhook)."""

    type: str
    tenant_id: str
    data: dict[str, Any]
    occurred_at: datetime
    staff_id: str | None = None
    sequence: int | None = None  # assigned by the feed


# One change as the feed stores it (compact ASCII JSON) may be at most this long: a table entity holds
# 1 MiB, 524,288 UTF-16 characters, keys and property names included. The planner keeps events inside it
# (see `BODY_LIMIT`).
MAX_CHANGE_CHARS: Final = 480_000


class ChangeTooLarge(ValueError):
    """An append holding a change over `MAX_CHANGE_CHARS`; nothing of it was appended."""


def check_change_sizes(encoded: Sequence[str], changes: Sequence[Change]) -> None:
    for text, change in zip(encoded, changes, strict=True):
        if len(text) > MAX_CHANGE_CHARS:
            raise ChangeTooLarge(
                f"a {change.type} change of {len(text)} characters is over the feed's {MAX_CHANGE_CHARS}"
            )


class ChangeFeed(Protocol):
    async def append(self, tenant_id: str, changes: Sequence[Change]) -> list[Change]:
        """Append in order, all or none; returns them with their sequence numbers. `ChangeTooLarge`
        when one is over `MAX_CHANGE_CHARS` encoded."""
        ...

    async def read(self, tenant_id: str, after: int, limit: int) -> list[Change]: ...

    async def read_json(self, tenant_id: str, after: int, limit: int) -> list[tuple[int, str]]:
        """What `read` answers, as each change's sequence number and its `change_json` shape as JSON
        text (passed on as stored, not decoded)."""
        ...

    async def delete_tenant(self, tenant_id: str) -> None: ...


class JobQueue(Protocol):
    async def enqueue(self, jobs: Iterable[Job]) -> None: ...


class TenantAccessError(Exception):
    """Graph refused the tenant itself: consent revoked, app removed, credential invalid or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DirectoryGateway(Protocol):
    """The tenant's directory and mailboxes, as far as matching needs them."""

    async def resolve_directory_id(self, tenant_id: str) -> str | None:
        """The Entra tenant GUID for a GUID or verified domain; None when Entra knows no such tenant."""
        ...

    async def check_access(self, tenant: Tenant) -> None:
        """A token for the tenant and one directory read; raises TenantAccessError."""
        ...

    async def list_users(self, tenant: Tenant) -> list[DirectoryUser]: ...
    async def find_candidates(self, tenant: Tenant, staff: StaffMember) -> list[DirectoryUser]:
        """The few directory users that could match (by UPN, mail or proxy address)."""
        ...

    async def mailbox_access(self, tenant: Tenant, user_ids: Sequence[str]) -> dict[str, MailboxAccess]: ...


class CustomerAppValidator(Protocol):
    async def validate(self, directory_id: str, client_id: str, client_secret: str) -> None:
        """Get a token with the customer's app and read the directory once; raises TenantAccessError."""
        ...


# --- Calendar sync --------------------------------------------------------------------------------


class MailboxUnavailable(Exception):
    """The mailbox refuses the app (no mailbox, an access policy, a deleted user): a person must act."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RateLimited(Exception):
    """Graph throttled (429) or was briefly unavailable (503/504) beyond the adapter's own retries."""

    def __init__(self, retry_after: float, reason: str) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.reason = reason


class DeltaTokenRejected(Exception):
    """Graph no longer knows the stored delta link (410 SyncStateNotFound): read the whole window."""


class SubscriptionGone(Exception):
    """The Graph subscription does not exist any more (expired, removed): create a new one."""


@dataclass(frozen=True, slots=True)
class DeltaRead:
    """One complete delta round of a mailbox's calendar window (every page, in order)."""

    items: list[DeltaItem]
    delta_link: str
    requests: int = 1  # Graph requests it took


class CalendarGateway(Protocol):
    """One mailbox's calendar through Graph: the data plane of the Outlook-to-host sync."""

    async def read_delta(
        self, tenant: Tenant, graph_user_id: str, delta_link: str | None, window: tuple[datetime, datetime]
    ) -> DeltaRead:
        """Follow `delta_link` (or start a new round over `window`) to its next delta link.
        Raises DeltaTokenRejected, MailboxUnavailable, RateLimited, TenantAccessError."""
        ...

    async def translate_ews_ids(
        self, tenant: Tenant, graph_user_id: str, ews_ids: Sequence[str]
    ) -> dict[str, str]:
        """EWS item ids to Graph (REST) ids; ids the mailbox does not know are left out."""
        ...

    async def connector_events(self, tenant: Tenant, graph_user_id: str) -> dict[str, str]:
        """Events carrying the connector's extended property: Graph id -> host appointment id."""
        ...


@dataclass(frozen=True, slots=True)
class GraphSubscription:
    id: str
    expires_at: datetime
    resource: str = ""


class SubscriptionGateway(Protocol):
    """Graph change-notification subscriptions on users' events."""

    async def create(
        self, tenant: Tenant, graph_user_id: str, client_state: str, expires_at: datetime
    ) -> GraphSubscription:
        """`created,updated,deleted` on the user's events, notification and lifecycle URLs set."""
        ...

    async def renew(self, tenant: Tenant, subscription_id: str, expires_at: datetime) -> datetime:
        """Raises SubscriptionGone."""
        ...

    async def delete(self, tenant: Tenant, subscription_id: str) -> None:
        """Idempotent: a subscription that is already gone is fine."""
        ...

    async def list(self, tenant: Tenant) -> list[GraphSubscription]:
        """Every subscription this app holds in the tenant."""
        ...


class ItemStatusRepository(Protocol):
    """The stored status of every Outlook item of one user (table `outlookitems`)."""

    async def load(
        self, tenant_id: str, staff_id: str, *, probably_empty: bool = False
    ) -> dict[str, ItemStatus]:
        """Every stored status of the user. `probably_empty` (a first migration) is only a hint: a store
        may then look cheaply whether anything was ever stored before reading it all."""
        ...

    async def apply(
        self, tenant_id: str, staff_id: str, upserts: Sequence[ItemStatus], deletes: Sequence[str]
    ) -> None:
        """For the user's sync run (one at a time): upsert and delete in as few transactions as
        possible; idempotent (a redelivered job may apply the same plan twice). What was noted and
        seen by this run's `load` is kept unless the plan says otherwise; what was noted since stays
        over it."""
        ...

    async def note(
        self, tenant_id: str, staff_id: str, upserts: Sequence[ItemStatus], deletes: Sequence[str]
    ) -> None:
        """From outside the user's sync run (the write side): a status to remember, or to forget,
        now, without contending with the run. `load` sees it at once; it outlives any `apply` of a
        plan made before it."""
        ...

    async def delete_user(self, tenant_id: str, staff_id: str) -> None: ...
    async def delete_tenant(self, tenant_id: str) -> None: ...


class LeaseOutcome(StrEnum):
    ACQUIRED = "acquired"
    DEFERRED = "deferred"  # another worker holds it; it was asked to run once more before letting go


class LeaseStore(Protocol):
    """One holder per key across workers (table `leases`), with a 'run again' flag so that work asked
    for while the holder runs is never lost."""

    async def acquire(self, key: str, owner: str, ttl: timedelta, now: datetime) -> LeaseOutcome:
        """Take the lease if free or expired; else set its 'again' flag and answer DEFERRED."""
        ...

    async def release(self, key: str, owner: str) -> bool:
        """Let go; answers True (and keeps the lease, flag cleared) when the 'again' flag was set, so the
        holder runs once more. Answers False once released (or when the lease is not ours any more)."""
        ...

    async def delete_prefix(self, prefix: str) -> None: ...


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


class SubscriptionIndex(Protocol):
    async def get(self, subscription_id: str) -> SubscriptionRecord | None: ...
    async def put(self, record: SubscriptionRecord) -> None: ...
    async def delete(self, subscription_id: str) -> None: ...
    async def expiring(self, before: datetime) -> list[SubscriptionRecord]: ...
    async def for_tenant(self, tenant_id: str) -> list[SubscriptionRecord]: ...


# --- Host deliveries ------------------------------------------------------------------------------


class DeliveryFailed(Exception):
    """The host's webhook did not take a delivery (a non-2xx answer, a timeout, a refused connection)."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class HostWebhook(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        """Raises DeliveryFailed."""
        ...


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


class DeadLetterRepository(Protocol):
    async def add(self, letter: DeadLetter) -> None: ...
    async def list(self, tenant_id: str) -> list[DeadLetter]: ...
    async def delete(self, tenant_id: str, first_sequence: int) -> None: ...
    async def delete_tenant(self, tenant_id: str) -> None: ...


# --- Host to Outlook ------------------------------------------------------------------------------


class AppointmentRepository(Protocol):
    """The host's appointments and their copies in staff calendars (table `appointments`)."""

    async def get(self, tenant_id: str, appointment_id: str) -> AppointmentRecord | None: ...
    async def save(self, record: AppointmentRecord) -> AppointmentRecord:
        """Insert when `etag` is None (AlreadyExists if taken), else replace guarded by it (StaleWrite)."""
        ...

    async def delete(self, record: AppointmentRecord) -> None:
        """Remove, guarded by `etag` (StaleWrite); gone already is fine."""
        ...

    async def unsettled(self, tenant_id: str) -> list[str]:
        """Ids of the appointments whose latest revision has no reported outcome yet."""
        ...

    async def delete_tenant(self, tenant_id: str) -> None: ...


class EventChanged(Exception):
    """An update's If-Match did not hold: the event changed in Outlook since the connector wrote it."""


class EventMissing(Exception):
    """The event (or occurrence) is not in the calendar any more."""


class EventRejected(Exception):
    """Graph refused the event itself (a 400 on its content): a person must look at the appointment."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


class CalendarWriter(Protocol):
    """Writes to one mailbox's calendar. Every method raises MailboxUnavailable, RateLimited and
    TenantAccessError like the `CalendarGateway`, and EventRejected for content Graph refuses."""

    async def create(
        self, tenant: Tenant, graph_user_id: str, draft: EventDraft, transaction_id: str
    ) -> WrittenEvent:
        """POST with `transactionId` (a retried create answers the event made the first time) and the
        connector's extended property."""
        ...

    async def update(
        self, tenant: Tenant, graph_user_id: str, event_id: str, draft: EventDraft, if_match: str | None
    ) -> WrittenEvent:
        """PATCH guarded by `if_match` (a change key): EventChanged when it does not hold, EventMissing."""
        ...

    async def delete(self, tenant: Tenant, graph_user_id: str, event_id: str) -> None:
        """Idempotent: gone already is fine."""
        ...

    async def read(self, tenant: Tenant, graph_user_id: str, event_id: str) -> WrittenEvent:
        """The event now (EventMissing when gone)."""
        ...

    async def occurrences(
        self, tenant: Tenant, graph_user_id: str, master_id: str, days: Sequence[date], time_zone: str
    ) -> dict[date, WrittenEvent]:
        """The series' occurrences and exceptions on these original local dates (in `time_zone`)."""
        ...

    async def update_occurrence(
        self, tenant: Tenant, graph_user_id: str, occurrence_id: str, draft: EventDraft, override: Override
    ) -> WrittenEvent:
        """Make one occurrence an exception (or change the exception): the override's times and texts."""
        ...

    async def find_by_ical_uid(
        self, tenant: Tenant, graph_user_id: str, ical_uid: str
    ) -> WrittenEvent | None:
        """The event of this mailbox with this iCalUId (an attendee's copy of a meeting), if any."""
        ...
