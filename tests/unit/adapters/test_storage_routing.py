"""Tenant -> storage account: the placement rule, the stored assignment winning over it, and the settings."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest

from shared.adapters.storage import StorageClients, StorageRouter, placed_account
from shared.settings import (
    STORAGE_CONNECTION,
    SettingsError,
    StorageSettings,
    StorageShards,
    storage_shard_names,
)

HOME = STORAGE_CONNECTION


class StoredAccounts:
    """The tenants table as the router reads it: tenant -> account on its row, directory -> account on
    its claim. Counts the reads, so a test can tell a remembered assignment from a read one."""

    def __init__(self) -> None:
        self.tenants: dict[str, str] = {}
        self.directories: dict[str, str] = {}
        self.reads = 0

    async def account_of(self, tenant_id: str) -> str | None:
        self.reads += 1
        return self.tenants.get(tenant_id)

    async def account_of_directory(self, directory_id: str) -> str | None:
        self.reads += 1
        return self.directories.get(directory_id)


def account(name: str) -> StorageClients:
    """Clients of an account nobody talks to (building them opens no connection)."""
    return StorageClients(
        StorageSettings(
            f"DefaultEndpointsProtocol=http;AccountName={name.lower()};AccountKey=a2V5;"
            f"TableEndpoint=http://127.0.0.1:1/{name};QueueEndpoint=http://127.0.0.1:1/{name};",
            None,
            None,
        ),
        credential=None,  # type: ignore[arg-type]  # a connection string needs none
    )


@pytest.fixture
async def accounts() -> AsyncIterator[dict[str, StorageClients]]:
    built = {name: account(name) for name in (HOME, "SHARD1", "SHARD2")}
    yield built
    for clients in built.values():
        await clients.close()


def test_the_placement_rule_is_stable_and_spreads_tenants_evenly() -> None:
    placement = ("SHARD1", "SHARD2", "SHARD3")
    tenants = [f"org{i}.example" for i in range(3000)]
    first = [placed_account(t, placement) for t in tenants]
    assert first == [placed_account(t, placement) for t in tenants]
    counts = Counter(first)
    assert set(counts) == set(placement)
    assert all(900 <= count <= 1100 for count in counts.values()), counts


async def test_a_tenant_stays_in_the_account_its_row_names_when_shards_are_added(
    accounts: dict[str, StorageClients],
) -> None:
    stored = StoredAccounts()
    before = StorageRouter(accounts[HOME], {"SHARD1": accounts["SHARD1"]}, ["SHARD1"], stored)
    stored.tenants["contoso.example"] = before.place("contoso.example")
    assert stored.tenants["contoso.example"] == "SHARD1"
    # A second shard opens and the first closes to new tenants: new placement, same tenant, same account.
    after = StorageRouter(
        accounts[HOME], {"SHARD1": accounts["SHARD1"], "SHARD2": accounts["SHARD2"]}, ["SHARD2"], stored
    )
    assert after.place("contoso.example") == "SHARD2"
    assert await after.for_tenant("contoso.example") is accounts["SHARD1"]


async def test_a_tenant_whose_row_names_no_account_is_in_the_home_account(
    accounts: dict[str, StorageClients],
) -> None:
    stored = StoredAccounts()
    stored.tenants["fabrikam.example"] = HOME  # a row from before any shard existed
    router = StorageRouter(accounts[HOME], {"SHARD1": accounts["SHARD1"]}, ["SHARD1"], stored)
    assert await router.for_tenant("fabrikam.example") is accounts[HOME]


async def test_an_assignment_is_read_once_per_worker_and_a_missing_row_is_read_again(
    accounts: dict[str, StorageClients],
) -> None:
    stored = StoredAccounts()
    router = StorageRouter(accounts[HOME], {"SHARD1": accounts["SHARD1"]}, ["SHARD1"], stored)
    assert await router.for_tenant("new.example") is accounts[HOME]  # no row yet: home, not remembered
    stored.tenants["new.example"] = "SHARD1"
    assert await router.for_tenant("new.example") is accounts["SHARD1"]
    assert await router.for_tenant("new.example") is accounts["SHARD1"]
    assert stored.reads == 2


async def test_a_notification_is_routed_by_its_directory(accounts: dict[str, StorageClients]) -> None:
    stored = StoredAccounts()
    stored.directories["dir-1"] = "SHARD1"
    router = StorageRouter(accounts[HOME], {"SHARD1": accounts["SHARD1"]}, ["SHARD1"], stored)
    assert await router.for_directory("dir-1") is accounts["SHARD1"]
    assert await router.for_directory("dir-unknown") is accounts[HOME]
    router.remember("t", "SHARD1", directory_id="dir-2")  # a tenant row read tells its directory's too
    assert await router.for_directory("dir-2") is accounts["SHARD1"]


async def test_without_shards_nothing_is_read(accounts: dict[str, StorageClients]) -> None:
    stored = StoredAccounts()
    stored.tenants["t"] = "SHARD1"  # ignored: no shard is configured
    router = StorageRouter(accounts[HOME], {}, [HOME], stored)
    assert await router.for_tenant("t") is accounts[HOME]
    assert await router.for_directory("d") is accounts[HOME]
    assert stored.reads == 0
    assert router.place("t") == HOME


async def test_a_row_naming_an_account_no_longer_configured_is_refused(
    accounts: dict[str, StorageClients],
) -> None:
    stored = StoredAccounts()
    stored.tenants["t"] = "SHARD9"
    router = StorageRouter(accounts[HOME], {"SHARD1": accounts["SHARD1"]}, ["SHARD1"], stored)
    with pytest.raises(RuntimeError, match="SHARD9"):
        await router.for_tenant("t")


def test_the_shard_settings_name_accounts_the_way_functions_names_connections() -> None:
    env = {
        "STORAGE_SHARDS": "SHARD1, SHARD2",
        "SHARD1": "UseDevelopmentStorage=true",
        "SHARD2__accountName": "connectorshard2",
    }
    shards = StorageShards.from_environ(env)
    assert [name for name, _ in shards.accounts] == ["SHARD1", "SHARD2"]
    assert shards.accounts[0][1].connection_string == "UseDevelopmentStorage=true"
    assert shards.accounts[1][1].table_endpoint == "https://connectorshard2.table.core.windows.net"
    assert shards.accounts[1][1].queue_endpoint == "https://connectorshard2.queue.core.windows.net"
    assert shards.placement == ("SHARD1", "SHARD2")  # new tenants go to the shards by default
    placed = StorageShards.from_environ({**env, "STORAGE_PLACEMENT": f"{HOME},SHARD2"})
    assert placed.placement == (HOME, "SHARD2")
    assert StorageShards.from_environ({}) == StorageShards((), (HOME,))


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"STORAGE_SHARDS": "SHARD1"}, "SHARD1"),  # no connection for it
        ({"STORAGE_SHARDS": "shard-1", "shard-1": "x"}, "STORAGE_SHARDS"),
        ({"STORAGE_SHARDS": "AzureWebJobsStorage"}, "STORAGE_SHARDS"),
        ({"STORAGE_SHARDS": "A,a", "A": "x", "a": "x"}, "STORAGE_SHARDS"),
        ({"STORAGE_SHARDS": "A__b", "A__b": "x"}, "STORAGE_SHARDS"),
        ({"STORAGE_SHARDS": "A", "A": "x", "STORAGE_PLACEMENT": "B"}, "STORAGE_PLACEMENT"),
    ],
)
def test_a_bad_shard_setting_is_refused_naming_it(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        StorageShards.from_environ(env)


def test_the_queue_triggers_names_come_from_the_same_setting() -> None:
    assert storage_shard_names({"STORAGE_SHARDS": " SHARD1 ,SHARD2,"}) == ("SHARD1", "SHARD2")
    assert storage_shard_names({}) == ()
