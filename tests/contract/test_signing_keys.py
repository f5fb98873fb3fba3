"""The connector's signing keys (`KeyRing`) over the emulator's Key Vault through the connector's adapter
(azure-keyvault-secrets): two workers racing the first key, a rotation, a disabled version. Each worker
has its own `KeyVaultSecretStore` and `KeyRing`, as two Functions instances do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from azure.keyvault.secrets.aio import SecretClient

from shared.adapters.keyvault import KeyVaultSecretStore
from shared.domain.signing import client_state, client_state_key_version, client_state_valid
from shared.service.keys import CURRENT_FOR, KeyRing, new_key_value
from tests.contract.emulator.conftest import credential, unique
from tests.fakes.keys import WorkerVault, race_first_reads
from tests.fixtures.emulator import EmulatorInfo

pytestmark = pytest.mark.contract

DIRECTORY = "9188040d-6c67-4c5b-b112-36a304b66dad"


class Worker:
    def __init__(self, store: KeyVaultSecretStore, *, write_delay: float = 0.0) -> None:
        self.time = 0.0
        self.vault = WorkerVault(store, write_delay=write_delay)
        self.keys = KeyRing(self.vault, monotonic=lambda: self.time)

    async def sign(self, name: str, graph_user_id: str) -> str:
        key = await self.keys.signing(name)
        return client_state(key.secret, key.version, DIRECTORY, graph_user_id)

    async def verify(self, name: str, graph_user_id: str, state: str) -> bool:
        version = client_state_key_version(state)
        assert version is not None
        key = await self.keys.verifying(name, version)
        return key is not None and client_state_valid(key, DIRECTORY, graph_user_id, state)


@pytest.fixture
async def stores(
    emulator: EmulatorInfo,
) -> AsyncIterator[tuple[KeyVaultSecretStore, KeyVaultSecretStore, SecretClient]]:
    cred = credential(
        emulator, emulator.platform_tenant_id, emulator.platform_client_id, emulator.platform_client_secret
    )
    first = KeyVaultSecretStore(emulator.keyvault, cred, ca_bundle=emulator.ca_file)
    second = KeyVaultSecretStore(emulator.keyvault, cred, ca_bundle=emulator.ca_file)
    raw = SecretClient(
        emulator.keyvault, cred, verify_challenge_resource=False, connection_verify=emulator.ca_file
    )
    try:
        yield first, second, raw
    finally:
        await first.close()
        await second.close()
        await raw.close()
        await cred.close()


async def test_two_workers_racing_the_first_key_verify_each_others_signatures(
    stores: tuple[KeyVaultSecretStore, KeyVaultSecretStore, SecretClient],
) -> None:
    first, second, raw = stores
    name = unique("notification-signing-key")
    a, b = Worker(first), Worker(second, write_delay=0.2)
    race_first_reads(a.vault, b.vault)
    by_a, by_b = await asyncio.gather(a.sign(name, "g1"), b.sign(name, "g2"))
    versions = [p.version async for p in raw.list_properties_of_secret_versions(name)]
    assert len(versions) == 2  # both wrote: Key Vault has no create-if-absent
    assert client_state_key_version(by_a) != client_state_key_version(by_b)
    assert await b.verify(name, "g1", by_a) and await a.verify(name, "g2", by_b)
    assert not await b.verify(name, "g2", by_a)


async def test_a_rotation_with_two_workers_then_a_disabled_version(
    stores: tuple[KeyVaultSecretStore, KeyVaultSecretStore, SecretClient],
) -> None:
    first, second, raw = stores
    name = unique("console-link-key")
    a, b = Worker(first), Worker(second)
    old = await a.sign(name, "g1")
    assert await b.verify(name, "g1", old)
    await raw.set_secret(name, new_key_value())  # the operator rotates
    a.time += CURRENT_FOR
    new = await a.sign(name, "g1")  # a signs with the new version, b still with the old one
    assert client_state_key_version(new) != client_state_key_version(old)
    assert await b.sign(name, "g1") == old
    assert await b.verify(name, "g1", new) and await a.verify(name, "g1", old)
    old_version = client_state_key_version(old)
    assert old_version is not None
    await raw.update_secret_properties(name, old_version, enabled=False)  # the old one revoked
    a.time += CURRENT_FOR
    b.time += CURRENT_FOR
    assert not await a.verify(name, "g1", old) and not await b.verify(name, "g1", old)
    assert await b.verify(name, "g1", new)
