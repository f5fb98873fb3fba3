"""The `users` table: the host's staff, their match and their sync state (`UserRepository`)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient

from shared.adapters.storage import TenantStorage
from shared.adapters.tables.rows import (
    as_utc,
    delete_partition,
    etag_of,
    required_utc,
    without_none,
    write_entity,
)
from shared.adapters.tables.transactions import (
    MAX_OPERATIONS,
    Insert,
    Operation,
    Replace,
    TransactionFailed,
    submit,
)
from shared.domain.progress import UserProgress
from shared.domain.teams import TeamsStatus
from shared.domain.users import (
    LegacyLink,
    MatchedBy,
    MatchStatus,
    StaffMember,
    StaffSwitches,
    SyncState,
    TaskSync,
    UserRecord,
)
from shared.service.errors import AlreadyExists, StaleWrite
from shared.service.records import UserPage, UserQuery
from shared.service.user_queries import page_users

USERS: Final = "users"
# The admin's views (progress polled every 3 s, `GET /users`) read a tenant's listing at most this often
# per worker; a change this worker makes to the tenant's users reads it again at once.
CONSOLE_LISTING_SECONDS: Final = 10.0


def user_to_entity(user: UserRecord) -> dict[str, Any]:
    staff = user.staff
    return without_none(
        {
            "PartitionKey": user.tenant_id,
            "RowKey": staff.staff_id,
            "Email": staff.email,
            "Upn": staff.upn,
            "DisplayName": staff.display_name,
            "Enabled": staff.enabled,
            **{
                property_name: getattr(staff.switches, name)
                for name, property_name in SWITCH_PROPERTIES.items()
            },
            **_legacy_properties(staff.legacy_ids),
            "Match": user.match.value,
            "MatchedBy": user.matched_by.value if user.matched_by else None,
            "MatchReason": user.match_reason,
            "GraphUserId": user.graph_user_id,
            "SyncState": user.sync_state.value,
            "LastSyncAt": user.last_sync_at,
            "MigratedAt": user.migrated_at,
            "LastError": user.last_error,
            "SubscriptionId": user.subscription_id,
            "SubscriptionExpiresAt": user.subscription_expires_at,
            "DeltaLink": user.delta_link,
            "DeltaSince": user.delta_since,
            "DeltaWindowStart": user.delta_window[0] if user.delta_window else None,
            "DeltaWindowEnd": user.delta_window[1] if user.delta_window else None,
            "Teams": user.teams.value if user.teams else None,
            "TeamsReason": user.teams_reason,
            "TaskSync": task_sync_json(user.task_sync),
            "TodoListNameOverride": staff.todo_list_name,
            "TodoListId": user.todo_list_id,
            "TodoListName": user.todo_list_name,
            "TodoListReason": user.todo_list_reason,
            "UpdatedAt": user.updated_at,
        }
    )


_NO_TASK_SYNC: Final = TaskSync()


def task_sync_json(sync: TaskSync) -> str | None:
    """The To Do list's sync state as one compact JSON property (none until the list was first read)."""
    if sync == _NO_TASK_SYNC:
        return None
    data = {
        "state": sync.state.value,
        "list_id": sync.list_id,
        "delta_link": sync.delta_link,
        "subscription_id": sync.subscription_id,
        "subscription_expires_at": _iso(sync.subscription_expires_at),
        "last_sync_at": _iso(sync.last_sync_at),
        "migrated_at": _iso(sync.migrated_at),
        "last_error": sync.last_error,
        "tasks": sync.tasks,
        "zone": sync.zone,
    }
    return json.dumps({k: v for k, v in data.items() if v is not None}, separators=(",", ":"))


def task_sync_of(text: str | None) -> TaskSync:
    if not text:
        return _NO_TASK_SYNC
    data = json.loads(text)
    return TaskSync(
        state=SyncState(data.get("state", SyncState.PENDING)),
        list_id=data.get("list_id"),
        delta_link=data.get("delta_link"),
        subscription_id=data.get("subscription_id"),
        subscription_expires_at=_instant(data.get("subscription_expires_at")),
        last_sync_at=_instant(data.get("last_sync_at")),
        migrated_at=_instant(data.get("migrated_at")),
        last_error=data.get("last_error"),
        tasks=int(data.get("tasks", 0)),
        zone=data.get("zone"),
    )


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


LEGACY_CHUNK: Final = 30_000  # characters per string property (Table Storage allows 32K UTF-16 units)


def _legacy_properties(links: Sequence[LegacyLink]) -> dict[str, Any]:
    """The host's legacy links as compact JSON, split over as many string properties as it takes."""
    if not links:
        return {}
    text = json.dumps(
        [[link.appointment_id, link.ews_id, link.ical_uid] for link in links], separators=(",", ":")
    )
    return {
        f"LegacyIds{i // LEGACY_CHUNK}": text[i : i + LEGACY_CHUNK] for i in range(0, len(text), LEGACY_CHUNK)
    }


def _legacy_links(entity: Any) -> tuple[LegacyLink, ...]:
    chunks: list[str] = []
    while (chunk := entity.get(f"LegacyIds{len(chunks)}")) is not None:
        chunks.append(chunk)
    if not chunks:
        return ()
    return tuple(LegacyLink(a, e, i) for a, e, i in json.loads("".join(chunks)))


SWITCH_PROPERTIES: Final = {
    "calendar_to_outlook": "CalendarToOutlookSwitch",
    "calendar_from_outlook": "CalendarFromOutlookSwitch",
    "video": "VideoSwitch",
    "mail": "MailSwitch",
    "tasks_to_outlook": "TasksToOutlookSwitch",
    "tasks_from_outlook": "TasksFromOutlookSwitch",
}
_DEFAULT_SWITCHES: Final = StaffSwitches()


def _switches(entity: Any) -> StaffSwitches:
    """A row written before a switch existed reads as that switch's default."""
    return StaffSwitches(
        **{
            name: bool(entity.get(property_name, getattr(_DEFAULT_SWITCHES, name)))
            for name, property_name in SWITCH_PROPERTIES.items()
        }
    )


# What `progress_from_entity` reads: the projection `list_progress` asks for.
PROGRESS_PROPERTIES: Final = ("Match", "SyncState", "MigratedAt", "UpdatedAt")


def progress_from_entity(entity: Mapping[str, Any]) -> UserProgress:
    """The four properties progress reads, converted once for both readers (`user_from_entity` takes them
    from here). A projection answers a property the row lacks as absent (Azurite) or as null (Azure
    Tables): either reads as a row written without it."""
    return UserProgress(
        match=MatchStatus(entity["Match"]),
        sync_state=SyncState(entity.get("SyncState") or SyncState.PENDING),
        migrated_at=as_utc(entity.get("MigratedAt")),
        updated_at=required_utc(entity["UpdatedAt"]),
    )


def user_from_entity(entity: Any) -> UserRecord:
    matched_by = entity.get("MatchedBy")
    user_progress = progress_from_entity(entity)
    return UserRecord(
        tenant_id=entity["PartitionKey"],
        staff=StaffMember(
            staff_id=entity["RowKey"],
            email=entity.get("Email"),
            upn=entity.get("Upn"),
            display_name=entity.get("DisplayName") or "",
            enabled=bool(entity.get("Enabled", True)),
            legacy_ids=_legacy_links(entity),
            switches=_switches(entity),
            todo_list_name=entity.get("TodoListNameOverride"),
        ),
        match=user_progress.match,
        updated_at=user_progress.updated_at,
        graph_user_id=entity.get("GraphUserId"),
        matched_by=MatchedBy(matched_by) if matched_by else None,
        match_reason=entity.get("MatchReason"),
        sync_state=user_progress.sync_state,
        last_sync_at=as_utc(entity.get("LastSyncAt")),
        migrated_at=user_progress.migrated_at,
        last_error=entity.get("LastError"),
        subscription_id=entity.get("SubscriptionId"),
        subscription_expires_at=as_utc(entity.get("SubscriptionExpiresAt")),
        delta_link=entity.get("DeltaLink"),
        delta_since=as_utc(entity.get("DeltaSince")),
        delta_window=_delta_window(entity),
        teams=TeamsStatus(entity["Teams"]) if entity.get("Teams") else None,
        teams_reason=entity.get("TeamsReason"),
        task_sync=task_sync_of(entity.get("TaskSync")),
        todo_list_id=entity.get("TodoListId"),
        todo_list_name=entity.get("TodoListName"),
        todo_list_reason=entity.get("TodoListReason"),
        etag=etag_of(entity),
    )


def _delta_window(entity: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    start, end = as_utc(entity.get("DeltaWindowStart")), as_utc(entity.get("DeltaWindowEnd"))
    return (start, end) if start is not None and end is not None else None


class TableUsers:
    """A tenant's users share its partition (RowKey: the staff id). The console's listing is kept per
    worker for `CONSOLE_LISTING_SECONDS` (`console_users`): a console polling every 3 s, or several open
    on one tenant, costs one partition read per that many seconds, not one per request."""

    def __init__(self, storage: TenantStorage) -> None:
        self._storage = storage
        self._listings: dict[str, tuple[float, list[UserRecord]]] = {}  # tenant -> (read at, users)
        self._changes: dict[str, int] = {}  # tenant -> changes this worker made (a listing read across one
        # is not kept: it may predate the change)

    def _changed(self, tenant_id: str) -> None:
        self._changes[tenant_id] = self._changes.get(tenant_id, 0) + 1
        self._listings.pop(tenant_id, None)

    async def console_users(self, tenant_id: str) -> list[UserRecord]:
        kept = self._listings.get(tenant_id)
        if kept is not None and time.monotonic() - kept[0] < CONSOLE_LISTING_SECONDS:
            return kept[1]
        started, changes = time.monotonic(), self._changes.get(tenant_id, 0)
        users = await self.list_all(tenant_id)
        if self._changes.get(tenant_id, 0) == changes:
            self._listings[tenant_id] = (started, users)
        return users

    async def _table(self, tenant_id: str) -> TableClient:
        return await (await self._storage.for_tenant(tenant_id)).table(USERS)

    async def get(self, tenant_id: str, staff_id: str) -> UserRecord | None:
        try:
            entity = await (await self._table(tenant_id)).get_entity(tenant_id, staff_id)
        except ResourceNotFoundError:
            return None
        return user_from_entity(entity)

    async def list_all(self, tenant_id: str) -> list[UserRecord]:
        table = await self._table(tenant_id)
        query = table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": tenant_id}, results_per_page=1000
        )
        return [user_from_entity(e) async for e in query]

    async def list_progress(self, tenant_id: str) -> list[UserProgress]:
        """The partition read with `$select` of the four properties progress uses: none of the delta
        links, task sync JSON and the rest a whole row carries is sent, parsed or converted."""
        table = await self._table(tenant_id)
        query = table.query_entities(
            "PartitionKey eq @pk",
            parameters={"pk": tenant_id},
            select=list(PROGRESS_PROPERTIES),
            results_per_page=1000,
        )
        return [progress_from_entity(e) async for e in query]

    async def migration_pending(self, tenant_id: str) -> bool:
        table = await self._table(tenant_id)
        query = table.query_entities(
            # (the SDK substitutes a parameter only when whitespace follows it: no `@name)`)
            "PartitionKey eq @pk and Match eq @matched"
            " and ( SyncState eq @pending or SyncState eq @migrating )",
            parameters={
                "pk": tenant_id,
                "matched": MatchStatus.MATCHED.value,
                "pending": SyncState.PENDING.value,
                "migrating": SyncState.MIGRATING.value,
            },
            select=["RowKey"],
            results_per_page=1,
        )
        async for _ in query:
            return True
        return False

    async def query(self, tenant_id: str, query: UserQuery, *, kept: bool = False) -> UserPage:
        return page_users(await (self.console_users if kept else self.list_all)(tenant_id), query)

    async def save(self, user: UserRecord) -> UserRecord:
        self._changed(user.tenant_id)
        try:
            etag = await write_entity(await self._table(user.tenant_id), user_to_entity(user), user.etag)
        finally:
            self._changed(user.tenant_id)
        return replace(user, etag=etag)

    async def delete(self, tenant_id: str, staff_id: str) -> None:
        self._changed(tenant_id)
        try:
            await (await self._table(tenant_id)).delete_entity(tenant_id, staff_id)
        finally:
            self._changed(tenant_id)

    async def delete_tenant(self, tenant_id: str) -> None:
        self._changed(tenant_id)
        try:
            await delete_partition(await self._table(tenant_id), tenant_id)
        finally:
            self._changed(tenant_id)

    async def save_all(self, users: Sequence[UserRecord]) -> list[UserRecord | None]:
        """Up to 100 users per entity-group transaction (one tenant's rows share a partition). A transaction
        is all or nothing: when one row in it lost a race, its rows are saved one by one to tell which."""
        if not users:
            return []
        table = await self._table(users[0].tenant_id)  # one tenant's users, as the port says
        tenants = {user.tenant_id for user in users}
        for tenant_id in tenants:
            self._changed(tenant_id)
        try:
            return await self._save_chunks(table, users)
        finally:
            for tenant_id in tenants:
                self._changed(tenant_id)

    async def _save_chunks(self, table: TableClient, users: Sequence[UserRecord]) -> list[UserRecord | None]:
        saved: list[UserRecord | None] = []
        for chunk in _user_transactions(users):
            try:
                etags = await submit(table, [operation for _, operation in chunk])
            except TransactionFailed as error:
                if error.status not in (404, 409, 412, 413):
                    raise
                saved += [await self._save_or_none(user) for user, _ in chunk]
                continue
            saved += [replace(user, etag=etag) for (user, _), etag in zip(chunk, etags, strict=True)]
        return saved

    async def _save_or_none(self, user: UserRecord) -> UserRecord | None:
        try:
            return await self.save(user)
        except (StaleWrite, AlreadyExists):
            return None


USER_TRANSACTION_CHARS: Final = 1_500_000  # well under a transaction's 4 MiB payload


def _user_operation(user: UserRecord) -> tuple[Operation, int]:
    """The transaction operation that saves the user as `save` does, and about how many characters it is."""
    entity = user_to_entity(user)
    chars = sum(len(str(value)) + len(name) + 8 for name, value in entity.items())
    if user.etag is None:
        return Insert(entity), chars
    return Replace(entity, user.etag), chars


def _user_transactions(users: Sequence[UserRecord]) -> list[list[tuple[UserRecord, Operation]]]:
    """Consecutive users in transactions: one tenant, distinct rows, at most 100, bounded in size."""
    groups: list[list[tuple[UserRecord, Operation]]] = []
    keys: set[tuple[str, str]] = set()
    size = 0
    for user in users:
        operation, chars = _user_operation(user)
        key = (user.tenant_id, user.staff_id)
        last = groups[-1] if groups else None
        if (
            last is not None
            and last[0][0].tenant_id == user.tenant_id
            and key not in keys
            and len(last) < MAX_OPERATIONS
            and size + chars <= USER_TRANSACTION_CHARS
        ):
            last.append((user, operation))
            keys.add(key)
            size += chars
        else:
            groups.append([(user, operation)])
            keys, size = {key}, chars
    return groups
