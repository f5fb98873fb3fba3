"""Tenant and user rows as read in the last few seconds, per worker, for the availability API.

An availability question needs, besides each staff member's busy partition (index, working hours and
holds), the tenant's row (connected? which `show_as` values block) and each staff member's user row
(matched? synced? its mailbox and last sync). Those rows change rarely against how often a booking page
asks, and reading them was 11 of the 21 storage requests of a 10-staff question. So they are kept here for
`RECENT_SECONDS` (real time, not the app clock), while the busy partitions are read fresh every time.

What that staleness can and cannot do, for at most `RECENT_SECONDS` after a row changed:
- never offer a slot just booked, nor one an Outlook change took: holds and the index are read fresh;
- a tenant disconnected, or its blocking settings changed, is still answered as before;
- a staff member disabled, unmatched, deleted or gone into error is still answered (from its index, or
  getSchedule when the index cannot answer), and one just synced is still answered through getSchedule;
- `as_of` may come from the previous sync run's time: earlier than the truth, never later.
A row that was not found is not kept (a staff member just added is found at once). Only the availability
API reads through this; every path that writes reads the rows fresh, with their etags.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Final, Generic, TypeVar

from shared.domain.tenants import Tenant
from shared.domain.users import UserRecord
from shared.service.ports.tenancy import TenantRepository, UserRepository

RECENT_SECONDS: Final = 5.0
MAX_ROWS: Final = 5_000  # of each kind; a few KB a row: some 15 MB at the most; the oldest go first

K = TypeVar("K")
V = TypeVar("V")


class _Kept(Generic[K, V]):
    """Values by key, each for `seconds` after it was stored; at most `limit`, the oldest dropped first."""

    def __init__(self, seconds: float, limit: int, now: Callable[[], float]) -> None:
        self._seconds = seconds
        self._limit = limit
        self._now = now
        self._values: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        found = self._values.get(key)
        if found is None:
            return None
        if self._now() - found[0] >= self._seconds:
            del self._values[key]
            return None
        return found[1]

    def put(self, key: K, value: V) -> None:
        if self._seconds <= 0:
            return
        self._values.pop(key, None)  # re-inserted last: the dict's order is the order of storing
        self._values[key] = (self._now(), value)
        while len(self._values) > self._limit:
            del self._values[next(iter(self._values))]


class RecentRows:
    """The tenant and user rows the availability API reads, each kept `seconds` after it was read."""

    def __init__(
        self,
        seconds: float = RECENT_SECONDS,
        *,
        limit: int = MAX_ROWS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tenants: _Kept[str, Tenant] = _Kept(seconds, limit, now)
        self._users: _Kept[tuple[str, str], UserRecord] = _Kept(seconds, limit, now)

    async def tenant(self, tenants: TenantRepository, tenant_id: str) -> Tenant | None:
        found = self._tenants.get(tenant_id)
        if found is None:
            found = await tenants.get(tenant_id)
            if found is not None:
                self._tenants.put(tenant_id, found)
        return found

    async def users(
        self, users: UserRepository, tenant_id: str, staff_ids: Sequence[str]
    ) -> list[UserRecord | None]:
        """Each staff member's row, in the order given; the ones not kept read at once."""
        found = {s: user for s in staff_ids if (user := self._users.get((tenant_id, s))) is not None}
        missing = [s for s in dict.fromkeys(staff_ids) if s not in found]
        for staff_id, user in zip(
            missing, await asyncio.gather(*(users.get(tenant_id, s) for s in missing)), strict=True
        ):
            if user is not None:
                self._users.put((tenant_id, staff_id), user)
                found[staff_id] = user
        return [found.get(s) for s in staff_ids]
