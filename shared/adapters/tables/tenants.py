"""The `tenants` table: tenant rows, and the claim row of each connected directory (`TenantRepository`)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables.aio import TableClient

from shared.adapters.storage import StorageClients, StorageRouter
from shared.adapters.tables.rows import as_utc, etag_of, replace_entity, required_utc, without_none
from shared.adapters.tables.transactions import Insert, Operation, Replace, TransactionFailed, submit
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
TENANT_PARTITION: Final = "tenant"
# A directory's claim shares the tenants' partition (so a tenant row and its claim commit together); its
# RowKey starts with `~`, which sorts after every tenant key (a GUID or a domain: [0-9a-z.-]).
DIRECTORY_CLAIM: Final = "~directory-"
# The storage account holding the tenant's data (a connection name; absent: the home account), on the
# tenant row and its directory's claim. Written when the row is created, kept by every save after.
STORAGE_ACCOUNT: Final = "StorageAccount"


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
    )


def tenant_to_entity(tenant: Tenant, account: str | None = None) -> dict[str, Any]:
    app = tenant.customer_app
    return without_none(
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
        tenant_id=entity["RowKey"],
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
            "PartitionKey": TENANT_PARTITION,
            "RowKey": DIRECTORY_CLAIM + tenant.directory_id,
            "TenantId": tenant.tenant_id,
            STORAGE_ACCOUNT: account,
        }
    )


class TenantAccounts:
    """`AccountLookup`: the storage account a tenant's row (or its directory's claim) names; the home
    connection for a row that names none, None when there is no row."""

    def __init__(self, home: StorageClients) -> None:
        self._home = home

    async def _row(self, row_key: str) -> dict[str, Any] | None:
        table = await self._home.table(TENANTS)
        try:
            entity: dict[str, Any] = await table.get_entity(
                TENANT_PARTITION, row_key, select=[STORAGE_ACCOUNT]
            )
        except ResourceNotFoundError:
            return None
        return entity

    async def account_of(self, tenant_id: str) -> str | None:
        entity = await self._row(tenant_id)
        return None if entity is None else str(entity.get(STORAGE_ACCOUNT) or STORAGE_CONNECTION)

    async def account_of_directory(self, directory_id: str) -> str | None:
        entity = await self._row(DIRECTORY_CLAIM + directory_id)
        return None if entity is None else str(entity.get(STORAGE_ACCOUNT) or STORAGE_CONNECTION)


class TableTenants:
    """Tenant rows, and one claim row per connected directory: Insert makes two tenant keys racing for
    the same directory (a GUID and a verified domain) fail the second with a conflict."""

    def __init__(self, storage: StorageClients, router: StorageRouter | None = None) -> None:
        """`router`: where a new tenant's data goes (stored on its row), and told every assignment read;
        without one every tenant is in `storage`'s account."""
        self._storage = storage
        self._router = router

    async def _table(self) -> TableClient:
        return await self._storage.table(TENANTS)

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
        table = await self._table()
        try:
            entity = await table.get_entity(TENANT_PARTITION, tenant_id)
        except ResourceNotFoundError:
            return None
        return self._read(entity)

    async def list(self) -> list[Tenant]:
        table = await self._table()
        query = table.query_entities(
            "PartitionKey eq @pk and RowKey lt @claims",
            parameters={"pk": TENANT_PARTITION, "claims": DIRECTORY_CLAIM[0]},
        )
        return [self._read(e) async for e in query]

    async def add(self, tenant: Tenant) -> Tenant:
        account = await self._account(tenant.tenant_id, new=True)
        added = await self._write_and_claim(tenant, Insert(tenant_to_entity(tenant, account)), account)
        if self._router is not None:
            self._router.remember(tenant.tenant_id, account, tenant.directory_id)
        return added

    async def reconnect(self, tenant: Tenant) -> Tenant:
        if tenant.etag is None:
            raise StaleWrite(tenant.tenant_id)
        account = await self._account(tenant.tenant_id)
        return await self._write_and_claim(
            tenant, Replace(tenant_to_entity(tenant, account), tenant.etag), account
        )

    async def _write_and_claim(
        self, tenant: Tenant, write: Insert | Replace, account: str | None = None
    ) -> Tenant:
        """The tenant row and its directory's claim in one transaction. When it fails, the claim row tells
        which part lost: held by another key (DirectoryTaken), held by this key already (a claim a crash
        left behind: written again with the row), or free (the tenant row lost its race)."""
        table = await self._table()
        claim: Operation = Insert(_claim_entity(tenant, account))
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
                    claim = Replace(_claim_entity(tenant, account), held[1])
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
        account = await self._account(tenant.tenant_id)
        etag = await replace_entity(await self._table(), tenant_to_entity(tenant, account), tenant.etag)
        return replace(tenant, etag=etag)

    async def delete(self, tenant_id: str) -> None:
        await (await self._table()).delete_entity(TENANT_PARTITION, tenant_id)
