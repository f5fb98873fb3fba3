"""In-memory repositories with the adapters' concurrency contract."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.domain.planner import ItemStatus
from shared.domain.progress import UserProgress
from shared.domain.tenants import Tenant
from shared.domain.users import MatchStatus, SyncState, UserRecord
from shared.service.change_json import change_json, check_change_sizes, encoded_change, stored_change_json
from shared.service.change_types import Change as PublishedChange
from shared.service.errors import AlreadyExists, ChangesPruned, DirectoryTaken, StaleWrite
from shared.service.jobs import Job
from shared.service.records import (
    Announcement,
    Change,
    ConsentState,
    DeadLetter,
    LeaseOutcome,
    StoredSecret,
    SubscriptionRecord,
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
    """Tenant rows and the directory claims (directory id -> tenant key), each write all or nothing."""

    def __init__(self) -> None:
        self.rows: dict[str, Tenant] = {}
        self.claims: dict[str, str] = {}

    async def get(self, tenant_id: str) -> Tenant | None:
        return self.rows.get(tenant_id)

    async def list(self) -> list[Tenant]:
        return sorted(self.rows.values(), key=lambda t: t.tenant_id)

    def _check_claim(self, tenant: Tenant) -> None:
        holder = self.claims.get(tenant.directory_id)
        if holder is not None and holder != tenant.tenant_id:
            raise DirectoryTaken(holder)

    async def add(self, tenant: Tenant) -> Tenant:
        if tenant.tenant_id in self.rows:
            raise AlreadyExists(tenant.tenant_id)
        self._check_claim(tenant)
        stored = replace(tenant, etag=_etag())
        self.rows[tenant.tenant_id] = stored
        self.claims[tenant.directory_id] = tenant.tenant_id
        return stored

    async def reconnect(self, tenant: Tenant) -> Tenant:
        current = self.rows.get(tenant.tenant_id)
        if current is None or current.etag != tenant.etag:
            raise StaleWrite(tenant.tenant_id)
        self._check_claim(tenant)
        stored = replace(tenant, etag=_etag())
        self.rows[tenant.tenant_id] = stored
        self.claims[tenant.directory_id] = tenant.tenant_id
        return stored

    async def release_directory(self, tenant: Tenant) -> None:
        if self.claims.get(tenant.directory_id) == tenant.tenant_id:
            del self.claims[tenant.directory_id]

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
        self.requests: Counter[tuple[str, str]] = Counter()  # reads and saves (lost races too) per row

    async def get(self, tenant_id: str, staff_id: str) -> UserRecord | None:
        self.requests[tenant_id, staff_id] += 1
        return self.rows.get((tenant_id, staff_id))

    async def list_all(self, tenant_id: str) -> list[UserRecord]:
        return [u for (t, _), u in sorted(self.rows.items()) if t == tenant_id]

    async def list_progress(self, tenant_id: str) -> list[UserProgress]:
        return [
            UserProgress(u.match, u.sync_state, u.migrated_at, u.updated_at)
            for u in await self.list_all(tenant_id)
        ]

    async def migration_pending(self, tenant_id: str) -> bool:
        return any(
            u.match is MatchStatus.MATCHED and u.sync_state in (SyncState.PENDING, SyncState.MIGRATING)
            for u in await self.list_all(tenant_id)
        )

    async def console_users(self, tenant_id: str) -> list[UserRecord]:
        return await self.list_all(tenant_id)

    async def query(self, tenant_id: str, query: UserQuery, *, kept: bool = False) -> UserPage:
        return page_users(await (self.console_users if kept else self.list_all)(tenant_id), query)

    async def save(self, user: UserRecord) -> UserRecord:
        key = (user.tenant_id, user.staff_id)
        self.requests[key] += 1
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

    async def save_all(self, users: Sequence[UserRecord]) -> list[UserRecord | None]:
        saved: list[UserRecord | None] = []
        for user in users:
            try:
                saved.append(await self.save(user))
            except (StaleWrite, AlreadyExists):
                saved.append(None)
        return saved


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
    """Key Vault's behaviour behind the port: a delete is soft (the versions are kept), and a set on a
    soft-deleted name recovers it and adds a version, as the adapter does."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.expiry: dict[str, datetime | None] = {}
        self.versions: dict[str, list[str]] = {}
        self.deleted: dict[str, list[str]] = {}
        self.disabled: set[str] = set()  # version ids an operator disabled

    @staticmethod
    def version_id(index: int) -> str:
        """A version's id, from its place in the secret's history (Key Vault's are 32 hex digits too)."""
        return f"{index + 1:032x}"

    async def get(self, name: str) -> str | None:
        return self.values.get(name)

    async def current(self, name: str) -> StoredSecret | None:
        if name not in self.values:
            return None
        return StoredSecret(self.values[name], self.version_id(len(self.versions.get(name, [""])) - 1))

    async def at_version(self, name: str, version: str) -> str | None:
        history = self.versions.get(name, []) if name in self.values else []
        for index, value in enumerate(history):
            if self.version_id(index) == version and version not in self.disabled:
                return value
        return None

    async def set(self, name: str, value: str, *, expires_on: datetime | None = None) -> str:
        if name in self.deleted:
            self.versions[name] = self.deleted.pop(name)
        self.versions.setdefault(name, []).append(value)
        self.values[name] = value
        self.expiry[name] = expires_on
        return self.version_id(len(self.versions[name]) - 1)

    async def delete(self, name: str) -> None:
        if self.values.pop(name, None) is not None:
            self.deleted[name] = self.versions.pop(name, [])


class FakeFeed:
    """The feed's contract: gapless numbers, pruning that keeps the newest change (the table keeps its
    newest row), a clear that keeps the numbering, and `ChangesPruned` for a cursor before what is kept."""

    def __init__(self) -> None:
        self.entries: dict[str, list[Change]] = {}
        self.heads: dict[str, int] = {}  # the last number given
        self.floors: dict[str, int] = {}  # the last number no longer kept
        self.keys: dict[tuple[str, str], list[int]] = {}  # (tenant, key) -> the numbers it was given

    async def append(
        self, tenant_id: str, changes: Sequence[Change], *, key: str | None = None
    ) -> list[Change]:
        check_change_sizes([encoded_change(c) for c in changes], changes)
        if key is not None and (tenant_id, key) in self.keys:  # appended once: its first numbers
            return [replace(c, sequence=n) for c, n in zip(changes, self.keys[tenant_id, key], strict=True)]
        log = self.entries.setdefault(tenant_id, [])
        head = self.heads.get(tenant_id, 0)
        numbered = [replace(c, sequence=head + i + 1) for i, c in enumerate(changes)]
        log.extend(numbered)
        self.heads[tenant_id] = head + len(numbered)
        if key is not None:
            self.keys[tenant_id, key] = [c.sequence or 0 for c in numbered]
        return numbered

    async def read(self, tenant_id: str, after: int, limit: int) -> list[Change]:
        floor = self.floors.get(tenant_id, 0)
        if after < floor:
            raise ChangesPruned(tenant_id, after, floor)
        return [c for c in self.entries.get(tenant_id, []) if (c.sequence or 0) > after][:limit]

    async def prune(self, tenant_id: str, before: datetime) -> int:
        log = self.entries.get(tenant_id, [])
        count = 0
        for change in log[:-1]:  # oldest first; the newest is kept
            if change.occurred_at >= before:
                break
            count += 1
        if count:
            self.entries[tenant_id] = log[count:]
            self.floors[tenant_id] = log[count - 1].sequence or 0
        return count

    async def clear(self, tenant_id: str) -> None:
        self.entries[tenant_id] = []
        self.floors[tenant_id] = self.heads.get(tenant_id, 0)

    async def read_json(self, tenant_id: str, after: int, limit: int) -> list[tuple[int, str]]:
        changes = await self.read(tenant_id, after, limit)
        return [
            (c.sequence or 0, stored_change_json(tenant_id, c.sequence or 0, encoded_change(c)))
            for c in changes
        ]

    async def head(self, tenant_id: str) -> int:
        return len(self.entries.get(tenant_id, []))

    async def delete_tenant(self, tenant_id: str) -> None:
        self.entries.pop(tenant_id, None)
        self.heads.pop(tenant_id, None)
        self.floors.pop(tenant_id, None)

    def types(self, tenant_id: str) -> list[str]:
        return [c.type for c in self.entries.get(tenant_id, [])]


class PublishedFeed(FakeFeed):
    """The feed of the fake world: the store's contract (any data, as the table keeps it) and the published
    one, so a service that publishes a change off the OpenAPI document's `Change` union fails its tests."""

    async def append(
        self, tenant_id: str, changes: Sequence[Change], *, key: str | None = None
    ) -> list[Change]:
        numbered = await super().append(tenant_id, changes, key=key)
        for change in numbered:
            PublishedChange.model_validate(json.loads(json.dumps(change_json(change), default=str)))
        return numbered


class FakeJobs:
    def __init__(self) -> None:
        self.queued: list[Job] = []

    async def enqueue(self, jobs: Iterable[Job]) -> None:
        self.queued.extend(jobs)

    async def enqueue_off_home(self, jobs: Sequence[Job]) -> list[Job]:
        return list(jobs)  # one storage account: every job goes through the binding

    def take(self) -> list[Job]:
        taken, self.queued = self.queued, []
        return taken


def _in_utc(status: ItemStatus) -> ItemStatus:
    return replace(status, ends_at=status.ends_at.astimezone(UTC))  # stored as UTC


class FakeItemStatuses:
    """`ItemStatusRepository`: per user, the run's statuses and the notes from outside the run, kept as the
    table adapter keeps them: `apply` folds the notes its run's `load` saw, and a note made since
    outlives it."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, ItemStatus]] = {}
        self.notes: dict[tuple[str, str], dict[str, tuple[int, ItemStatus | None]]] = {}
        self._seen: dict[tuple[str, str], dict[str, int]] = {}  # note versions a load saw
        self._versions = itertools.count(1)
        self.announcements: dict[tuple[str, str], Announcement] = {}  # stored with statuses, not cleared

    async def load(
        self, tenant_id: str, staff_id: str, *, probably_empty: bool = False
    ) -> dict[str, ItemStatus]:
        key = (tenant_id, staff_id)
        notes = self.notes.get(key, {})
        self._seen[key] = {graph_id: version for graph_id, (version, _) in notes.items()}
        merged = dict(self.rows.get(key, {}))
        for graph_id, (_, status) in notes.items():
            if status is None:
                merged.pop(graph_id, None)
            else:
                merged[graph_id] = status
        return merged

    async def apply(
        self,
        tenant_id: str,
        staff_id: str,
        upserts: Sequence[ItemStatus],
        deletes: Sequence[str],
        *,
        announcing: Announcement | None = None,
    ) -> None:
        key = (tenant_id, staff_id)
        if announcing is not None:  # in the first transaction, before any status
            self.announcements[key] = announcing
        rows = self.rows.setdefault(key, {})
        notes = self.notes.setdefault(key, {})
        seen = self._seen.pop(key, None)
        if seen is None:  # no load in this run: the notes there are now
            seen = {graph_id: version for graph_id, (version, _) in notes.items()}
        for graph_id, version in seen.items():
            if graph_id in notes and notes[graph_id][0] == version:
                status = notes.pop(graph_id)[1]
                if status is None:
                    rows.pop(graph_id, None)
                else:
                    rows[graph_id] = status
        for graph_id in deletes:
            rows.pop(graph_id, None)
        for status in upserts:
            rows[status.graph_id] = _in_utc(status)

    async def note(
        self, tenant_id: str, staff_id: str, upserts: Sequence[ItemStatus], deletes: Sequence[str]
    ) -> None:
        notes = self.notes.setdefault((tenant_id, staff_id), {})
        for graph_id in deletes:
            notes[graph_id] = (next(self._versions), None)
        for status in upserts:
            notes[status.graph_id] = (next(self._versions), _in_utc(status))

    async def pending(self, tenant_id: str, staff_id: str) -> Announcement | None:
        return self.announcements.get((tenant_id, staff_id))

    async def announced(self, tenant_id: str, staff_id: str, key: str) -> None:
        held = self.announcements.get((tenant_id, staff_id))
        if held is not None and held.key == key:
            del self.announcements[tenant_id, staff_id]

    async def delete_user(self, tenant_id: str, staff_id: str) -> None:
        self.rows.pop((tenant_id, staff_id), None)
        self.notes.pop((tenant_id, staff_id), None)
        self.announcements.pop((tenant_id, staff_id), None)

    async def delete_tenant(self, tenant_id: str) -> None:
        for key in [k for k in self.rows if k[0] == tenant_id]:
            del self.rows[key]
        for key in [k for k in self.notes if k[0] == tenant_id]:
            del self.notes[key]
        for key in [k for k in self.announcements if k[0] == tenant_id]:
            del self.announcements[key]


class FakeLeases:
    """`LeaseStore` with the table adapter's semantics (expiry, the 'again' flag)."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, datetime, bool]] = {}  # key -> (owner, expires_at, again)

    async def acquire(
        self, key: str, owner: str, ttl: timedelta, now: datetime, *, succeeds: Sequence[str] = ()
    ) -> LeaseOutcome:
        held = self.rows.get(key)
        if (
            held is not None
            and held[1] > now
            and held[0] != owner
            and not held[0].startswith(tuple(succeeds))
        ):
            self.rows[key] = (held[0], held[1], True)
            return LeaseOutcome.DEFERRED
        self.rows[key] = (owner, now + ttl, False)
        return LeaseOutcome.ACQUIRED

    async def release(self, key: str, owner: str) -> bool:
        held = self.rows.get(key)
        if held is None or held[0] != owner:
            return False
        if held[2]:
            self.rows[key] = (owner, held[1], False)
            return True
        del self.rows[key]
        return False

    async def acquire_together(self, keys: Sequence[str], owner: str, ttl: timedelta, now: datetime) -> bool:
        _one_tenant(keys)
        if any(key in self.rows for key in keys):  # a row, held or lapsed: as the table's inserts fail
            return False
        for key in keys:
            self.rows[key] = (owner, now + ttl, False)
        return True

    async def release_together(self, keys: Sequence[str], owner: str) -> bool:
        _one_tenant(keys)
        held = [self.rows.get(key) for key in keys]
        if any(h is None or h[0] != owner or h[2] for h in held):
            return False
        for key in keys:
            del self.rows[key]
        return True

    async def delete_prefix(self, prefix: str) -> None:
        for key in [k for k in self.rows if k.startswith(prefix)]:
            del self.rows[key]


def _one_tenant(keys: Sequence[str]) -> None:
    if len({key.partition("/")[0] for key in keys}) != 1:
        raise ValueError("leases taken together belong to one tenant")


class FakeSubscriptionIndex:
    def __init__(self) -> None:
        self.rows: dict[str, SubscriptionRecord] = {}

    async def get(self, subscription_id: str) -> SubscriptionRecord | None:
        return self.rows.get(subscription_id)

    async def put(self, record: SubscriptionRecord) -> None:
        notified = record.last_notified_at.astimezone(UTC) if record.last_notified_at else None
        self.rows[record.subscription_id] = replace(
            record, expires_at=record.expires_at.astimezone(UTC), last_notified_at=notified, etag=_etag()
        )

    async def delete(self, subscription_id: str) -> None:
        self.rows.pop(subscription_id, None)

    async def expiring(self, before: datetime) -> list[SubscriptionRecord]:
        """Soonest first."""
        expiring = (r for r in self.rows.values() if r.expires_at < before)
        return sorted(expiring, key=lambda r: (r.expires_at, r.subscription_id))

    async def for_tenant(self, tenant_id: str) -> list[SubscriptionRecord]:
        """By subscription id."""
        return sorted(
            (r for r in self.rows.values() if r.tenant_id == tenant_id), key=lambda r: r.subscription_id
        )


class FakeDeadLetters:
    MAX_REASON = 2000  # characters, as the table adapter keeps (the contract suite checks both)

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], DeadLetter] = {}

    async def add(self, letter: DeadLetter) -> None:
        """Replaces a letter with the same first sequence; a long reason is cut, as the table does."""
        self.rows[(letter.tenant_id, letter.first_sequence)] = replace(
            letter, reason=letter.reason[: self.MAX_REASON], failed_at=letter.failed_at.astimezone(UTC)
        )

    async def list(self, tenant_id: str) -> list[DeadLetter]:
        return sorted(
            (d for d in self.rows.values() if d.tenant_id == tenant_id), key=lambda d: d.first_sequence
        )

    async def delete(self, tenant_id: str, first_sequence: int) -> None:
        self.rows.pop((tenant_id, first_sequence), None)

    async def delete_tenant(self, tenant_id: str) -> None:
        for key in [k for k in self.rows if k[0] == tenant_id]:
            del self.rows[key]


class MessageJobs:
    """`JobQueue` keeping each job as the message the Storage adapter sends (`StorageJobQueue`): encoded,
    with the trace context of the work that queued it."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []  # (queue, message)

    async def enqueue(self, jobs: Iterable[Job]) -> None:
        from shared import telemetry
        from shared.service.job_codec import encode

        trace = telemetry.carrier()
        self.messages.extend((job.queue, encode(job, trace)) for job in jobs)

    async def enqueue_off_home(self, jobs: Sequence[Job]) -> list[Job]:
        return list(jobs)  # one storage account: every job goes through the binding

    def take(self, queue: str) -> list[str]:
        taken = [message for name, message in self.messages if name == queue]
        self.messages = [(name, message) for name, message in self.messages if name != queue]
        return taken
