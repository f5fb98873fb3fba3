"""The `tenants` table: tenant rows, and the claim row of each connected directory (`TenantRepository`).

Each tenant row is alone in its partition (the tenant id; RowKey empty), and each directory's claim in its
own (`~directory-` and the directory id; RowKey `claim`): the reads every job makes of its tenant spread
over as many partitions as there are tenants. Listing every tenant is a query over the whole table (the
rows with an empty RowKey), which the nightly timer and the host's tenant list make by definition.

Rows of the older layout (every tenant and claim in one partition, `tenant`) move once: the first use of a
worker reads the marker row, and while it is missing the worker copies each old row to its new place
(keeping any newer copy already there), deletes the old one, then writes the marker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables.aio import TableClient

from shared.adapters.storage import StorageClients, StorageRouter
from shared.adapters.tables.rows import (
    RACE_ATTEMPTS,
    as_utc,
    etag_of,
    insert_entity,
    read_entity,
    replace_entity,
    required_utc,
    without_none,
    write_entity,
)
from shared.domain.tenants import (
    AuthMode,
    ConflictPolicy,
    CustomerApp,
    DeliveryHold,
    ImportFilter,
    ImportFilterMode,
    MultiStaffMode,
    RecurringEvents,
    ReleasedRange,
    TeamsMethod,
    Tenant,
    TenantSettings,
    TenantState,
    UserScope,
)
from shared.service.errors import AlreadyExists, DirectoryTaken, StaleWrite
from shared.settings import STORAGE_CONNECTION

TENANTS: Final = "tenants"
TENANT_ROW: Final = ""
# A directory's claim: its own partition, named so that no tenant key (a GUID or a domain: [0-9a-z.-])
# is ever one.
DIRECTORY_CLAIM: Final = "~directory-"
CLAIM_ROW: Final = "claim"
# The storage account holding the tenant's data (a connection name; absent: the home account), on the
# tenant row and its directory's claim. Written when the row is created, kept by every save after.
STORAGE_ACCOUNT: Final = "StorageAccount"
# A claim whose tenant row is missing is left by a crash between the two writes once this old (a younger
# one may be a connection on its way: it holds).
CLAIM_GRACE: Final = timedelta(minutes=1)
LEGACY_PARTITION: Final = "tenant"  # every tenant and claim, before tenants had partitions of their own
LAYOUT_PARTITION: Final = "~layout"
LAYOUT_ROW: Final = "tenants"


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
        mail_deadline_hours=int(data.get("mail_deadline_hours", TenantSettings().mail_deadline_hours)),
        tentative_blocks=bool(data.get("tentative_blocks", True)),
        working_elsewhere_blocks=bool(data.get("working_elsewhere_blocks", False)),
        teams_organizer=data.get("teams_organizer") or None,
        recurring_events=RecurringEvents(data.get("recurring_events", RecurringEvents.SERIES)),
        monitor_retention_days=int(
            data.get("monitor_retention_days", TenantSettings().monitor_retention_days)
        ),
        feed_retention_days=int(data.get("feed_retention_days", TenantSettings().feed_retention_days)),
    )


def tenant_to_entity(tenant: Tenant, account: str | None = None) -> dict[str, Any]:
    app = tenant.customer_app
    return without_none(
        {
            "PartitionKey": tenant.tenant_id,
            "RowKey": TENANT_ROW,
            "DirectoryId": tenant.directory_id,
            "DisplayName": tenant.display_name,
            "AuthMode": tenant.auth_mode.value,
            "State": tenant.state.value,
            "Settings": settings_to_json(tenant.settings),
            "CreatedAt": tenant.created_at,
            "UpdatedAt": tenant.updated_at,
            "CustomerClientId": app.client_id if app else None,
            "SecretExpiresAt": app.secret_expires_at if app else None,
            "SecretVersion": app.secret_version if app else None,
            "LastError": tenant.last_error,
            "ConnectedAt": tenant.connected_at,
            "CredentialWarningSentAt": tenant.credential_warning_sent_at,
            "HeldAt": tenant.delivery_hold.held_at if tenant.delivery_hold else None,
            "HeldFrom": tenant.delivery_hold.from_sequence if tenant.delivery_hold else None,
            "ReleasedFrom": tenant.released.first if tenant.released else None,
            "ReleasedThrough": tenant.released.last if tenant.released else None,
            STORAGE_ACCOUNT: account,
        }
    )


def tenant_from_entity(entity: Any) -> Tenant:
    client_id = entity.get("CustomerClientId")
    return Tenant(
        tenant_id=entity["RowKey"] or entity["PartitionKey"],  # the older layout: keyed by RowKey
        directory_id=entity["DirectoryId"],
        display_name=entity["DisplayName"],
        auth_mode=AuthMode(entity["AuthMode"]),
        state=TenantState(entity["State"]),
        settings=settings_from_json(entity.get("Settings")),
        created_at=required_utc(entity["CreatedAt"]),
        updated_at=required_utc(entity["UpdatedAt"]),
        customer_app=(
            CustomerApp(client_id, as_utc(entity.get("SecretExpiresAt")), entity.get("SecretVersion"))
            if client_id
            else None
        ),
        last_error=entity.get("LastError"),
        connected_at=as_utc(entity.get("ConnectedAt")),
        credential_warning_sent_at=as_utc(entity.get("CredentialWarningSentAt")),
        delivery_hold=_hold(entity),
        released=_released(entity),
        etag=etag_of(entity),
    )


def _hold(entity: Any) -> DeliveryHold | None:
    held_at = as_utc(entity.get("HeldAt"))
    if held_at is None:
        return None
    held_from = entity.get("HeldFrom")
    return DeliveryHold(held_at, int(held_from) if held_from is not None else None)


def _released(entity: Any) -> ReleasedRange | None:
    first, last = entity.get("ReleasedFrom"), entity.get("ReleasedThrough")
    return ReleasedRange(int(first), int(last)) if first is not None and last is not None else None


def _claim_entity(tenant: Tenant, account: str | None = None) -> dict[str, Any]:
    return without_none(
        {
            "PartitionKey": DIRECTORY_CLAIM + tenant.directory_id,
            "RowKey": CLAIM_ROW,
            "TenantId": tenant.tenant_id,
            STORAGE_ACCOUNT: account,
        }
    )


class TenantAccounts:
    """`AccountLookup`: the storage account a tenant's row (or its directory's claim) names; the home
    connection for a row that names none, None when there is no row. A row still in the older layout
    (before its worker moved it) is read there."""

    def __init__(self, home: StorageClients) -> None:
        self._home = home

    async def _row(self, partition: str, row: str, legacy_row: str) -> dict[str, Any] | None:
        table = await self._home.table(TENANTS)
        for pk, rk in ((partition, row), (LEGACY_PARTITION, legacy_row)):
            try:
                entity: dict[str, Any] = await table.get_entity(pk, rk, select=[STORAGE_ACCOUNT])
            except ResourceNotFoundError:
                continue
            return entity
        return None

    async def account_of(self, tenant_id: str) -> str | None:
        entity = await self._row(tenant_id, TENANT_ROW, tenant_id)
        return None if entity is None else str(entity.get(STORAGE_ACCOUNT) or STORAGE_CONNECTION)

    async def account_of_directory(self, directory_id: str) -> str | None:
        claim = DIRECTORY_CLAIM + directory_id
        entity = await self._row(claim, CLAIM_ROW, claim)
        return None if entity is None else str(entity.get(STORAGE_ACCOUNT) or STORAGE_CONNECTION)


class TableTenants:
    """Tenant rows, and one claim row per connected directory: a tenant row is written only once its key
    holds the directory's claim, so two tenant keys racing for the same directory (a GUID and a verified
    domain) fail the second with a conflict."""

    def __init__(self, storage: StorageClients, router: StorageRouter | None = None) -> None:
        """`router`: where a new tenant's data goes (stored on its row), and told every assignment read;
        without one every tenant is in `storage`'s account."""
        self._storage = storage
        self._router = router
        self._moved = False  # this worker saw the layout marker
        self._moving = asyncio.Lock()

    async def _table(self) -> TableClient:
        table = await self._storage.table(TENANTS)
        if not self._moved:
            async with self._moving:
                if not self._moved:
                    await self._move_legacy_rows(table)
        return table

    def _read(self, entity: Any) -> Tenant:
        tenant = tenant_from_entity(entity)
        if self._router is not None:
            self._router.remember(tenant.tenant_id, entity.get(STORAGE_ACCOUNT), tenant.directory_id)
        return tenant

    async def _account(self, tenant_id: str, *, new: bool = False) -> str | None:
        """The account to write on the tenant's row: placed when new, else the one it has (None: home)."""
        if self._router is None:
            return None
        name = self._router.place(tenant_id) if new else await self._router.account_name(tenant_id)
        return None if name == STORAGE_CONNECTION else name

    async def get(self, tenant_id: str) -> Tenant | None:
        entity = await read_entity(await self._table(), tenant_id, TENANT_ROW)
        return self._read(entity) if entity is not None else None

    async def list(self) -> list[Tenant]:
        table = await self._table()
        query = table.query_entities("RowKey eq @row", parameters={"row": TENANT_ROW}, results_per_page=1000)
        return [self._read(e) async for e in query]

    async def add(self, tenant: Tenant) -> Tenant:
        account = await self._account(tenant.tenant_id, new=True)
        added = await self._write_and_claim(tenant, None, account)
        if self._router is not None:
            self._router.remember(tenant.tenant_id, account, tenant.directory_id)
        return added

    async def reconnect(self, tenant: Tenant) -> Tenant:
        if tenant.etag is None:
            raise StaleWrite(tenant.tenant_id)
        return await self._write_and_claim(tenant, tenant.etag, await self._account(tenant.tenant_id))

    async def _write_and_claim(self, tenant: Tenant, etag: str | None, account: str | None) -> Tenant:
        """Claim the directory, then write the tenant row (inserted without an etag, else replaced If-Match);
        a claim this call took goes again when the row's write fails."""
        table = await self._table()
        taken = await self._claim(table, tenant, account)
        try:
            written = await write_entity(table, tenant_to_entity(tenant, account), etag)
        except (AlreadyExists, StaleWrite):
            if taken is not None:
                await self._unclaim(table, tenant.directory_id, taken)
            raise
        return replace(tenant, etag=written)

    async def _claim(self, table: TableClient, tenant: Tenant, account: str | None) -> str | None:
        """Hold the directory's claim for the tenant key: the etag of a claim taken now, None when the key
        held it already; DirectoryTaken when another key holds it."""
        for _ in range(RACE_ATTEMPTS):
            try:
                return await insert_entity(table, _claim_entity(tenant, account))
            except AlreadyExists:
                pass
            held = await self._claim_of(table, tenant.directory_id)
            if held is None:
                continue  # released meanwhile
            holder, etag, at = held
            if holder == tenant.tenant_id:
                return None
            if not await self._left_behind(table, holder, tenant.directory_id, at):
                raise DirectoryTaken(holder)
            try:
                return await replace_entity(table, _claim_entity(tenant, account), etag)
            except StaleWrite:
                continue
        raise StaleWrite(tenant.tenant_id)

    @staticmethod
    async def _left_behind(table: TableClient, holder: str, directory_id: str, at: datetime | None) -> bool:
        """A claim no tenant row stands behind (a crash between claim and row), old enough not to be a
        connection on its way."""
        if at is None or datetime.now(UTC) - at < CLAIM_GRACE:
            return False
        row = await read_entity(table, holder, TENANT_ROW)
        return row is None or row.get("DirectoryId") != directory_id

    @staticmethod
    async def _claim_of(table: TableClient, directory_id: str) -> tuple[str, str, datetime | None] | None:
        """The tenant key holding the directory, the claim's etag and when it was written."""
        entity = await read_entity(table, DIRECTORY_CLAIM + directory_id, CLAIM_ROW)
        if entity is None:
            return None
        written = as_utc(getattr(entity, "metadata", {}).get("timestamp"))
        return str(entity["TenantId"]), str(etag_of(entity)), written

    @staticmethod
    async def _unclaim(table: TableClient, directory_id: str, etag: str) -> None:
        try:
            await table.delete_entity(
                DIRECTORY_CLAIM + directory_id,
                CLAIM_ROW,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceNotFoundError, ResourceModifiedError):
            return  # released already, or claimed again meanwhile
        except HttpResponseError as error:
            if error.status_code != 412:
                raise

    async def release_directory(self, tenant: Tenant) -> None:
        table = await self._table()
        held = await self._claim_of(table, tenant.directory_id)
        if held is None or held[0] != tenant.tenant_id:
            return
        await self._unclaim(table, tenant.directory_id, held[1])

    async def save(self, tenant: Tenant) -> Tenant:
        account = await self._account(tenant.tenant_id)
        etag = await replace_entity(await self._table(), tenant_to_entity(tenant, account), tenant.etag)
        return replace(tenant, etag=etag)

    async def delete(self, tenant_id: str) -> None:
        await (await self._table()).delete_entity(tenant_id, TENANT_ROW)

    async def _move_legacy_rows(self, table: TableClient) -> None:
        """Once per deployment: every row of the shared partition to its own (see the module's doc)."""
        if await read_entity(table, LAYOUT_PARTITION, LAYOUT_ROW) is None:
            old = table.query_entities("PartitionKey eq @pk", parameters={"pk": LEGACY_PARTITION})
            async for entity in old:
                key = str(entity["RowKey"])
                moved = dict(entity)
                if key.startswith(DIRECTORY_CLAIM):
                    moved.update(PartitionKey=key, RowKey=CLAIM_ROW)
                else:
                    moved.update(PartitionKey=key, RowKey=TENANT_ROW)
                with contextlib.suppress(AlreadyExists):  # a newer copy is there already
                    await insert_entity(table, moved)
                with contextlib.suppress(ResourceNotFoundError, ResourceModifiedError):
                    await table.delete_entity(
                        LEGACY_PARTITION,
                        key,
                        etag=etag_of(entity),
                        match_condition=MatchConditions.IfNotModified,
                    )
            await table.upsert_entity({"PartitionKey": LAYOUT_PARTITION, "RowKey": LAYOUT_ROW})
        self._moved = True
