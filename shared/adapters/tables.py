"""Table Storage repositories: tenants, users, consent states and the change feed.

Optimistic concurrency everywhere two workers can race: replace with `If-Match: <etag>`, so a lost race
surfaces as `StaleWrite` instead of a silent overwrite. Keys are validated by the domain (no `/ \\ # ?`).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters.storage import StorageClients
from shared.domain.tenants import (
    AuthMode,
    ConflictPolicy,
    CustomerApp,
    ImportFilter,
    ImportFilterMode,
    MultiStaffMode,
    TeamsMethod,
    Tenant,
    TenantSettings,
    TenantState,
    UserScope,
)
from shared.domain.users import LegacyLink, MatchedBy, MatchStatus, StaffMember, SyncState, UserRecord
from shared.service.ports import AlreadyExists, Change, ConsentState, StaleWrite, UserPage, UserQuery
from shared.service.user_queries import page_users

TENANTS: Final = "tenants"
USERS: Final = "users"
CONSENT_STATES: Final = "consentstates"
CHANGES: Final = "changes"
TENANT_PARTITION: Final = "tenant"
STATE_PARTITION: Final = "state"
FEED_HEAD: Final = "head"
MAX_BATCH: Final = 100  # Table Storage's limit per transaction (the SDK does not enforce it)


def as_utc(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def required_utc(value: Any) -> datetime:
    parsed = as_utc(value)
    if parsed is None:
        raise ValueError("a required timestamp is missing")
    return parsed


def etag_of(entity: Any) -> str | None:
    metadata = getattr(entity, "metadata", None) or {}
    return metadata.get("etag") if isinstance(metadata, dict) else None


def _without_none(entity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if v is not None}


# --- tenants -------------------------------------------------------------------------------------


def settings_to_json(settings: TenantSettings) -> str:
    return json.dumps(asdict(settings), sort_keys=True)


def settings_from_json(raw: str | None) -> TenantSettings:
    if not raw:
        return TenantSettings()
    data = json.loads(raw)
    filt = data.get("import_filter") or {}
    return TenantSettings(
        window_days_back=int(data.get("window_days_back", 30)),
        window_days_forward=int(data.get("window_days_forward", 180)),
        import_filter=ImportFilter(
            ImportFilterMode(filt.get("mode", "all")), tuple(filt.get("categories", ()))
        ),
        privacy_mode=bool(data.get("privacy_mode", False)),
        show_free_events=bool(data.get("show_free_events", True)),
        todo_list_name=str(data.get("todo_list_name") or TenantSettings().todo_list_name),
        teams_method=TeamsMethod(data.get("teams_method", TeamsMethod.EVENT)),
        multi_staff_mode=MultiStaffMode(data.get("multi_staff_mode", MultiStaffMode.COPIES)),
        user_scope=UserScope(data.get("user_scope", UserScope.STAFF)),
        conflict_policy=ConflictPolicy(data.get("conflict_policy", ConflictPolicy.HOST_WINS)),
    )


def tenant_to_entity(tenant: Tenant) -> dict[str, Any]:
    app = tenant.customer_app
    return _without_none(
        {
            "PartitionKey": TENANT_PARTITION,
            "RowKey": tenant.tenant_id,
            "DirectoryId": tenant.directory_id,
            "DisplayName": tenant.display_name,
            "AuthMode": tenant.auth_mode.value,
            "State": tenant.state.value,
            "Settings": settings_to_json(tenant.settings),
            "CreatedAt": tenant.created_at,
            "UpdatedAt": tenant.updated_at,
            "CustomerClientId": app.client_id if app else None,
            "SecretExpiresAt": app.secret_expires_at if app else None,
            "LastError": tenant.last_error,
            "ConnectedAt": tenant.connected_at,
            "CredentialWarningSentAt": tenant.credential_warning_sent_at,
        }
    )


def tenant_from_entity(entity: Any) -> Tenant:
    client_id = entity.get("CustomerClientId")
    return Tenant(
        tenant_id=entity["RowKey"],
        directory_id=entity["DirectoryId"],
        display_name=entity["DisplayName"],
        auth_mode=AuthMode(entity["AuthMode"]),
        state=TenantState(entity["State"]),
        settings=settings_from_json(entity.get("Settings")),
        created_at=required_utc(entity["CreatedAt"]),
        updated_at=required_utc(entity["UpdatedAt"]),
        customer_app=CustomerApp(client_id, as_utc(entity.get("SecretExpiresAt"))) if client_id else None,
        last_error=entity.get("LastError"),
        connected_at=as_utc(entity.get("ConnectedAt")),
        credential_warning_sent_at=as_utc(entity.get("CredentialWarningSentAt")),
        etag=etag_of(entity),
    )


async def _replace(table: TableClient, entity: dict[str, Any], etag: str | None) -> str | None:
    """Replace guarded by the etag; StaleWrite when someone wrote in between (or it is gone)."""
    if etag is None:
        raise StaleWrite(entity["RowKey"])
    try:
        result = await table.update_entity(
            entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
        )
    except (ResourceModifiedError, ResourceNotFoundError):
        raise StaleWrite(entity["RowKey"]) from None
    except HttpResponseError as error:
        if error.status_code == 412:
            raise StaleWrite(entity["RowKey"]) from None
        raise
    return str(result.get("etag")) if result.get("etag") else None


async def _insert(table: TableClient, entity: dict[str, Any]) -> str | None:
    try:
        result = await table.create_entity(entity)
    except ResourceExistsError:
        raise AlreadyExists(entity["RowKey"]) from None
    return str(result.get("etag")) if result.get("etag") else None


class TableTenants:
    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage

    async def _table(self) -> TableClient:
        return await self._storage.table(TENANTS)

    async def get(self, tenant_id: str) -> Tenant | None:
        table = await self._table()
        try:
            entity = await table.get_entity(TENANT_PARTITION, tenant_id)
        except ResourceNotFoundError:
            return None
        return tenant_from_entity(entity)

    async def list(self) -> list[Tenant]:
        table = await self._table()
        query = table.query_entities("PartitionKey eq @pk", parameters={"pk": TENANT_PARTITION})
        return [tenant_from_entity(e) async for e in query]

    async def add(self, tenant: Tenant) -> Tenant:
        etag = await _insert(await self._table(), tenant_to_entity(tenant))
        return replace(tenant, etag=etag)

    async def save(self, tenant: Tenant) -> Tenant:
        etag = await _replace(await self._table(), tenant_to_entity(tenant), tenant.etag)
        return replace(tenant, etag=etag)

    async def delete(self, tenant_id: str) -> None:
        await (await self._table()).delete_entity(TENANT_PARTITION, tenant_id)


# --- users ---------------------------------------------------------------------------------------


def user_to_entity(user: UserRecord) -> dict[str, Any]:
    staff = user.staff
    return _without_none(
        {
            "PartitionKey": user.tenant_id,
            "RowKey": staff.staff_id,
            "Email": staff.email,
            "Upn": staff.upn,
            "DisplayName": staff.display_name,
            "Enabled": staff.enabled,
            **_legacy_properties(staff.legacy_ids),
            "Match": user.match.value,
            "MatchedBy": user.matched_by.value if user.matched_by else None,
            "MatchReason": user.match_reason,
            "GraphUserId": user.graph_user_id,
            "SyncState": user.sync_state.value,
            "LastSyncAt": user.last_sync_at,
            "LastError": user.last_error,
            "SubscriptionId": user.subscription_id,
            "SubscriptionExpiresAt": user.subscription_expires_at,
            "DeltaLink": user.delta_link,
            "UpdatedAt": user.updated_at,
        }
    )


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


def user_from_entity(entity: Any) -> UserRecord:
    matched_by = entity.get("MatchedBy")
    return UserRecord(
        tenant_id=entity["PartitionKey"],
        staff=StaffMember(
            staff_id=entity["RowKey"],
            email=entity.get("Email"),
            upn=entity.get("Upn"),
            display_name=entity.get("DisplayName") or "",
            enabled=bool(entity.get("Enabled", True)),
            legacy_ids=_legacy_links(entity),
        ),
        match=MatchStatus(entity["Match"]),
        updated_at=required_utc(entity["UpdatedAt"]),
        graph_user_id=entity.get("GraphUserId"),
        matched_by=MatchedBy(matched_by) if matched_by else None,
        match_reason=entity.get("MatchReason"),
        sync_state=SyncState(entity.get("SyncState", SyncState.PENDING)),
        last_sync_at=as_utc(entity.get("LastSyncAt")),
        last_error=entity.get("LastError"),
        subscription_id=entity.get("SubscriptionId"),
        subscription_expires_at=as_utc(entity.get("SubscriptionExpiresAt")),
        delta_link=entity.get("DeltaLink"),
        etag=etag_of(entity),
    )


async def delete_partition(table: TableClient, partition: str) -> None:
    """Delete every row of a partition, 100 per transaction; idempotent."""
    keys = [
        e["RowKey"]
        async for e in table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": partition}, select="RowKey"
        )
    ]
    for start in range(0, len(keys), MAX_BATCH):
        chunk = keys[start : start + MAX_BATCH]
        try:
            await table.submit_transaction(
                [("delete", {"PartitionKey": partition, "RowKey": key}) for key in chunk]
            )
        except TableTransactionError:
            # Someone deleted a row first: fall back to one by one (delete of a missing row is a no-op).
            for key in chunk:
                await table.delete_entity(partition, key)


class TableUsers:
    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage

    async def _table(self) -> TableClient:
        return await self._storage.table(USERS)

    async def get(self, tenant_id: str, staff_id: str) -> UserRecord | None:
        try:
            entity = await (await self._table()).get_entity(tenant_id, staff_id)
        except ResourceNotFoundError:
            return None
        return user_from_entity(entity)

    async def list_all(self, tenant_id: str) -> list[UserRecord]:
        table = await self._table()
        query = table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": tenant_id}, results_per_page=1000
        )
        return [user_from_entity(e) async for e in query]

    async def migration_pending(self, tenant_id: str) -> bool:
        table = await self._table()
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

    async def query(self, tenant_id: str, query: UserQuery) -> UserPage:
        return page_users(await self.list_all(tenant_id), query)

    async def save(self, user: UserRecord) -> UserRecord:
        table = await self._table()
        entity = user_to_entity(user)
        etag = await (_insert(table, entity) if user.etag is None else _replace(table, entity, user.etag))
        return replace(user, etag=etag)

    async def delete(self, tenant_id: str, staff_id: str) -> None:
        await (await self._table()).delete_entity(tenant_id, staff_id)

    async def delete_tenant(self, tenant_id: str) -> None:
        await delete_partition(await self._table(), tenant_id)


# --- consent states ------------------------------------------------------------------------------


class TableConsentStates:
    """One row per outstanding consent link, keyed by the hash of its state (never the state itself)."""

    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage

    async def _table(self) -> TableClient:
        return await self._storage.table(CONSENT_STATES)

    async def add(self, state: ConsentState) -> None:
        await _insert(
            await self._table(),
            {
                "PartitionKey": STATE_PARTITION,
                "RowKey": state.state_hash,
                "TenantId": state.tenant_id,
                "ExpiresAt": state.expires_at,
            },
        )

    async def take(self, state_hash: str) -> ConsentState | None:
        table = await self._table()
        try:
            entity = await table.get_entity(STATE_PARTITION, state_hash)
        except ResourceNotFoundError:
            return None
        try:
            # Deleting with the etag makes the take one-time even when two callbacks race.
            await table.delete_entity(
                STATE_PARTITION,
                state_hash,
                etag=etag_of(entity),
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        except HttpResponseError as error:
            if error.status_code in (404, 412):
                return None
            raise
        return ConsentState(state_hash, entity["TenantId"], required_utc(entity["ExpiresAt"]))

    async def delete_tenant(self, tenant_id: str) -> None:
        table = await self._table()
        query = table.query_entities(
            "PartitionKey eq @pk and TenantId eq @tid",
            parameters={"pk": STATE_PARTITION, "tid": tenant_id},
            select="RowKey",
        )
        for key in [e["RowKey"] async for e in query]:
            await table.delete_entity(STATE_PARTITION, key)


# --- change feed ---------------------------------------------------------------------------------


def _sequence_key(sequence: int) -> str:
    return f"{sequence:016d}"


class TableChangeFeed:
    """A gapless, ordered feed per tenant.

    The partition holds a head row (the last sequence number) and one row per change. An append writes
    the head (If-Match) and the new rows in one entity-group transaction, so readers never see a gap and
    two writers never share a number; the loser of a race re-reads the head and tries again.
    """

    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage
        # Appends of one worker to one tenant's feed queue up here instead of racing for the head row
        # (each lost race rebuilds and resends a whole transaction); other workers still race by etag.
        self._writers: dict[str, asyncio.Lock] = {}

    async def _table(self) -> TableClient:
        return await self._storage.table(CHANGES)

    async def append(self, tenant_id: str, changes: Sequence[Change]) -> list[Change]:
        appended: list[Change] = []
        async with self._writers.setdefault(tenant_id, asyncio.Lock()):
            for start in range(0, len(changes), MAX_BATCH - 1):
                appended += await self._append_chunk(tenant_id, changes[start : start + MAX_BATCH - 1])
        return appended

    async def _append_chunk(self, tenant_id: str, changes: Sequence[Change]) -> list[Change]:
        table = await self._table()
        for attempt in range(100):
            try:
                head = await table.get_entity(tenant_id, FEED_HEAD)
                last, etag = int(head["Last"]), etag_of(head)
            except ResourceNotFoundError:
                last, etag = 0, None
            numbered = [replace(c, sequence=last + i + 1) for i, c in enumerate(changes)]
            head_entity = {"PartitionKey": tenant_id, "RowKey": FEED_HEAD, "Last": last + len(changes)}
            head_op: tuple[Any, ...] = (
                ("create", head_entity)
                if etag is None
                else (
                    "update",
                    head_entity,
                    {
                        "mode": UpdateMode.REPLACE,
                        "etag": etag,
                        "match_condition": MatchConditions.IfNotModified,
                    },
                )
            )
            operations: list[Any] = [head_op]
            for change in numbered:
                assert change.sequence is not None
                operations.append(("create", self._entity(tenant_id, change)))
            try:
                await table.submit_transaction(operations)
            except (TableTransactionError, ResourceExistsError):
                # Another writer moved the head first: back off a little (jittered) and try again.
                await asyncio.sleep(random.uniform(0, 0.005 * min(attempt + 1, 10)))  # noqa: S311
                continue
            return numbered
        raise StaleWrite(f"change feed of {tenant_id}: too much contention")

    @staticmethod
    def _entity(tenant_id: str, change: Change) -> dict[str, Any]:
        assert change.sequence is not None
        return _without_none(
            {
                "PartitionKey": tenant_id,
                "RowKey": _sequence_key(change.sequence),
                "Type": change.type,
                "StaffId": change.staff_id,
                "Data": json.dumps(change.data, separators=(",", ":"), default=str),
                "OccurredAt": change.occurred_at,
            }
        )

    async def read(self, tenant_id: str, after: int, limit: int) -> list[Change]:
        table = await self._table()
        query = table.query_entities(
            "PartitionKey eq @pk and RowKey gt @after and RowKey lt @head",
            parameters={"pk": tenant_id, "after": _sequence_key(after), "head": FEED_HEAD},
            results_per_page=min(limit, 1000),
        )
        changes: list[Change] = []
        async for e in query:
            changes.append(
                Change(
                    type=e["Type"],
                    tenant_id=tenant_id,
                    data=json.loads(e["Data"]),
                    occurred_at=required_utc(e["OccurredAt"]),
                    staff_id=e.get("StaffId"),
                    sequence=int(e["RowKey"]),
                )
            )
            if len(changes) >= limit:
                break
        return changes

    async def delete_tenant(self, tenant_id: str) -> None:
        await delete_partition(await self._table(), tenant_id)
