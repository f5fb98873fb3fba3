"""Key Vault secrets behind the `SecretStore` port (azure-keyvault-secrets, async)."""

from __future__ import annotations

from datetime import datetime

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient

from shared.adapters.storage import transport_options
from shared.observability import get_logger
from shared.service.errors import DependencyUnavailable
from shared.service.records import StoredSecret

log = get_logger("keyvault")


class _Disabled(Exception):
    """Key Vault refused one version as disabled."""


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
        current = await self.current(name)
        return current.value if current else None

    async def current(self, name: str) -> StoredSecret | None:
        return await self._read(name, None)

    async def at_version(self, name: str, version: str) -> str | None:
        """`GET /secrets/{name}/{version}`: 404 for a version the vault does not hold, 403
        `SecretDisabled` for one an operator disabled (both: None)."""
        try:
            found = await self._read(name, version)
        except _Disabled:
            return None
        return found.value if found else None

    async def _read(self, name: str, version: str | None) -> StoredSecret | None:
        try:
            secret = await self._client.get_secret(name, version)
        except ResourceNotFoundError:
            return None
        except HttpResponseError as error:
            if error.status_code == 403 and version is not None:
                raise _Disabled from error
            raise DependencyUnavailable("key_vault", f"reading secret {name}: {error.status_code}") from error
        if secret.value is None or secret.properties.version is None:
            return None
        return StoredSecret(secret.value, secret.properties.version)

    async def set(self, name: str, value: str, *, expires_on: datetime | None = None) -> str:
        try:
            written = await self._client.set_secret(name, value, expires_on=expires_on)
        except ResourceExistsError:
            # Soft-deleted earlier (a disconnected tenant connecting again): recover, then add a version.
            log.info("recovering soft-deleted secret %s before writing a new version", name)
            await self._client.recover_deleted_secret(name)  # the async client waits for the recovery
            written = await self._client.set_secret(name, value, expires_on=expires_on)
        assert written.properties.version is not None  # Key Vault names every version it writes
        return written.properties.version

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
