"""Which app signs in to which tenant, with which secret (read from Key Vault, never from settings).

A customer app's secret is rotated by reauthorizing the tenant: a new Key Vault version, recorded on the
tenant row (`CustomerApp.secret_version`). That version is part of the tenant's `TenantKey`, the cache
key of its Graph client and credential, so every worker's next job for the tenant (each reads the row)
builds its credential with the new secret, and the old client is dropped. A worker still holding the old
secret (a job that read the row before the rotation, the old secret already deleted in Entra) asks Entra
in vain: `VaultCheckedCredential` then compares Key Vault's current version with the one it used, and
with another one signs in again with it, once, before the refusal may count (a refusal that stands
marks the tenant `consent_revoked`). The connector app's own secret, read from Key Vault by name, is
checked the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError

from shared.adapters.graph.client import TenantKey
from shared.adapters.identity import client_secret_credential
from shared.domain.tenants import AuthMode, Tenant, secret_name
from shared.observability import get_logger
from shared.service.errors import TenantAccessError
from shared.service.ports.secret_store import SecretStore
from shared.service.records import StoredSecret
from shared.settings import Settings

log = get_logger("credentials")


class VaultCheckedCredential:
    """A client-secret credential that, when Entra refuses its secret, looks at Key Vault's current
    version of it: another version (rotated meanwhile) is signed in with, once; the same one lets the
    refusal stand."""

    def __init__(
        self,
        name: str,
        used: StoredSecret,
        build: Callable[[str], AsyncTokenCredential],
        current: Callable[[], Awaitable[StoredSecret | None]],
    ) -> None:
        self._name = name
        self._version = used.version
        self._build = build
        self._current_secret = current
        self._inner = build(used.value)
        self._retired: list[AsyncTokenCredential] = []
        self._lock = asyncio.Lock()

    @property
    def version(self) -> str:
        return self._version

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        inner, version = self._inner, self._version
        try:
            return await inner.get_token(*scopes, **kwargs)
        except ClientAuthenticationError:
            if not await self._rotated(version):
                raise
        return await self._inner.get_token(*scopes, **kwargs)

    async def _rotated(self, refused_version: str) -> bool:
        """After Entra refused `refused_version`: whether a newer secret is in use now (read from Key
        Vault, or already swapped in by a concurrent request)."""
        async with self._lock:
            if self._version != refused_version:
                return True  # another request swapped already
            current = await self._current_secret()
            if current is None or current.version == refused_version:
                return False
            log.info("%s: Entra refused version %s; using %s", self._name, refused_version, current.version)
            self._retired.append(self._inner)
            self._inner, self._version = self._build(current.value), current.version
            return True

    async def close(self) -> None:
        retired, self._retired = self._retired, []
        for credential in [*retired, self._inner]:
            await credential.close()

    async def __aenter__(self) -> VaultCheckedCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()


class TenantCredentials:
    def __init__(self, settings: Settings, secrets: SecretStore) -> None:
        self._settings = settings
        self._secrets = secrets
        self._connector_secret: StoredSecret | None = None  # read once per worker, again after a refusal

    async def key_for(self, tenant: Tenant) -> TenantKey:
        if tenant.auth_mode is AuthMode.CUSTOMER_APP and tenant.customer_app is not None:
            app = tenant.customer_app
            return TenantKey(tenant.directory_id, app.client_id, app.secret_version)
        return TenantKey(tenant.directory_id, self._settings.graph_client_id)

    async def credential_for(self, key: TenantKey) -> AsyncTokenCredential:
        if key.client_id == self._settings.graph_client_id:
            return await self._connector_credential(key.directory_id)
        name = secret_name(key.directory_id)
        used: StoredSecret | None = None
        if key.secret_version is not None:
            value = await self._secrets.at_version(name, key.secret_version)
            used = StoredSecret(value, key.secret_version) if value else None
        used = used or await self._secrets.current(name)  # a row from before versions, or a version gone
        if used is None or not used.value:
            raise TenantAccessError("the customer app's secret is missing from Key Vault; reauthorize")
        return VaultCheckedCredential(
            name,
            used,
            lambda secret: self.credential(key.directory_id, key.client_id, secret),
            lambda: self._secrets.current(name),
        )

    def credential(self, directory_id: str, client_id: str, secret: str) -> AsyncTokenCredential:
        return client_secret_credential(
            self._settings, tenant_id=directory_id, client_id=client_id, client_secret=secret
        )

    async def _connector_credential(self, directory_id: str) -> AsyncTokenCredential:
        client_id = self._settings.graph_client_id
        if self._settings.graph_client_secret:  # a resolved Key Vault reference: the platform refreshes it
            return self.credential(directory_id, client_id, self._settings.graph_client_secret)
        name = self._settings.graph_client_secret_name
        used = self._connector_secret or await self._connector_current()
        if used is None or not used.value:
            raise TenantAccessError(
                f"Key Vault has no secret named {name} (the connector app's client secret)"
            )
        return VaultCheckedCredential(
            name,
            used,
            lambda secret: self.credential(directory_id, client_id, secret),
            self._connector_current,
        )

    async def _connector_current(self) -> StoredSecret | None:
        """The connector app's secret as Key Vault holds it now (cached for the next tenant's client)."""
        current = await self._secrets.current(self._settings.graph_client_secret_name)
        if current is not None:
            self._connector_secret = current
        return current
