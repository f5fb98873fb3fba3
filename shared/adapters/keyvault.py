"""Key Vault secrets behind the `SecretStore` port (azure-keyvault-secrets, async)."""

from __future__ import annotations

from datetime import datetime

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient

from shared.adapters.storage import transport_options
from shared.observability import get_logger
from shared.service.errors import DependencyUnavailable

log = get_logger("keyvault")


class KeyVaultSecretStore:
    """Secrets by name. Values never leave this class except as return values; never logged."""

    def __init__(self, vault_url: str, credential: AsyncTokenCredential, *, ca_bundle: str | None) -> None:
        kwargs: dict[str, object] = {**transport_options()}
        if ca_bundle:
            # A local emulator: trust its CA, and skip the challenge-resource check that needs a
            # *.vault.azure.net host name (loopback names like kv.localhost do not resolve here).
            kwargs["connection_verify"] = ca_bundle
            kwargs["verify_challenge_resource"] = False
        self._client = SecretClient(vault_url, credential, **kwargs)

    async def get(self, name: str) -> str | None:
        try:
            secret = await self._client.get_secret(name)
        except ResourceNotFoundError:
            return None
        except HttpResponseError as error:
            raise DependencyUnavailable("key_vault", f"reading secret {name}: {error.status_code}") from error
        return secret.value

    async def set(self, name: str, value: str, *, expires_on: datetime | None = None) -> None:
        try:
            await self._client.set_secret(name, value, expires_on=expires_on)
        except ResourceExistsError:
            # Soft-deleted earlier (a disconnected tenant connecting again): recover, then add a version.
            log.info("recovering soft-deleted secret %s before writing a new version", name)
            await self._client.recover_deleted_secret(name)  # the async client waits for the recovery
            await self._client.set_secret(name, value, expires_on=expires_on)

    async def delete(self, name: str) -> None:
        """Soft-delete (the vault keeps it recoverable for its retention); idempotent."""
        try:
            await self._client.delete_secret(name)
        except ResourceNotFoundError:
            return

    async def ping(self) -> None:
        async for _ in self._client.list_properties_of_secrets(max_page_size=1):
            break

    async def close(self) -> None:
        await self._client.close()
