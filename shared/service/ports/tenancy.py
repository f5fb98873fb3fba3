"""Tenants, their staff (users) and the one-time consent links, as the handlers store them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.domain.progress import UserProgress
from shared.domain.tenants import Tenant
from shared.domain.users import UserRecord
from shared.service.records import ConsentState, UserPage, UserQuery


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


class UserRepository(Protocol):
    async def get(self, tenant_id: str, staff_id: str) -> UserRecord | None: ...
    async def list_all(self, tenant_id: str) -> list[UserRecord]: ...
    async def list_progress(self, tenant_id: str) -> list[UserProgress]:
        """Each of the tenant's users as progress reads it: the four properties it uses (match, sync state,
        when its migration ended, when it was last stored), read with a projection, not the whole rows."""
        ...

    async def migration_pending(self, tenant_id: str) -> bool:
        """Whether any matched user is still pending or migrating (a filtered query, stops at the first)."""
        ...

    async def console_users(self, tenant_id: str) -> list[UserRecord]:
        """The tenant's users for the console's polled views (progress, the users table): a listing this
        worker read at most a few seconds ago (`CONSOLE_LISTING_SECONDS` in the table adapter), read again
        at once after this worker changed one of them."""
        ...

    async def query(self, tenant_id: str, query: UserQuery, *, kept: bool = False) -> UserPage:
        """A page of the tenant's users, filtered and sorted: of `console_users` when `kept` (the console's
        polling), else read now (the host's API)."""
        ...

    async def save(self, user: UserRecord) -> UserRecord:
        """Insert when `etag` is None (AlreadyExists if taken), else replace guarded by it (StaleWrite)."""
        ...

    async def delete(self, tenant_id: str, staff_id: str) -> None: ...
    async def delete_tenant(self, tenant_id: str) -> None: ...
    async def save_all(self, users: Sequence[UserRecord]) -> list[UserRecord | None]:
        """`save` for many users of one tenant, up to 100 per transaction; in order, each saved record, or
        None where that one lost a race (`save` would have raised StaleWrite or AlreadyExists)."""
        ...


class ConsentStateRepository(Protocol):
    async def add(self, state: ConsentState) -> None: ...
    async def take(self, state_hash: str) -> ConsentState | None:
        """Remove and return it; None if absent or already taken (one-time, race-safe)."""
        ...

    async def delete_tenant(self, tenant_id: str) -> None: ...
