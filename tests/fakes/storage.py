"""In-memory repositories with the adapters' concurrency contract."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.domain.tenants import Tenant
from shared.domain.users import UserRecord
from shared.service.ports import (
    AlreadyExists,
    Change,
    ConsentState,
    Job,
    StaleWrite,
    UserPage,
    UserQuery,
)
from shared.service.user_queries import page_users

_etags = itertools.count(1)


def _etag() -> str:
    return f'W/"{next(_etags)}"'


class FakeClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        self.current += timedelta(**kwargs)


class FakeTenants:
    def __init__(self) -> None:
        self.rows: dict[str, Tenant] = {}

    async def get(self, tenant_id: str) -> Tenant | None:
        return self.rows.get(tenant_id)

    async def list(self) -> list[Tenant]:
        return sorted(self.rows.values(), key=lambda t: t.tenant_id)

    async def add(self, tenant: Tenant) -> Tenant:
        if tenant.tenant_id in self.rows:
            raise AlreadyExists(tenant.tenant_id)
        stored = replace(tenant, etag=_etag())
        self.rows[tenant.tenant_id] = stored
        return stored

    async def save(self, tenant: Tenant) -> Tenant:
        current = self.rows.get(tenant.tenant_id)
        if current is None or current.etag != tenant.etag:
            raise StaleWrite(tenant.tenant_id)
        stored = replace(tenant, etag=_etag())
        self.rows[tenant.tenant_id] = stored
        return stored

    async def delete(self, tenant_id: str) -> None:
        self.rows.pop(tenant_id, None)


class FakeUsers:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], UserRecord] = {}

    async def get(self, tenant_id: str, staff_id: str) -> UserRecord | None:
        return self.rows.get((tenant_id, staff_id))

    async def list_all(self, tenant_id: str) -> list[UserRecord]:
        return [u for (t, _), u in sorted(self.rows.items()) if t == tenant_id]

    async def query(self, tenant_id: str, query: UserQuery) -> UserPage:
        return page_users(await self.list_all(tenant_id), query)

    async def save(self, user: UserRecord) -> UserRecord:
        key = (user.tenant_id, user.staff_id)
        current = self.rows.get(key)
        if user.etag is None:
            if current is not None:
                raise AlreadyExists(user.staff_id)
        elif current is None or current.etag != user.etag:
            raise StaleWrite(user.staff_id)
        stored = replace(user, etag=_etag())
        self.rows[key] = stored
        return stored

    async def delete(self, tenant_id: str, staff_id: str) -> None:
        self.rows.pop((tenant_id, staff_id), None)

    async def delete_tenant(self, tenant_id: str) -> None:
        for key in [k for k in self.rows if k[0] == tenant_id]:
            del self.rows[key]


class FakeConsentStates:
    def __init__(self) -> None:
        self.rows: dict[str, ConsentState] = {}

    async def add(self, state: ConsentState) -> None:
        self.rows[state.state_hash] = state

    async def take(self, state_hash: str) -> ConsentState | None:
        return self.rows.pop(state_hash, None)

    async def delete_tenant(self, tenant_id: str) -> None:
        for key in [k for k, v in self.rows.items() if v.tenant_id == tenant_id]:
            del self.rows[key]


class FakeSecrets:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.expiry: dict[str, datetime | None] = {}

    async def get(self, name: str) -> str | None:
        return self.values.get(name)

    async def set(self, name: str, value: str, *, expires_on: datetime | None = None) -> None:
        self.values[name] = value
        self.expiry[name] = expires_on

    async def delete(self, name: str) -> None:
        self.values.pop(name, None)


class FakeFeed:
    def __init__(self) -> None:
        self.entries: dict[str, list[Change]] = {}

    async def append(self, tenant_id: str, changes: Sequence[Change]) -> list[Change]:
        log = self.entries.setdefault(tenant_id, [])
        numbered = [replace(c, sequence=len(log) + i + 1) for i, c in enumerate(changes)]
        log.extend(numbered)
        return numbered

    async def read(self, tenant_id: str, after: int, limit: int) -> list[Change]:
        return [c for c in self.entries.get(tenant_id, []) if (c.sequence or 0) > after][:limit]

    async def delete_tenant(self, tenant_id: str) -> None:
        self.entries.pop(tenant_id, None)

    def types(self, tenant_id: str) -> list[str]:
        return [c.type for c in self.entries.get(tenant_id, [])]


class FakeJobs:
    def __init__(self) -> None:
        self.queued: list[Job] = []

    async def enqueue(self, jobs: Iterable[Job]) -> None:
        self.queued.extend(jobs)

    def take(self) -> list[Job]:
        taken, self.queued = self.queued, []
        return taken
