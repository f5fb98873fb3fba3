"""Key Vault secrets through azure-keyvault-secrets' SecretClient (with the platform identity), and
the raw challenge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient

from tests.contract.emulator.conftest import credential, unique

pytestmark = pytest.mark.contract


@pytest.fixture
async def vault(emulator_reset) -> AsyncIterator[SecretClient]:
    emulator = emulator_reset
    cred = credential(
        emulator, emulator.platform_tenant_id, emulator.platform_client_id, emulator.platform_client_secret
    )
    client = SecretClient(
        emulator.keyvault, cred, verify_challenge_resource=False, connection_verify=emulator.ca_file
    )
    try:
        yield client
    finally:
        await client.close()
        await cred.close()


async def test_seeded_connector_secret_is_readable(vault, emulator_reset):
    secret = await vault.get_secret("graph-client-secret")
    assert secret.value == emulator_reset.client_secret
    assert secret.id.startswith(emulator_reset.keyvault + "/secrets/graph-client-secret/")


async def test_set_get_latest_and_by_version(vault):
    name = unique("tenant-secret")
    first = await vault.set_secret(name, "v1", content_type="text/plain", tags={"tenant": "contoso"})
    second = await vault.set_secret(name, "v2")
    assert (await vault.get_secret(name)).value == "v2"
    assert (await vault.get_secret(name, first.properties.version)).value == "v1"
    assert first.properties.content_type == "text/plain"
    assert first.properties.tags == {"tenant": "contoso"}
    versions = [p.version async for p in vault.list_properties_of_secret_versions(name)]
    assert sorted(versions) == sorted([first.properties.version, second.properties.version])


async def test_list_pages_through_every_secret(vault):
    names = {unique("paged") for _ in range(30)}
    for name in names:
        await vault.set_secret(name, "x")
    listed = {p.name async for p in vault.list_properties_of_secrets(max_page_size=7)}
    assert names <= listed


async def test_attributes_exp_nbf_enabled(vault):
    name = unique("attrs")
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    created = await vault.set_secret(
        name, "value", expires_on=expires, not_before=expires - timedelta(days=60)
    )
    assert created.properties.expires_on == expires
    await vault.update_secret_properties(name, enabled=False)
    with pytest.raises(HttpResponseError) as err:
        await vault.get_secret(name)
    assert err.value.status_code == 403
    assert "disabled" in str(err.value)


async def test_delete_recover_purge_and_name_reuse(vault):
    name = unique("lifecycle")
    await vault.set_secret(name, "keep me")
    deleted = await vault.delete_secret(name)
    assert deleted.recovery_id.endswith(f"/deletedsecrets/{name}")
    with pytest.raises(ResourceNotFoundError):
        await vault.get_secret(name)
    with pytest.raises(ResourceExistsError):
        await vault.set_secret(name, "reuse")
    assert name in [d.name async for d in vault.list_deleted_secrets()]
    recovered = await vault.recover_deleted_secret(name)
    assert recovered.name == name
    assert (await vault.get_secret(name)).value == "keep me"
    await vault.delete_secret(name)
    await vault.purge_deleted_secret(name)
    with pytest.raises(ResourceNotFoundError):
        await vault.get_deleted_secret(name)
    await vault.set_secret(name, "fresh")


async def test_name_and_size_rules(vault):
    with pytest.raises(HttpResponseError) as err:
        await vault.set_secret("bad_name", "x")
    assert err.value.status_code == 400
    with pytest.raises(HttpResponseError) as err:
        await vault.set_secret(unique("big"), "x" * (25 * 1024 + 1))
    assert err.value.status_code == 400
    with pytest.raises(ResourceNotFoundError) as err:
        await vault.get_secret("never-set")
    assert "SecretNotFound" in str(err.value)


async def test_other_identities_are_forbidden_until_granted(emulator_reset, control):
    emulator = emulator_reset
    app = await control.create_app(unique("not-granted"), emulator.platform_tenant_id)
    cred = credential(emulator, emulator.platform_tenant_id, app["client_id"], app["secrets"][0]["value"])
    client = SecretClient(
        emulator.keyvault, cred, verify_challenge_resource=False, connection_verify=emulator.ca_file
    )
    with pytest.raises(HttpResponseError) as err:
        await client.get_secret("graph-client-secret")
    assert err.value.status_code == 403
    await control.grant_vault(emulator.platform_tenant_id, app["client_id"])
    assert (await client.get_secret("graph-client-secret")).value == emulator.client_secret
    await client.close()
    await cred.close()


async def test_unauthenticated_request_gets_the_bearer_challenge(emulator_reset):
    emulator = emulator_reset
    async with httpx.AsyncClient(verify=emulator.ssl_context()) as http:
        response = await http.get(
            f"{emulator.keyvault}/secrets/graph-client-secret/", params={"api-version": "7.5"}
        )
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge == (
        f'Bearer authorization="{emulator.authority}/{emulator.platform_tenant_id}", '
        'resource="https://vault.azure.net"'
    )
    assert response.json()["error"]["code"] == "Unauthorized"
