"""The tenant repository's directory claims, written once and run against the in-memory fake and the Table
Storage repository on Azurite: one directory is held by one tenant key at a time, even when two keys race
for it, a completed disconnect frees it, and a disconnected row starts again under its own key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shared.adapters.tables.tenants import TableTenants
from shared.domain.tenants import (
    AuthMode,
    CustomerApp,
    DeliveryHold,
    ReleasedRange,
    Tenant,
    TenantSettings,
    TenantState,
)
from shared.service.errors import AlreadyExists, DirectoryTaken, StaleWrite
from shared.service.ports.tenancy import TenantRepository
from tests.fakes.storage import FakeTenants
from tests.fixtures.azurite import fresh_storage

pytestmark = pytest.mark.contract

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CONTOSO = "9188040d-6c67-4c5b-b112-36a304b66dad"
FABRIKAM = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


@pytest.fixture(params=["fake", "azurite"])
async def tenants(request: pytest.FixtureRequest) -> AsyncIterator[TenantRepository]:
    if request.param == "fake":
        yield FakeTenants()
        return
    async with fresh_storage(request.getfixturevalue("azurite"), "tenants") as storage:
        yield TableTenants(storage)


def tenant(key: str, directory: str = CONTOSO, state: TenantState = TenantState.PENDING_CONSENT) -> Tenant:
    return Tenant(key, directory, key, AuthMode.ADMIN_CONSENT, state, TenantSettings(), T0, T0)


async def test_a_second_key_for_a_claimed_directory_names_the_holder(tenants: TenantRepository) -> None:
    await tenants.add(tenant(CONTOSO))

    with pytest.raises(DirectoryTaken) as taken:
        await tenants.add(tenant("contoso.example"))

    assert taken.value.holder == CONTOSO
    assert [t.tenant_id for t in await tenants.list()] == [CONTOSO]  # nothing stored, claims not listed
    await tenants.add(tenant("fabrikam.example", FABRIKAM))  # another directory is free
    with pytest.raises(AlreadyExists):
        await tenants.add(tenant(CONTOSO))


async def test_two_keys_racing_for_one_directory_store_one_tenant(tenants: TenantRepository) -> None:
    outcomes = await asyncio.gather(
        tenants.add(tenant(CONTOSO)), tenants.add(tenant("contoso.example")), return_exceptions=True
    )

    stored = [o for o in outcomes if isinstance(o, Tenant)]
    refused = [o for o in outcomes if isinstance(o, DirectoryTaken)]
    assert len(stored) == 1 and len(refused) == 1
    assert refused[0].holder == stored[0].tenant_id
    assert [t.tenant_id for t in await tenants.list()] == [stored[0].tenant_id]


async def test_released_directory_connects_again_under_either_key(tenants: TenantRepository) -> None:
    added = await tenants.add(tenant(CONTOSO))
    gone = await tenants.save(replace(added, state=TenantState.DISCONNECTED))
    await tenants.release_directory(tenant("contoso.example"))  # not the holder: changes nothing
    with pytest.raises(DirectoryTaken):
        await tenants.add(tenant("contoso.example"))

    await tenants.release_directory(gone)
    again = await tenants.reconnect(replace(gone, state=TenantState.PENDING_CONSENT))

    assert again.etag and again.etag != gone.etag
    stored = await tenants.get(CONTOSO)
    assert stored is not None and stored.state is TenantState.PENDING_CONSENT
    with pytest.raises(DirectoryTaken):
        await tenants.add(tenant("contoso.example"))
    with pytest.raises(StaleWrite):  # the old row's etag no longer holds
        await tenants.reconnect(gone)


async def test_reconnect_keeps_its_own_claim_and_refuses_a_taken_directory(tenants: TenantRepository) -> None:
    added = await tenants.add(tenant(CONTOSO))
    again = await tenants.reconnect(replace(added, display_name="Contoso again"))  # it holds the claim
    assert again.display_name == "Contoso again"

    other = await tenants.add(tenant("fabrikam.example", FABRIKAM))
    with pytest.raises(DirectoryTaken) as taken:
        await tenants.reconnect(replace(other, directory_id=CONTOSO))
    assert taken.value.holder == CONTOSO
    stored = await tenants.get("fabrikam.example")
    assert stored is not None and stored.directory_id == FABRIKAM


async def test_a_customer_apps_secret_version_is_kept_on_the_row(tenants: TenantRepository) -> None:
    app = CustomerApp("0d963731-9d64-41df-995e-b375e168367b", T0, "a" * 32)
    await tenants.add(replace(tenant(CONTOSO), auth_mode=AuthMode.CUSTOMER_APP, customer_app=app))
    stored = await tenants.get(CONTOSO)
    assert stored is not None and stored.customer_app == app


async def test_a_delivery_hold_and_the_retention_are_stored_with_the_tenant(
    tenants: TenantRepository,
) -> None:
    stored = await tenants.add(tenant(CONTOSO, state=TenantState.ACTIVE))
    held = replace(
        stored,
        delivery_hold=DeliveryHold(T0, from_sequence=42),
        settings=replace(stored.settings, monitor_retention_days=30),
    )
    await tenants.save(held)
    again = await tenants.get(CONTOSO)
    assert again is not None
    assert (again.delivery_hold, again.settings.monitor_retention_days) == (DeliveryHold(T0, 42), 30)
    released = await tenants.save(replace(again, delivery_hold=None, released=ReleasedRange(42, 50)))
    after = await tenants.get(CONTOSO)
    assert after is not None and after.delivery_hold is None and released.delivery_hold is None
    assert after.released == ReleasedRange(42, 50)
    forgotten = await tenants.save(replace(after, released=None))
    assert forgotten.released is None and (await tenants.get(CONTOSO)).released is None  # type: ignore[union-attr]
