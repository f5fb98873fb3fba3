"""Microsoft 365 through Graph, as the handlers need it: the tenant's directory and mailboxes, customer
apps, one mailbox's calendar read as deltas, and change-notification subscriptions. (The calendar writes
are in `appointments`.)"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from shared.domain.calendar import OutlookEvent
from shared.domain.tenants import Tenant
from shared.domain.users import DirectoryUser, MailboxAccess, StaffMember
from shared.service.records import DeltaRead, GraphSubscription, Schedule, WorkingHours


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

    async def read_events(
        self, tenant: Tenant, graph_user_id: str, event_ids: Sequence[str]
    ) -> dict[str, OutlookEvent | None]:
        """Events by id (series masters, with their recurrence and cancelled occurrences); None for one the
        mailbox no longer has. Raises MailboxUnavailable, RateLimited, TenantAccessError."""
        ...

    async def read_items(
        self, tenant: Tenant, graph_user_id: str, event_ids: Sequence[str]
    ) -> dict[str, OutlookEvent | None]:
        """Any events by id, wherever the mailbox keeps them (`GET /events/{id}`, several in `$batch`es);
        None for one it no longer has. Raises MailboxUnavailable, RateLimited, TenantAccessError."""
        ...

    async def connector_events(self, tenant: Tenant, graph_user_id: str) -> dict[str, str]:
        """Events carrying the connector's extended property: Graph id -> host appointment id."""
        ...

    async def stamped(self, tenant: Tenant, graph_user_id: str, event_ids: Sequence[str]) -> dict[str, str]:
        """The connector's extended property of these events (single events, series masters), one read
        each: Graph id -> host appointment id; events without it, or gone, are left out."""
        ...

    async def working_hours(self, tenant: Tenant, graph_user_id: str) -> WorkingHours | None:
        """The mailbox's working hours (`mailboxSettings`); None when it reports none. A 403 or 404 is
        `MailboxUnavailable` (never the tenant's refusal: the sync must go on without them)."""
        ...


class ScheduleGateway(Protocol):
    """Free/busy through Graph's `getSchedule`, for staff the synced state cannot answer for."""

    async def schedules(
        self, tenant: Tenant, via_user_id: str, addresses: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, Schedule]:
        """Each address's busy items overlapping [start, end) and working hours, or its own error, asked
        through the mailbox `via_user_id` (any of the tenant's users); as many requests as Graph's limits
        need (100 addresses, 62 days each). Keyed by the address as given. Raises RateLimited,
        TenantAccessError, MailboxUnavailable (the mailbox asked through)."""
        ...


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
