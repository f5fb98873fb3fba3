"""Storage shards end to end: the local host runs the real app with a second Azurite as shard `SHARD1`
(`STORAGE_SHARDS`), new tenants placed on either account. A sharded tenant migrates, syncs an Outlook
change to the feed and the host's webhook, its rows are in the shard only and its jobs ran on the shard's
queue triggers; an unsharded tenant's rows stay in the home account."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devhost.azurite import Azurite
from shared.adapters.storage import placed_account
from shared.settings import STORAGE_CONNECTION
from tests.e2e.test_sync import Outlook, events_of, feed, graph_event, migrated_organisation, wait_for
from tests.fixtures.connector import Connector, running_connector
from tests.integration.test_storage_shards import naming, partitions

pytestmark = pytest.mark.e2e

HOME = STORAGE_CONNECTION
PLACEMENT = (HOME, "SHARD1")


@pytest.fixture(scope="module")
def home_azurite() -> Iterator[Azurite]:
    """The home account is this module's own, not the session's Azurite: queue names are fixed, so the
    session's connector host (started by any earlier e2e module) polls the session's `tenant-jobs` and
    `sync-jobs` too, takes this host's home-tenant jobs and drops them (its tables know no such tenant):
    the unsharded organisation never migrated in the full suite, while the sharded one, whose queues only
    this host reads, did."""
    with Azurite() as instance:
        yield instance


@pytest.fixture(scope="module")
def shard_azurite() -> Iterator[Azurite]:
    with Azurite() as instance:
        yield instance


@pytest.fixture(scope="module")
def sharded(
    emulator: Any, home_azurite: Azurite, shard_azurite: Azurite, local_host_factory: Any
) -> Iterator[Connector]:
    def grouped_host(app_root: Any, settings: Any, *, extra_args: Any = (), **options: Any) -> Any:
        """The queue functions of both accounts in one worker process (a process each would be twice the
        usual start-up on a busy machine); they listen on their own connections all the same."""
        options.setdefault("timeout", 240.0)
        grouped = [*extra_args, "--scale", "grouped"]
        return local_host_factory(app_root, settings, extra_args=grouped, **options)

    with running_connector(
        emulator,
        home_azurite,
        grouped_host,
        STORAGE_SHARDS="SHARD1",
        SHARD1=shard_azurite.connection_string,
        STORAGE_PLACEMENT=",".join(PLACEMENT),
    ) as started:
        yield started


def domain_on(account: str) -> str:
    for _ in range(1000):
        domain = f"shard{uuid.uuid4().hex[:8]}.example"
        if placed_account(domain, PLACEMENT) == account:
            return domain
    raise AssertionError("no domain placed there")


def shard_invocations(connector: Connector) -> set[str]:
    """The shard's queue triggers this host ran."""
    return {
        field.removeprefix("function=")
        for line in connector.host.log().splitlines()
        if "invocation started" in line and "trigger=queue" in line
        for field in line.split()
        if field.startswith("function=") and field.endswith("__SHARD1")
    }


async def test_a_sharded_tenant_syncs_end_to_end_from_its_own_account(
    sharded: Connector, home_azurite: Azurite, shard_azurite: Azurite
) -> None:
    on_shard = await migrated_organisation(sharded, events_per_user=1, domain=domain_on("SHARD1"))
    at_home = await migrated_organisation(sharded, events_per_user=1, domain=domain_on(HOME))
    domain = on_shard["domain"]
    made = Outlook(sharded, on_shard["id"]).create(f"adele@{domain}", graph_event("Sharded dentist", days=2))
    wait_for(lambda: "Sharded dentist" in events_of(feed(sharded, domain), "event.created"))
    wait_for(
        lambda: any(
            c["data"].get("event", {}).get("id") == made["id"] for c in sharded.receiver.changes(domain)
        )
    )

    prefix = sharded.settings["TABLE_PREFIX"]
    home_rows = await partitions(home_azurite.connection_string, prefix)
    shard_rows = await partitions(shard_azurite.connection_string, prefix)
    # The sharded tenant: its row (and directory claim) and its subscriptions' index rows at home (found
    # before the tenant is known), everything else in the shard.
    assert set(naming(home_rows, domain)) == {"tenants", "subscriptions"}
    assert {"users", "changes", "outlookitems", "busy"} <= set(naming(shard_rows, domain))
    # The unsharded tenant: all at home, nothing in the shard.
    assert naming(shard_rows, at_home["domain"]) == {}
    assert {"tenants", "users", "changes", "outlookitems", "busy"} <= set(
        naming(home_rows, at_home["domain"])
    )
    # Its jobs were consumed from the shard's queues (the tenant job, the migrations, the notification).
    assert {"tenant_job__SHARD1", "sync_job__SHARD1", "host_delivery__SHARD1"} <= shard_invocations(sharded)
