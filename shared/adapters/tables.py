"""Table Storage repositories: tenants, users, consent states and the change feed.

Optimistic concurrency everywhere two workers can race: replace with `If-Match: <etag>`, so a lost race
surfaces as `StaleWrite` instead of a silent overwrite. Keys are validated by the domain (no `/ \\ # ?`).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters.storage import StorageClients
from shared.adapters.table_batch import (
    Delete,
    Insert,
    Operation,
    Replace,
    TransactionFailed,
    in_transactions,
    submit,
)
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
from shared.service.change_json import check_change_sizes, encoded_change, stored_change_json
from shared.service.errors import AlreadyExists, DirectoryTaken, StaleWrite
from shared.service.records import Change, ConsentState, UserPage, UserQuery
from shared.service.user_queries import page_users

TENANTS: Final = "tenants"
USERS: Final = "users"
CONSENT_STATES: Final = "consentstates"
CHANGES: Final = "changes"
TENANT_PARTITION: Final = "tenant"
# A directory's claim shares the tenants' partition (so a tenant row and its claim commit together); its
# RowKey starts with `~`, which sorts after every tenant key (a GUID or a domain: [0-9a-z.-]).
DIRECTORY_CLAIM: Final = "~directory-"
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


async def replace_entity(table: TableClient, entity: dict[str, Any], etag: str | None) -> str | None:
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


async def insert_entity(table: TableClient, entity: dict[str, Any]) -> str | None:
    try:
        result = await table.create_entity(entity)
    except ResourceExistsError:
        raise AlreadyExists(entity["RowKey"]) from None
    return str(result.get("etag")) if result.get("etag") else None


def _claim_entity(tenant: Tenant) -> dict[str, Any]:
    return {
        "PartitionKey": TENANT_PARTITION,
        "RowKey": DIRECTORY_CLAIM + tenant.directory_id,
        "TenantId": tenant.tenant_id,
    }


class TableTenants:
    """Tenant rows, and one claim row per connected directory: Insert makes two tenant keys racing for
    the same directory (a GUID and a verified domain) fail the second with a conflict."""

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
        query = table.query_entities(
            "PartitionKey eq @pk and RowKey lt @claims",
            parameters={"pk": TENANT_PARTITION, "claims": DIRECTORY_CLAIM[0]},
        )
        return [tenant_from_entity(e) async for e in query]

    async def add(self, tenant: Tenant) -> Tenant:
        return await self._write_and_claim(tenant, Insert(tenant_to_entity(tenant)))

    async def reconnect(self, tenant: Tenant) -> Tenant:
        if tenant.etag is None:
            raise StaleWrite(tenant.tenant_id)
        return await self._write_and_claim(tenant, Replace(tenant_to_entity(tenant), tenant.etag))

    async def _write_and_claim(self, tenant: Tenant, write: Insert | Replace) -> Tenant:
        """The tenant row and its directory's claim in one transaction. When it fails, the claim row tells
        which part lost: held by another key (DirectoryTaken), held by this key already (a claim a crash
        left behind: written again with the row), or free (the tenant row lost its race)."""
        table = await self._table()
        claim: Operation = Insert(_claim_entity(tenant))
        for _ in range(3):
            try:
                etags = await submit(table, [write, claim])
            except TransactionFailed as error:
                if not error.lost_race:
                    raise
                held = await self._claim_of(table, tenant.directory_id)
                if held is not None and held[0] != tenant.tenant_id:
                    raise DirectoryTaken(held[0]) from None
                if held is not None and not isinstance(claim, Replace):
                    claim = Replace(_claim_entity(tenant), held[1])
                    continue
                if isinstance(write, Insert):
                    raise AlreadyExists(tenant.tenant_id) from None
                raise StaleWrite(tenant.tenant_id) from None
            return replace(tenant, etag=etags[0])
        raise StaleWrite(tenant.tenant_id)

    @staticmethod
    async def _claim_of(table: TableClient, directory_id: str) -> tuple[str, str] | None:
        """The tenant key holding the directory, and the claim's etag."""
        try:
            entity = await table.get_entity(TENANT_PARTITION, DIRECTORY_CLAIM + directory_id)
        except ResourceNotFoundError:
            return None
        return str(entity["TenantId"]), str(etag_of(entity))

    async def release_directory(self, tenant: Tenant) -> None:
        table = await self._table()
        held = await self._claim_of(table, tenant.directory_id)
        if held is None or held[0] != tenant.tenant_id:
            return
        try:
            await table.delete_entity(
                TENANT_PARTITION,
                DIRECTORY_CLAIM + tenant.directory_id,
                etag=held[1],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceNotFoundError, ResourceModifiedError):
            return  # released already, or claimed again meanwhile
        except HttpResponseError as error:
            if error.status_code != 412:
                raise

    async def save(self, tenant: Tenant) -> Tenant:
        etag = await replace_entity(await self._table(), tenant_to_entity(tenant), tenant.etag)
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
            "MigratedAt": user.migrated_at,
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
        migrated_at=as_utc(entity.get("MigratedAt")),
        last_error=entity.get("LastError"),
        subscription_id=entity.get("SubscriptionId"),
        subscription_expires_at=as_utc(entity.get("SubscriptionExpiresAt")),
        delta_link=entity.get("DeltaLink"),
        etag=etag_of(entity),
    )


async def delete_rows(table: TableClient, deletes: Iterable[Delete]) -> None:
    """Delete rows, grouped by partition, 100 per transaction. A row already gone, or changed since the
    ETag a delete names (a newer version, which stays), fails its transaction: its rows then go one by
    one, and those are skipped."""
    by_partition: dict[str, list[Delete]] = {}
    for delete in deletes:
        by_partition.setdefault(delete.partition_key, []).append(delete)
    for partition_deletes in by_partition.values():
        for start in range(0, len(partition_deletes), MAX_BATCH):
            chunk = partition_deletes[start : start + MAX_BATCH]
            try:
                await submit(table, chunk)
            except TransactionFailed as error:
                if not error.lost_race:
                    raise
                for delete in chunk:
                    try:
                        await submit(table, [delete])
                    except TransactionFailed as one:
                        if not one.lost_race:
                            raise


async def delete_partition(table: TableClient, partition: str) -> None:
    """Delete every row of a partition, 100 per transaction; idempotent."""
    query = table.query_entities("PartitionKey eq @pk", parameters={"pk": partition}, select="RowKey")
    await delete_rows(table, [Delete(partition, e["RowKey"]) async for e in query])


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
        etag = await (
            insert_entity(table, entity) if user.etag is None else replace_entity(table, entity, user.etag)
        )
        return replace(user, etag=etag)

    async def delete(self, tenant_id: str, staff_id: str) -> None:
        await (await self._table()).delete_entity(tenant_id, staff_id)

    async def delete_tenant(self, tenant_id: str) -> None:
        await delete_partition(await self._table(), tenant_id)

    async def save_all(self, users: Sequence[UserRecord]) -> list[UserRecord | None]:
        """Up to 100 users per entity-group transaction (one tenant's rows share a partition). A transaction
        is all or nothing: when one row in it lost a race, its rows are saved one by one to tell which."""
        table = await self._table()
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
            and len(last) < MAX_BATCH
            and size + chars <= USER_TRANSACTION_CHARS
        ):
            last.append((user, operation))
            keys.add(key)
            size += chars
        else:
            groups.append([(user, operation)])
            keys, size = {key}, chars
    return groups


# --- consent states ------------------------------------------------------------------------------


class TableConsentStates:
    """One row per outstanding consent link, keyed by the hash of its state (never the state itself)."""

    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage

    async def _table(self) -> TableClient:
        return await self._storage.table(CONSENT_STATES)

    async def add(self, state: ConsentState) -> None:
        await insert_entity(
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


FEED_ROW_CHARS: Final = 30_000  # a row's changes, as ASCII JSON (one string property holds 32K UTF-16 units)
FEED_FIRST_PAGE_ROWS: Final = 4  # the first page of a read; later pages are sized from the rows seen


def _pack(encoded: Sequence[str]) -> list[list[str]]:
    """Consecutive changes grouped into rows of at most `FEED_ROW_CHARS` (a bigger change: a row alone)."""
    rows: list[list[str]] = []
    size = 0
    for text in encoded:
        if rows and size + len(text) + 1 <= FEED_ROW_CHARS:
            rows[-1].append(text)
            size += len(text) + 1
        else:
            rows.append([text])
            size = len(text) + 2
    return rows


def _row_chars(row: list[str]) -> int:
    return sum(len(text) + 1 for text in row)


@dataclass
class _Append:
    """One caller's changes waiting for the tenant's writer, and where their sequence numbers go."""

    encoded: list[str]
    done: asyncio.Future[list[int]]


def _settle(entries: Sequence[_Append], error: BaseException) -> None:
    for entry in entries:
        if not entry.done.done():
            entry.done.set_exception(error)


class TableChangeFeed:
    """A gapless, ordered feed per tenant.

    The partition holds a head row (the last sequence number) and rows of consecutive changes, packed up to
    `FEED_ROW_CHARS` and keyed by the last sequence they hold (`First` is the first), so `RowKey gt
    cursor` finds the row holding the change after any cursor. A write puts the head (If-Match) and its
    rows in one entity-group transaction, so readers never see a gap and two writers never share a
    number; the loser of a race re-reads the head and tries again.

    In a worker, one writer per tenant commits for every caller (group commit): appends that arrive while
    a transaction is on its way wait and go together in the next one, in arrival order. Many jobs of one
    tenant finishing at once so cost one transaction per round trip, not one each in turn (a lock held
    across each caller's round trip made them queue behind each other). The writer remembers the head and
    its etag, so a round is one transaction unless another worker wrote in between.
    """

    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage
        self._waiting: dict[str, list[_Append]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}
        self._heads: dict[str, tuple[int, str | None]] = {}  # tenant -> (last sequence, head etag)

    async def _table(self) -> TableClient:
        return await self._storage.table(CHANGES)

    async def append(self, tenant_id: str, changes: Sequence[Change]) -> list[Change]:
        if not changes:
            return []
        encoded = [encoded_change(c) for c in changes]
        check_change_sizes(encoded, changes)
        entry = _Append(encoded, asyncio.get_running_loop().create_future())
        self._waiting.setdefault(tenant_id, []).append(entry)
        if tenant_id not in self._writers:
            self._writers[tenant_id] = asyncio.create_task(self._write(tenant_id), name=f"feed:{tenant_id}")
        sequences = await asyncio.shield(entry.done)
        return [replace(c, sequence=n) for c, n in zip(changes, sequences, strict=True)]

    async def _write(self, tenant_id: str) -> None:
        """Commit what waits, round after round, until nothing does (then this writer ends)."""
        try:
            while waiting := self._waiting.pop(tenant_id, []):
                await self._commit(tenant_id, waiting)  # errors go to its callers, not here
        finally:
            self._writers.pop(tenant_id, None)
            # Left waiting only when the writer itself was cancelled (the worker is stopping).
            _settle(
                self._waiting.pop(tenant_id, []),
                StaleWrite(f"change feed of {tenant_id}: the writer stopped"),
            )

    async def _commit(self, tenant_id: str, entries: list[_Append]) -> None:
        """Write the entries' changes in order; each caller gets its sequence numbers, or the error."""
        encoded = [text for entry in entries for text in entry.encoded]
        sequences: list[int] = []
        try:
            for rows in in_transactions(_pack(encoded), _row_chars, reserved=1):  # and the head
                count = sum(len(row) for row in rows)
                last = await self._append_rows(tenant_id, rows)
                sequences += range(last - count + 1, last + 1)
        except Exception as error:
            if len(entries) > 1 and not sequences:
                # Nothing was written: one bad append (a change too large, say) must not fail its round-mates.
                for entry in entries:
                    await self._commit(tenant_id, [entry])
                return
            _settle(entries, error)
            return
        except BaseException:
            _settle(entries, StaleWrite(f"change feed of {tenant_id}: the writer stopped"))
            raise
        offset = 0
        for entry in entries:
            if not entry.done.done():
                entry.done.set_result(sequences[offset : offset + len(entry.encoded)])
            offset += len(entry.encoded)

    async def _head(self, table: TableClient, tenant_id: str) -> tuple[int, str | None]:
        cached = self._heads.get(tenant_id)
        if cached is not None:
            return cached
        try:
            head = await table.get_entity(tenant_id, FEED_HEAD)
        except ResourceNotFoundError:
            return 0, None
        return int(head["Last"]), etag_of(head)

    async def _append_rows(self, tenant_id: str, rows: list[list[str]]) -> int:
        """Write the rows after the head in one transaction; the last sequence written."""
        table = await self._table()
        for attempt in range(100):
            last, etag = await self._head(table, tenant_id)
            operations: list[Operation] = []
            sequence = last
            for row in rows:
                first, sequence = sequence + 1, sequence + len(row)
                operations.append(Insert(self._row(tenant_id, first, sequence, row)))
            head_entity = {"PartitionKey": tenant_id, "RowKey": FEED_HEAD, "Last": sequence}
            operations.insert(0, Insert(head_entity) if etag is None else Replace(head_entity, etag))
            try:
                etags = await submit(table, operations)
            except TransactionFailed as error:
                if not error.lost_race:
                    raise
                # Another writer moved the head first: forget ours, back off a little (jittered), try again.
                self._heads.pop(tenant_id, None)
                await asyncio.sleep(random.uniform(0, 0.005 * min(attempt + 1, 10)))  # noqa: S311
                continue
            except BaseException:
                self._heads.pop(tenant_id, None)  # the outcome is unknown: read the head next time
                raise
            new_etag = etags[0]
            if new_etag:
                self._heads[tenant_id] = (sequence, new_etag)
            else:
                self._heads.pop(tenant_id, None)
            return sequence
        raise StaleWrite(f"change feed of {tenant_id}: too much contention")

    @staticmethod
    def _row(tenant_id: str, first: int, last: int, encoded: Sequence[str]) -> dict[str, Any]:
        text = "\n".join(encoded)  # a line per change: a reader decodes only the changes it wants
        entity: dict[str, Any] = {"PartitionKey": tenant_id, "RowKey": _sequence_key(last), "First": first}
        for i in range(0, len(text), FEED_ROW_CHARS):  # only a single oversized change spills over
            entity[f"Changes{i // FEED_ROW_CHARS}"] = text[i : i + FEED_ROW_CHARS]
        return entity

    @staticmethod
    def _lines_of(entity: Any, after: int, until: int) -> list[tuple[int, str]]:
        """The row's stored changes numbered after `after` up to `until`, with their numbers."""
        parts: list[str] = []
        while (part := entity.get(f"Changes{len(parts)}")) is not None:
            parts.append(part)
        lines = "".join(parts).split("\n")
        first = int(entity["First"])
        numbers = range(max(first, after + 1), min(first + len(lines) - 1, until) + 1)
        return [(sequence, lines[sequence - first]) for sequence in numbers]

    async def _stored(self, tenant_id: str, after: int, limit: int) -> list[tuple[int, str]]:
        """Up to `limit` stored changes after `after`. A row may hold one change or hundreds: the first
        page is a few rows, later pages are sized from the changes per row seen so far."""
        table = await self._table()
        found: list[tuple[int, str]] = []
        key = _sequence_key(after)
        until = after + limit
        rows_wanted = max(1, min(limit, FEED_FIRST_PAGE_ROWS))
        rows_read = 0
        while len(found) < limit:
            pages = table.query_entities(
                "PartitionKey eq @pk and RowKey gt @after and RowKey lt @head",
                parameters={"pk": tenant_id, "after": key, "head": FEED_HEAD},
                results_per_page=rows_wanted,
            ).by_page()
            try:
                page = [e async for e in await pages.__anext__()]
            except StopAsyncIteration:
                break
            for entity in page:
                found += self._lines_of(entity, after, until)
            rows_read += len(page)
            if not page or getattr(pages, "continuation_token", None) is None:
                break
            key = page[-1]["RowKey"]
            per_row = max(1.0, len(found) / rows_read)
            rows_wanted = max(1, min(1000, math.ceil((limit - len(found)) / per_row)))
        return found[:limit]

    async def read(self, tenant_id: str, after: int, limit: int) -> list[Change]:
        changes: list[Change] = []
        for sequence, line in await self._stored(tenant_id, after, limit):
            entry = json.loads(line)
            changes.append(
                Change(
                    type=entry["type"],
                    tenant_id=tenant_id,
                    data=entry["data"],
                    occurred_at=required_utc(entry["occurred_at"]),
                    staff_id=entry["staff_id"],
                    sequence=sequence,
                )
            )
        return changes

    async def read_json(self, tenant_id: str, after: int, limit: int) -> list[tuple[int, str]]:
        stored = await self._stored(tenant_id, after, limit)
        return [(sequence, stored_change_json(tenant_id, sequence, line)) for sequence, line in stored]

    async def delete_tenant(self, tenant_id: str) -> None:
        writer = self._writers.get(tenant_id)
        if writer is not None:  # let this worker's appends land first (they would survive the delete)
            await asyncio.wait({writer})
        self._heads.pop(tenant_id, None)
        await delete_partition(await self._table(), tenant_id)
        self._heads.pop(tenant_id, None)
