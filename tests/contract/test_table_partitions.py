"""Where the table adapters put each tenant's rows, and what one tenant's work reads (Azurite, every request
recorded): no partition shared by tenants, no query that scans other tenants' rows, and rows written in the
layout before still found."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from devhost.azurite import Azurite
from shared.adapters.storage import StorageClients
from shared.adapters.tables.consent_states import CONSENT_STATES, TableConsentStates
from shared.adapters.tables.leases import LEASES, LEGACY_PARTITION, TableLeases
from shared.adapters.tables.rows import escape_key
from shared.adapters.tables.subscription_index import (
    SUBSCRIPTIONS,
    TableSubscriptionIndex,
    subscription_to_entity,
)
from shared.adapters.tables.tenants import LEGACY_PARTITION as LEGACY_TENANTS
from shared.adapters.tables.tenants import TENANTS, TableTenants, tenant_to_entity
from shared.adapters.tables.users import TableUsers
from shared.domain.tenants import AuthMode, Tenant, TenantSettings, TenantState
from shared.domain.users import MatchStatus, StaffMember, UserRecord
from shared.service.errors import DirectoryTaken
from shared.service.records import ConsentState, LeaseOutcome, SubscriptionRecord, UserQuery
from tests.fixtures.azurite import fresh_storage
from tests.fixtures.table_requests import recorded_table_requests

pytestmark = pytest.mark.contract

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=5)
CONTOSO = "contoso.example"
FABRIKAM = "6f1d2c7e-1b7a-4a57-9d55-0c0f1c6f4a11"


@pytest.fixture
async def storage(azurite: Azurite) -> AsyncIterator[StorageClients]:
    async with fresh_storage(azurite, "parts") as clients:
        yield clients


def subscription(subscription_id: str, tenant_id: str) -> SubscriptionRecord:
    expires = T0 + timedelta(days=2)
    return SubscriptionRecord(subscription_id, tenant_id, f"staff-{subscription_id}", "g", expires)


async def test_leases_of_two_tenants_live_in_their_own_partitions(
    storage: StorageClients, azurite: Azurite
) -> None:
    leases = TableLeases(storage)
    await leases.acquire(f"{FABRIKAM}/warm-up", "w0", TTL, T0)  # the table exists before recording
    with recorded_table_requests(azurite.table_endpoint) as log:
        assert await leases.acquire(f"{CONTOSO}/anna", "w1", TTL, T0) is LeaseOutcome.ACQUIRED
        assert await leases.acquire(f"{FABRIKAM}/anna/tasks", "w1", TTL, T0) is LeaseOutcome.ACQUIRED
        assert await leases.release(f"{CONTOSO}/anna", "w1") is False

    touched = log.entities_by_partition(LEASES)
    assert {partition for _, partition in touched} == {escape_key(CONTOSO), escape_key(FABRIKAM)}


async def test_a_tenants_leases_go_without_touching_another_tenants(
    storage: StorageClients, azurite: Azurite
) -> None:
    leases = TableLeases(storage)
    for key in (f"{CONTOSO}/anna", f"{CONTOSO}/appointments/a1", f"{FABRIKAM}/anna"):
        await leases.acquire(key, "w1", TTL, T0)

    with recorded_table_requests(azurite.table_endpoint) as log:
        await leases.delete_prefix(f"{CONTOSO}/")

    assert log.scans(LEASES) == []
    assert {p for _, p in log.entities_by_partition(LEASES)} <= {escape_key(CONTOSO), LEGACY_PARTITION}
    assert await leases.acquire(f"{CONTOSO}/anna", "w2", TTL, T0) is LeaseOutcome.ACQUIRED
    assert await leases.acquire(f"{FABRIKAM}/anna", "w2", TTL, T0) is LeaseOutcome.DEFERRED


async def test_a_lease_left_in_the_shared_partition_goes_with_its_tenant(storage: StorageClients) -> None:
    table = await storage.table(LEASES)
    key = f"{CONTOSO}/anna"
    await table.create_entity(
        {"PartitionKey": LEGACY_PARTITION, "RowKey": escape_key(key), "Key": key, "Owner": "old",
         "ExpiresAt": T0 + TTL, "Again": False}
    )  # fmt: skip
    await TableLeases(storage).delete_prefix(f"{CONTOSO}/")

    left = [e async for e in table.query_entities("PartitionKey eq @pk", parameters={"pk": LEGACY_PARTITION})]
    assert left == []


async def test_the_renewal_of_one_tenant_reads_only_its_own_index_rows(
    storage: StorageClients, azurite: Azurite
) -> None:
    index = TableSubscriptionIndex(storage)
    for n in range(3):
        await index.put(subscription(f"c{n}", CONTOSO))
    for n in range(20):
        await index.put(subscription(f"f{n}", FABRIKAM))
    await index.for_tenant(FABRIKAM)  # a worker's first read checks the layout once

    with recorded_table_requests(azurite.table_endpoint) as log:
        found = await index.for_tenant(CONTOSO)

    assert [r.subscription_id for r in found] == ["c0", "c1", "c2"]
    assert log.scans(SUBSCRIPTIONS) == []
    assert sum(log.entities_by_partition(SUBSCRIPTIONS).values()) == 3


async def test_a_subscription_indexed_before_tenant_rows_existed_is_found_for_its_tenant(
    storage: StorageClients,
) -> None:
    old = subscription("2f1c9a8e-old", CONTOSO)
    await (await storage.table(SUBSCRIPTIONS)).create_entity(subscription_to_entity(old))
    await TableSubscriptionIndex(storage).put(subscription("new", FABRIKAM))

    index = TableSubscriptionIndex(storage)  # a worker of the new version
    assert [r.subscription_id for r in await index.for_tenant(CONTOSO)] == [old.subscription_id]
    assert [r.subscription_id for r in await index.for_tenant(FABRIKAM)] == ["new"]

    await index.delete(old.subscription_id)
    assert await index.for_tenant(CONTOSO) == []
    assert await TableSubscriptionIndex(storage).for_tenant(CONTOSO) == []  # the backfill ran once


def tenant(key: str, directory: str) -> Tenant:
    return Tenant(key, directory, key, AuthMode.ADMIN_CONSENT, TenantState.ACTIVE, TenantSettings(), T0, T0)


async def test_each_tenant_row_has_its_own_partition(storage: StorageClients, azurite: Azurite) -> None:
    tenants = TableTenants(storage)
    await tenants.add(tenant(CONTOSO, "dir-contoso"))
    await tenants.add(tenant(FABRIKAM, "dir-fabrikam"))

    with recorded_table_requests(azurite.table_endpoint) as log:
        assert (await tenants.get(CONTOSO)) is not None
        assert (await tenants.get(FABRIKAM)) is not None

    assert {p for _, p in log.entities_by_partition(TENANTS)} == {CONTOSO, FABRIKAM}


async def test_tenants_stored_in_the_shared_partition_move_once_and_keep_their_claims(
    storage: StorageClients,
) -> None:
    table = await storage.table(TENANTS)
    old = tenant(CONTOSO, "dir-contoso")
    await table.create_entity({**tenant_to_entity(old), "PartitionKey": LEGACY_TENANTS, "RowKey": CONTOSO})
    claim = {"PartitionKey": LEGACY_TENANTS, "RowKey": "~directory-dir-contoso", "TenantId": CONTOSO}
    await table.create_entity(claim)

    tenants = TableTenants(storage)  # a worker of the new version
    moved = await tenants.get(CONTOSO)
    assert moved is not None and moved.directory_id == "dir-contoso"
    assert [t.tenant_id for t in await tenants.list()] == [CONTOSO]
    with pytest.raises(DirectoryTaken):
        await tenants.add(tenant("9188040d-6c67-4c5b-b112-36a304b66dad", "dir-contoso"))
    saved = await tenants.save(replace(moved, display_name="Contoso Ltd"))
    left = [e async for e in table.query_entities("PartitionKey eq @pk", parameters={"pk": LEGACY_TENANTS})]
    assert left == []
    again = await TableTenants(storage).get(CONTOSO)
    assert again is not None and again.display_name == "Contoso Ltd" and again.etag == saved.etag


async def test_consent_links_spread_and_go_with_their_tenant_only(
    storage: StorageClients, azurite: Azurite
) -> None:
    states = TableConsentStates(storage)
    hashes = {CONTOSO: "a1" + "0" * 62, FABRIKAM: "b2" + "0" * 62}
    for tenant_id, state_hash in hashes.items():
        await states.add(ConsentState(state_hash, tenant_id, T0 + timedelta(hours=1)))

    with recorded_table_requests(azurite.table_endpoint) as log:
        await states.delete_tenant(CONTOSO)
        taken = await states.take(hashes[FABRIKAM])

    assert taken == ConsentState(hashes[FABRIKAM], FABRIKAM, T0 + timedelta(hours=1))
    assert await states.take(hashes[CONTOSO]) is None
    assert await states.take(hashes[FABRIKAM]) is None  # once
    touched = {p for _, p in log.entities_by_partition(CONSENT_STATES)}
    assert "state" not in touched and len(touched) == 4  # two link rows, two tenant rows
    assert log.scans(CONSENT_STATES) == []


async def test_a_consent_link_made_before_links_spread_is_taken_once(storage: StorageClients) -> None:
    table = await storage.table(CONSENT_STATES)
    old = {"PartitionKey": "state", "RowKey": "c3" + "0" * 62, "TenantId": CONTOSO, "ExpiresAt": T0}
    await table.create_entity(old)
    await table.create_entity({**old, "RowKey": "d4" + "0" * 62})

    states = TableConsentStates(storage)
    assert await states.take(old["RowKey"]) == ConsentState(old["RowKey"], CONTOSO, T0)
    assert await states.take(old["RowKey"]) is None
    await states.delete_tenant(CONTOSO)
    assert await states.take("d4" + "0" * 62) is None


async def test_a_polling_console_reads_the_users_partition_once_per_window(
    storage: StorageClients, azurite: Azurite
) -> None:
    users = TableUsers(storage)
    staff = [
        UserRecord(CONTOSO, StaffMember(f"s{n}", None, None, f"S{n}"), MatchStatus.MATCHED, T0)
        for n in range(5)
    ]
    saved = await users.save_all(staff)

    with recorded_table_requests(azurite.table_endpoint) as polls:
        for _ in range(3):  # the console's progress and users table, polled
            assert len(await users.console_users(CONTOSO)) == 5
            assert (await users.query(CONTOSO, UserQuery(page_size=2), kept=True)).total == 5
    assert len(polls) == 1

    first = saved[0]
    assert first is not None
    await users.save(replace(first, staff=replace(first.staff, display_name="Renamed")))
    await users.delete(CONTOSO, "s4")
    listed = {u.staff_id: u.staff.display_name for u in await users.console_users(CONTOSO)}
    assert listed == {"s0": "Renamed", "s1": "S1", "s2": "S2", "s3": "S3"}  # this worker's changes: at once
    # another worker's change: the console's listing shows it within its window, the host's API at once
    other = TableUsers(storage)
    renamed = await other.get(CONTOSO, "s1")
    assert renamed is not None
    await other.save(replace(renamed, staff=replace(renamed.staff, display_name="Elsewhere")))
    kept = (await users.query(CONTOSO, UserQuery(), kept=True)).users
    fresh = (await users.query(CONTOSO, UserQuery())).users
    names = [{u.staff_id: u.staff.display_name for u in listing} for listing in (kept, fresh)]
    assert (names[0]["s1"], names[1]["s1"]) == ("S1", "Elsewhere")
