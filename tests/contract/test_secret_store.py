"""The connector's Key Vault adapter (`KeyVaultSecretStore`, azure-keyvault-secrets) against the emulator's
vault: a customer secret soft-deleted by a disconnect is recovered by the reconnect's write, which adds a
new version to what Key Vault kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient

from shared.adapters.keyvault import KeyVaultSecretStore
from shared.domain.tenants import secret_name
from tests.contract.emulator.conftest import credential, unique
from tests.fixtures.emulator import EmulatorInfo

pytestmark = pytest.mark.contract


@pytest.fixture
async def vaults(emulator_reset: EmulatorInfo) -> AsyncIterator[tuple[KeyVaultSecretStore, SecretClient]]:
    emulator = emulator_reset
    cred = credential(
        emulator, emulator.platform_tenant_id, emulator.platform_client_id, emulator.platform_client_secret
    )
    store = KeyVaultSecretStore(emulator.keyvault, cred, ca_bundle=emulator.ca_file)
    raw = SecretClient(
        emulator.keyvault, cred, verify_challenge_resource=False, connection_verify=emulator.ca_file
    )
    try:
        yield store, raw
    finally:
        await store.close()
        await raw.close()
        await cred.close()


async def test_a_reconnect_recovers_the_soft_deleted_customer_secret(
    vaults: tuple[KeyVaultSecretStore, SecretClient],
) -> None:
    store, raw = vaults
    name = secret_name(unique("dir"))
    first_expiry = datetime(2027, 6, 30, tzinfo=UTC)
    await store.set(name, "first-secret", expires_on=first_expiry)
    await store.delete(name)  # the disconnect: soft, Key Vault keeps it
    assert await store.get(name) is None
    assert (await raw.get_deleted_secret(name)).recovery_id

    await store.set(name, "second-secret", expires_on=datetime(2027, 12, 31, tzinfo=UTC))  # the reconnect

    assert await store.get(name) == "second-secret"
    with pytest.raises(ResourceNotFoundError):
        await raw.get_deleted_secret(name)  # recovered, not purged and written anew
    versions = [p async for p in raw.list_properties_of_secret_versions(name)]
    values = {(await raw.get_secret(name, p.version)).value for p in versions}
    assert values == {"first-secret", "second-secret"}
    assert first_expiry in {p.expires_on for p in versions}
    await store.delete(name)
    await store.delete(name)  # idempotent
