"""Azure Storage clients (tables, queues; blobs for outgoing mail) from the storage settings, once per
worker.

Locally a connection string (Azurite); in Azure the identity-based endpoints with the managed identity.
Queue messages are base64 on the wire, as the Functions host expects by default (a plain-text message
would be moved to `-poison` without ever running the function).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ResourceExistsError
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.queue import BinaryBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from shared.settings import STORAGE_CONNECTION, StorageSettings

if TYPE_CHECKING:  # azure-storage-blob is imported when mail is first sent
    from azure.storage.blob.aio import BlobServiceClient, ContainerClient

# Azurite 3.35 (the newest that runs on Node 20) supports storage API versions up to this one.
QUEUE_API_VERSION: Final = "2025-11-05"
PROXY_VARIABLES: Final = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def transport_options() -> dict[str, Any]:
    """azure-core's aiohttp transport with `trust_env` only where a proxy is configured: with it, aiohttp
    looks up proxies and `~/.netrc` on a worker thread for every request (about a tenth of a sync worker's
    CPU), and the connector needs neither otherwise."""
    configured = any(name in {key.lower() for key in os.environ} for name in PROXY_VARIABLES)
    return {"use_env_settings": configured}


class StorageClients:
    """Table and queue clients; tables and queues are created on first use, once per worker."""

    def __init__(
        self, settings: StorageSettings, credential: AsyncTokenCredential, *, table_prefix: str = ""
    ) -> None:
        self._prefix = table_prefix
        options = transport_options()
        if settings.connection_string:
            self.tables = TableServiceClient.from_connection_string(settings.connection_string, **options)
            self.queues = QueueServiceClient.from_connection_string(
                settings.connection_string, api_version=QUEUE_API_VERSION, **options
            )
        else:
            assert settings.table_endpoint and settings.queue_endpoint
            self.tables = TableServiceClient(settings.table_endpoint, credential=credential, **options)
            self.queues = QueueServiceClient(settings.queue_endpoint, credential=credential, **options)
        self._settings = settings
        self._credential = credential
        self._blobs: BlobServiceClient | None = None
        self._ready_containers: dict[str, asyncio.Future[None]] = {}
        self._table_clients: dict[str, TableClient] = {}
        self._queue_clients: dict[str, QueueClient] = {}
        self._ready_tables: dict[str, asyncio.Future[None]] = {}
        self._ready_queues: dict[str, asyncio.Future[None]] = {}

    async def for_tenant(self, tenant_id: str) -> StorageClients:
        """One account holds every tenant (`TenantStorage` with no shards)."""
        return self

    def table_name(self, name: str) -> str:
        return f"{self._prefix}{name}"

    async def table(self, name: str) -> TableClient:
        full = self.table_name(name)
        await self._once(self._ready_tables, full, self._create_table)
        client = self._table_clients.get(full)
        if client is None:  # a client per table, kept: building one costs more than most requests
            client = self._table_clients[full] = self.tables.get_table_client(full)
        return client

    async def queue(self, name: str) -> QueueClient:
        await self._once(self._ready_queues, name, self._create_queue)
        return self.queue_client(name)

    def queue_client(self, name: str) -> QueueClient:
        client = self._queue_clients.get(name)
        if client is None:
            client = self._queue_clients[name] = self.queues.get_queue_client(
                name,
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=BinaryBase64DecodePolicy(),
            )
        return client

    async def container(self, name: str) -> ContainerClient:
        """A blob container's client, the container created on first use (once per worker)."""
        await self._once(self._ready_containers, name, self._create_container)
        return self.blobs.get_container_client(name)

    @property
    def blobs(self) -> BlobServiceClient:
        if self._blobs is None:
            from azure.storage.blob.aio import BlobServiceClient

            options = transport_options()
            if self._settings.connection_string:
                self._blobs = BlobServiceClient.from_connection_string(
                    self._settings.connection_string, api_version=QUEUE_API_VERSION, **options
                )
            else:
                if not self._settings.blob_endpoint:
                    raise RuntimeError(
                        "no blob endpoint: set AzureWebJobsStorage__blobServiceUri or __accountName"
                    )
                self._blobs = BlobServiceClient(
                    self._settings.blob_endpoint, credential=self._credential, **options
                )
        return self._blobs

    async def _create_container(self, name: str) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self.blobs.create_container(name)

    async def ping(self) -> None:
        async for _ in self.tables.list_tables(results_per_page=1):
            break
        # Listing needs only the data-plane role the app has (Queue Data Contributor); service
        # properties would need account-level read.
        async for _ in self.queues.list_queues(results_per_page=1):
            break

    async def close(self) -> None:
        await self.tables.close()
        await self.queues.close()
        if self._blobs is not None:
            await self._blobs.close()

    async def _create_table(self, name: str) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self.tables.create_table(name)

    async def _create_queue(self, name: str) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self.queues.create_queue(name)

    @staticmethod
    async def _once(
        cache: dict[str, asyncio.Future[None]], name: str, create: Callable[[str], Awaitable[None]]
    ) -> None:
        future = cache.get(name)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            cache[name] = future
            try:
                await create(name)
            except BaseException as error:
                del cache[name]
                future.set_exception(error)
                future.exception()  # mark retrieved; the caller sees the raise below
                raise
            future.set_result(None)
        await future


class TenantStorage(Protocol):
    """How a per-tenant adapter gets its clients: the account that holds the tenant's data.
    `StorageClients` (one account) and `StorageRouter` (a home account and shards) both are one."""

    async def for_tenant(self, tenant_id: str) -> StorageClients: ...


class AccountLookup(Protocol):
    """Where the router reads an assignment it has not seen yet: the tenant's row in the home account's
    `tenants` table (`shared/adapters/tables/tenants.TenantAccounts`). None: no row (yet)."""

    async def account_of(self, tenant_id: str) -> str | None: ...

    async def account_of_directory(self, directory_id: str) -> str | None: ...


def placed_account(tenant_id: str, placement: Sequence[str]) -> str:
    """The rule a new tenant's account is chosen by: SHA-256 of its key, modulo the accounts open to new
    tenants, in the order configured. The choice is stored with the tenant, so changing the list later
    moves no one."""
    digest = int.from_bytes(hashlib.sha256(tenant_id.encode()).digest()[:8], "big")
    return placement[digest % len(placement)]


class StorageRouter:
    """Tenant -> storage account. The home account (`AzureWebJobsStorage`) keeps what must be found before
    the tenant is known (tenants and their directory claims, consent states, the subscription index, the
    poison queues); everything of one tenant, and its queue messages, live in the account stored on its
    tenant row (`StorageAccount`, the connection's name; absent: home). An assignment never changes, so
    each worker keeps the ones it has read; with no shard configured no lookup is made at all."""

    def __init__(
        self,
        home: StorageClients,
        shards: Mapping[str, StorageClients],
        placement: Sequence[str],
        lookup: AccountLookup | None = None,
    ) -> None:
        self.home = home
        self._accounts: dict[str, StorageClients] = {STORAGE_CONNECTION: home, **shards}
        unknown = [name for name in placement if name not in self._accounts]
        if unknown or not placement:
            raise ValueError(f"placement names no configured account: {placement!r}")
        self._placement = tuple(placement)
        self._lookup = lookup
        self._tenants: dict[str, str] = {}
        self._directories: dict[str, str] = {}

    @property
    def sharded(self) -> bool:
        return len(self._accounts) > 1

    @property
    def accounts(self) -> Mapping[str, StorageClients]:
        return self._accounts

    def place(self, tenant_id: str) -> str:
        """The account a new tenant goes to (`placed_account`); its row stores it."""
        return placed_account(tenant_id, self._placement)

    def remember(self, tenant_id: str, account: str | None, directory_id: str | None = None) -> None:
        """An assignment read from (or written to) the tenant's row."""
        name = account or STORAGE_CONNECTION
        self._tenants[tenant_id] = name
        if directory_id:
            self._directories[directory_id] = name

    async def account_name(self, tenant_id: str) -> str:
        if not self.sharded:
            return STORAGE_CONNECTION
        name = self._tenants.get(tenant_id)
        if name is None:
            stored = await self._lookup.account_of(tenant_id) if self._lookup else None
            if stored is None:
                return STORAGE_CONNECTION  # no row (yet): not remembered, a later call reads again
            name = self._tenants[tenant_id] = stored
        return name

    async def for_tenant(self, tenant_id: str) -> StorageClients:
        return self._client(await self.account_name(tenant_id))

    async def for_directory(self, directory_id: str) -> StorageClients:
        """The account of the tenant holding a Graph directory (a notification names the directory)."""
        if not self.sharded:
            return self.home
        name = self._directories.get(directory_id)
        if name is None:
            stored = await self._lookup.account_of_directory(directory_id) if self._lookup else None
            if stored is None:
                return self.home
            name = self._directories[directory_id] = stored
        return self._client(name)

    def _client(self, name: str) -> StorageClients:
        client = self._accounts.get(name)
        if client is None:  # a row naming an account whose setting was removed: never guess another
            raise RuntimeError(f"storage account {name!r} is not configured (STORAGE_SHARDS)")
        return client

    async def ping(self) -> None:
        for account in self._accounts.values():
            await account.ping()

    async def close(self) -> None:
        for account in self._accounts.values():
            await account.close()
