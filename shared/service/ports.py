"""The ports the handlers need, as Protocols named by role. Adapters implement them; tests fake them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from shared.domain.tenants import Tenant
from shared.domain.users import DirectoryUser, MailboxAccess, StaffMember, UserRecord


class Clock(Protocol):
    def now(self) -> datetime: ...


class StaleWrite(Exception):
    """An optimistic-concurrency write lost the race: re-read and decide again."""


class AlreadyExists(Exception):
    """A create found the key taken."""


class TenantRepository(Protocol):
    async def get(self, tenant_id: str) -> Tenant | None: ...
    async def list(self) -> list[Tenant]: ...
    async def add(self, tenant: Tenant) -> Tenant:
        """Raises AlreadyExists."""
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
    async def query(self, tenant_id: str, query: UserQuery) -> UserPage: ...
    async def save(self, user: UserRecord) -> UserRecord:
        """Insert when `etag` is None (AlreadyExists if taken), else replace guarded by it (StaleWrite)."""
        ...

    async def delete(self, tenant_id: str, staff_id: str) -> None: ...
    async def delete_tenant(self, tenant_id: str) -> None: ...


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


class ChangeFeed(Protocol):
    async def append(self, tenant_id: str, changes: Sequence[Change]) -> list[Change]:
        """Append in order; returns them with their sequence numbers."""
        ...

    async def read(self, tenant_id: str, after: int, limit: int) -> list[Change]: ...
    async def delete_tenant(self, tenant_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Job:
    """A unit of queued work."""

    queue: str
    kind: str
    tenant_id: str
    payload: dict[str, Any] = field(default_factory=dict)


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
