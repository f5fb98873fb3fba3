"""What the Outlook-to-host sync keeps between runs: every item's status, the per-user leases, and the
index from a Graph subscription to its user."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from shared.domain.planner import ItemStatus
from shared.service.records import Announcement, LeaseOutcome, SubscriptionRecord


class ItemStatusRepository(Protocol):
    """The stored status of every Outlook item of one user (table `outlookitems`)."""

    async def load(
        self, tenant_id: str, staff_id: str, *, probably_empty: bool = False
    ) -> dict[str, ItemStatus]:
        """Every stored status of the user. `probably_empty` (a first migration) is only a hint: a store
        may then look cheaply whether anything was ever stored before reading it all."""
        ...

    async def apply(
        self,
        tenant_id: str,
        staff_id: str,
        upserts: Sequence[ItemStatus],
        deletes: Sequence[str],
        *,
        announcing: Announcement | None = None,
    ) -> None:
        """For the user's sync run (one at a time): upsert and delete in as few transactions as
        possible; idempotent (a redelivered job may apply the same plan twice). What was noted and
        seen by this run's `load` is kept unless the plan says otherwise; what was noted since stays
        over it. `announcing` (the changes the plan publishes next) is stored in the first
        transaction, before any status: until `announced`, `pending` answers it."""
        ...

    async def pending(self, tenant_id: str, staff_id: str) -> Announcement | None:
        """The announcement stored by an `apply` and not yet `announced` (a run died between them).
        Read with the run's `load` (a store may keep what that read found)."""
        ...

    async def announced(self, tenant_id: str, staff_id: str, key: str) -> None:
        """The announcement `key` is on the feed: forget it (nothing when it is gone already)."""
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


class LeaseStore(Protocol):
    """One holder per key across workers (table `leases`), with a 'run again' flag so that work asked
    for while the holder runs is never lost."""

    async def acquire(
        self, key: str, owner: str, ttl: timedelta, now: datetime, *, succeeds: Sequence[str] = ()
    ) -> LeaseOutcome:
        """Take the lease if free or expired, or held by an owner starting with one of `succeeds` (an
        earlier delivery of the caller's own queue message, which died holding it); else set its
        'again' flag and answer DEFERRED."""
        ...

    async def release(self, key: str, owner: str) -> bool:
        """Let go; answers True (and keeps the lease, flag cleared) when the 'again' flag was set, so the
        holder runs once more. Answers False once released (or when the lease is not ours any more)."""
        ...

    async def acquire_together(self, keys: Sequence[str], owner: str, ttl: timedelta, now: datetime) -> bool:
        """Take every lease of `keys` (one tenant's) at once when none of them has a row, held or lapsed:
        True. Otherwise take none and answer False: the caller takes them one by one (`acquire`, which
        decides on lapsed leases and on an earlier delivery's)."""
        ...

    async def release_together(self, keys: Sequence[str], owner: str) -> bool:
        """Let go of every lease of `keys` (taken together by `owner`) at once when none of them changed
        since: True. Otherwise (an 'again' flag set, one taken over or gone) let go of none and answer
        False: the caller releases them one by one (`release`)."""
        ...

    async def delete_prefix(self, prefix: str) -> None: ...


class SubscriptionIndex(Protocol):
    async def get(self, subscription_id: str) -> SubscriptionRecord | None: ...
    async def put(self, record: SubscriptionRecord) -> None: ...
    async def delete(self, subscription_id: str) -> None: ...
    async def expiring(self, before: datetime) -> list[SubscriptionRecord]: ...
    async def for_tenant(self, tenant_id: str) -> list[SubscriptionRecord]: ...
