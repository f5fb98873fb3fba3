"""Which app signs in to which tenant, with which secret (read from Key Vault, never from settings)."""

from __future__ import annotations

from azure.core.credentials_async import AsyncTokenCredential

from shared.adapters.graph.client import TenantKey
from shared.adapters.identity import client_secret_credential
from shared.domain.tenants import AuthMode, Tenant, secret_name
from shared.service.errors import TenantAccessError
from shared.service.ports.secret_store import SecretStore
from shared.settings import Settings


class TenantCredentials:
    def __init__(self, settings: Settings, secrets: SecretStore) -> None:
        self._settings = settings
        self._secrets = secrets
        self._connector_secret: str | None = None

    async def key_for(self, tenant: Tenant) -> TenantKey:
        if tenant.auth_mode is AuthMode.CUSTOMER_APP and tenant.customer_app is not None:
            return TenantKey(tenant.directory_id, tenant.customer_app.client_id)
        return TenantKey(tenant.directory_id, self._settings.graph_client_id)

    async def credential_for(self, key: TenantKey) -> AsyncTokenCredential:
        if key.client_id == self._settings.graph_client_id:
            return self.credential(key.directory_id, key.client_id, await self.connector_secret())
        secret = await self._secrets.get(secret_name(key.directory_id))
        if not secret:
            raise TenantAccessError("the customer app's secret is missing from Key Vault; reauthorize")
        return self.credential(key.directory_id, key.client_id, secret)

    def credential(self, directory_id: str, client_id: str, secret: str) -> AsyncTokenCredential:
        return client_secret_credential(
            self._settings, tenant_id=directory_id, client_id=client_id, client_secret=secret
        )

    async def connector_secret(self) -> str:
        """The connector app's own secret, from Key Vault (cached for the worker's life)."""
        if self._connector_secret is None and self._settings.graph_client_secret:
            self._connector_secret = self._settings.graph_client_secret  # a resolved Key Vault reference
        if self._connector_secret is None:
            secret = await self._secrets.get(self._settings.graph_client_secret_name)
            if not secret:
                raise TenantAccessError(
                    f"Key Vault has no secret named {self._settings.graph_client_secret_name} "
                    "(the connector app's client secret)"
                )
            self._connector_secret = secret
        return self._connector_secret
