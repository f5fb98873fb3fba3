"""Customer organisations (tenants): how they connect, their state and their settings."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

GUID_RE: Final = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# A verified domain: labels of letters, digits and hyphens, at least one dot, a letter TLD.
DOMAIN_RE: Final = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
CREDENTIAL_WARNING: Final = timedelta(days=30)


class TenantState(StrEnum):
    PENDING_CONSENT = "pending_consent"
    CONNECTING = "connecting"
    MIGRATING = "migrating"
    ACTIVE = "active"
    DEGRADED = "degraded"
    CONSENT_REVOKED = "consent_revoked"
    DISCONNECTING = "disconnecting"
    DISCONNECTED = "disconnected"

    @property
    def connected(self) -> bool:
        """Graph may be called for this tenant."""
        return self in {
            TenantState.CONNECTING,
            TenantState.MIGRATING,
            TenantState.ACTIVE,
            TenantState.DEGRADED,
        }

    @property
    def gone(self) -> bool:
        """Disconnecting or disconnected: every job for the tenant is a no-op."""
        return self in {TenantState.DISCONNECTING, TenantState.DISCONNECTED}


class AuthMode(StrEnum):
    ADMIN_CONSENT = "admin_consent"
    CUSTOMER_APP = "customer_app"


class ImportFilterMode(StrEnum):
    ALL = "all"
    CATEGORIES = "categories"


class TeamsMethod(StrEnum):
    EVENT = "event"  # isOnlineMeeting on the first staff member's event (Calendars.ReadWrite suffices)
    ACCESS_POLICY = "access_policy"  # onlineMeetings/createOrGet as the first staff member (needs a policy)
    SERVICE_ACCOUNT = "service_account"  # onlineMeetings/createOrGet as the tenant's `teams_organizer`

    @classmethod
    def _missing_(cls, value: object) -> TeamsMethod | None:
        """The earlier name of the standalone method, as stored rows may still hold it."""
        return cls.ACCESS_POLICY if value == "online_meetings" else None


class MultiStaffMode(StrEnum):
    COPIES = "copies"  # one event per staff calendar, no invitations
    MEETING = "meeting"  # one meeting organised by the first staff member


class UserScope(StrEnum):
    STAFF = "staff"  # the host's staff members only
    ALL_USERS = "all_users"  # every enabled mailbox of the tenant


class RecurringEvents(StrEnum):
    SERIES = "series"  # a series as its master with an RFC 5545 rule, exceptions as overrides
    OCCURRENCES = "occurrences"  # every occurrence in the window as an event of its own


class ConflictPolicy(StrEnum):
    HOST_WINS = "host_wins"
    OUTLOOK_WINS = "outlook_wins"


@dataclass(frozen=True, slots=True)
class ImportFilter:
    mode: ImportFilterMode = ImportFilterMode.ALL
    categories: tuple[str, ...] = ()

    def admits(self, categories: tuple[str, ...]) -> bool:
        """All events, or only those whose first category is one of the configured ones."""
        if self.mode is ImportFilterMode.ALL:
            return True
        if not categories:
            return False
        wanted = {c.casefold() for c in self.categories}
        return categories[0].casefold() in wanted


@dataclass(frozen=True, slots=True)
class TenantSettings:
    window_days_back: int = 30
    window_days_forward: int = 180
    import_filter: ImportFilter = field(default_factory=ImportFilter)
    privacy_mode: bool = False
    show_free_events: bool = True
    todo_list_name: str = "Tasks from the host"
    teams_method: TeamsMethod = TeamsMethod.EVENT
    multi_staff_mode: MultiStaffMode = MultiStaffMode.COPIES
    user_scope: UserScope = UserScope.STAFF
    conflict_policy: ConflictPolicy = ConflictPolicy.HOST_WINS
    mail_deadline_hours: int = 24  # a message not sent within this fails with the reason
    tentative_blocks: bool = True  # availability: a tentative event makes its staff member unavailable
    working_elsewhere_blocks: bool = False  # availability: so does "working elsewhere"
    teams_organizer: str | None = None  # service_account: the UPN or mailbox that organises every meeting
    recurring_events: RecurringEvents = RecurringEvents.SERIES  # how Outlook series reach the host
    monitor_retention_days: int = 14  # the message monitor keeps this many days (pruned daily)
    feed_retention_days: int = 30  # the change feed keeps a change this many days (pruned nightly)

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The sync window around `now`, on whole UTC days so that it moves only once a day."""
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=self.window_days_back), day + timedelta(days=self.window_days_forward + 1)


@dataclass(frozen=True, slots=True)
class CustomerApp:
    """The customer's own app registration. Its secret lives in Key Vault only."""

    client_id: str
    secret_expires_at: datetime | None = None
    secret_version: str | None = None  # Key Vault's version of the secret: workers' credential cache key


@dataclass(frozen=True, slots=True)
class DeliveryHold:
    """An admin holds delivery to the host's webhook: changes keep going on the feed (and the monitor), and
    the first one a delivery left is remembered, so the release delivers from there, in order."""

    held_at: datetime
    from_sequence: int | None = None  # the first change not delivered because of the hold

    def holding(self, first: int) -> DeliveryHold:
        """The hold, having left changes from `first` on for the release."""
        if self.from_sequence is not None and self.from_sequence <= first:
            return self
        return replace(self, from_sequence=first)


@dataclass(frozen=True, slots=True)
class ReleasedRange:
    first: int
    last: int

    def covers(self, first: int, last: int) -> bool:
        """A range inside this one that is not the release's own delivery."""
        return self.first <= first and last <= self.last and (first, last) != (self.first, self.last)


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: str  # as the host names it: a GUID or a verified domain, lower-case
    directory_id: str  # the Entra tenant GUID
    display_name: str
    auth_mode: AuthMode
    state: TenantState
    settings: TenantSettings
    created_at: datetime
    updated_at: datetime
    customer_app: CustomerApp | None = None
    last_error: str | None = None
    connected_at: datetime | None = None
    credential_warning_sent_at: datetime | None = None
    delivery_hold: DeliveryHold | None = None  # delivery to the host held by an admin
    # The range the last release queued as one delivery, in order: a delivery job queued before the
    # release for changes inside it leaves them to that one (never twice, never ahead of earlier ones).
    released: ReleasedRange | None = None
    etag: str | None = None

    def with_state(self, state: TenantState, now: datetime, *, error: str | None = None) -> Tenant:
        return replace(self, state=state, updated_at=now, last_error=error)

    def credential_expires_at(self) -> datetime | None:
        return self.customer_app.secret_expires_at if self.customer_app else None

    def credential_expiring(self, now: datetime) -> bool:
        expires = self.credential_expires_at()
        return expires is not None and expires - now <= CREDENTIAL_WARNING


def normalise_tenant_id(value: str) -> str | None:
    """A GUID or a verified domain, lower-case; None when it is neither."""
    candidate = value.strip().lower()
    if GUID_RE.match(candidate):
        return str(uuid.UUID(candidate))
    if DOMAIN_RE.match(candidate):
        return candidate
    return None


def secret_name(directory_id: str) -> str:
    """The Key Vault name of a customer app's secret (names allow letters, digits and dashes)."""
    return f"tenant-{directory_id}-client-secret"
