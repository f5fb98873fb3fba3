"""Storage shards on two Azurites: a sharded tenant's rows, blobs and queue messages are in its account only,
an unsharded tenant's in the home account only, and the tenants table (the directory) in the home account.
The services are the composition root's, built from app settings as in Azure."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

from devhost.azurite import Azurite
from shared.adapters.storage import placed_account
from shared.bootstrap import Container
from shared.domain.mail import MailContent, Recipient
from shared.domain.tenants import AuthMode, Tenant, TenantSettings, TenantState
from shared.domain.users import MatchStatus, StaffMember, UserRecord
from shared.service.jobs import Notified, TenantJob, TenantWork, sync_user
from shared.service.monitor import Direction, MessageStatus, MonitoredMessage, new_message_id
from shared.service.records import Change, DeadLetter
from shared.settings import STORAGE_CONNECTION, Settings

HOME = STORAGE_CONNECTION
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def home_azurite() -> Iterator[Azurite]:
    """The home account is this module's own: the session's Azurite has fixed queue names that the session's
    connector host (started by the e2e tests) keeps receiving from, so the home jobs this module counts
    would be taken there (and dropped, that host's tables knowing no such tenant)."""
    with Azurite() as instance:
        yield instance


@pytest.fixture(scope="module")
def second_azurite() -> Iterator[Azurite]:
    with Azurite() as instance:
        yield instance


def tenant_placed_on(account: str, placement: tuple[str, ...]) -> str:
    """A tenant key the placement rule puts on `account`."""
    for _ in range(1000):
        key = f"org{uuid.uuid4().hex[:10]}.example"
        if placed_account(key, placement) == account:
            return key
    raise AssertionError("no key placed there")


def app_settings(home: Azurite, shard: Azurite, prefix: str, placement: str) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": home.connection_string,
        "STORAGE_SHARDS": "SHARD1",
        "SHARD1": shard.connection_string,
        "STORAGE_PLACEMENT": placement,
        "TABLE_PREFIX": prefix,
        "KEY_VAULT_URL": "https://vault.invalid",
        "GRAPH_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
        "PUBLIC_BASE_URL": "https://connector.invalid",
        "RENEWAL_SCHEDULE": "0 0 * * * *",
        "NIGHTLY_RESYNC_SCHEDULE": "0 0 2 * * *",
    }


@pytest.fixture
async def worker(home_azurite: Azurite, second_azurite: Azurite) -> AsyncIterator[Container]:
    prefix = f"shards{uuid.uuid4().hex[:8]}"
    settings = app_settings(home_azurite, second_azurite, prefix, f"{HOME},SHARD1")
    built = Container(Settings.from_environ(settings))
    yield built
    await built.close()


def new_tenant(key: str) -> Tenant:
    return Tenant(
        key, str(uuid.uuid4()), key, AuthMode.ADMIN_CONSENT, TenantState.ACTIVE, TenantSettings(), NOW, NOW
    )


async def write_everything(container: Container, tenant: Tenant) -> None:
    """One of each kind of per-tenant state, and a job of each routing kind."""
    services = container.services
    key = tenant.tenant_id
    await services.tenants.add(tenant)
    staff = StaffMember("s-1", f"a@{key}", f"a@{key}", "A")
    await services.users.save(UserRecord(key, staff, MatchStatus.MATCHED, NOW, graph_user_id="g-1"))
    await services.feed.append(key, [Change("user.matched", key, {"n": 1}, NOW, "s-1")])
    await services.dead_letters.add(DeadLetter(key, 1, 1, 3, "refused", NOW))
    await services.leases.acquire(f"{key}/s-1", "worker", timedelta(minutes=5), NOW)
    await services.messages.record(
        [
            MonitoredMessage(
                key,
                Direction.PULL,
                "sync",
                MessageStatus.OK,
                "sub-1",
                NOW,
                NOW,
                message_id=new_message_id(NOW),
            )
        ]
    )
    mail = MailContent("Hello", "text", "Hi", (Recipient("B", f"b@{key}"),))
    await services.mail_content.put(key, "m-1", mail)
    await services.jobs.enqueue(
        [
            TenantJob(key, TenantWork.NIGHTLY),
            sync_user(key, "s-1", reason="test"),
            Notified(tenant.directory_id, "sub-1", "g-1"),
        ]
    )


async def partitions(connection_string: str, prefix: str) -> dict[str, set[str]]:
    """Every table of the test's prefix in one account: table -> its rows' PartitionKey and RowKey."""
    found: dict[str, set[str]] = {}
    async with TableServiceClient.from_connection_string(connection_string) as service:
        async for table in service.list_tables():
            if table.name.startswith(prefix):
                client = service.get_table_client(table.name)
                found[table.name[len(prefix) :]] = {
                    f"{e['PartitionKey']}/{e['RowKey']}" async for e in client.list_entities()
                }
    return found


async def blobs(connection_string: str, tenant_key: str) -> list[str]:
    """The tenant's outgoing mail blobs in one account."""
    async with BlobServiceClient.from_connection_string(connection_string) as service:
        container = service.get_container_client("outgoing-mail")
        if not await container.exists():
            return []
        return [b.name async for b in container.list_blobs(name_starts_with=f"{tenant_key}/")]


async def queued(connection_string: str) -> dict[str, list[dict[str, Any]]]:
    """Every job message on the queues of one account, decoded (a message that is not a job is skipped)."""
    found: dict[str, list[dict[str, Any]]] = {}
    async with QueueServiceClient.from_connection_string(connection_string) as service:
        async for queue in service.list_queues():
            client = service.get_queue_client(queue.name)
            # Peek sees the first 32 only: receive them all, each hidden for a second and left on the queue.
            messages = [m async for m in client.receive_messages(messages_per_page=32, visibility_timeout=1)]
            found[queue.name] = [job for m in messages if (job := _job(m.content)) is not None]
    return found


def _job(content: str) -> dict[str, Any] | None:
    try:
        decoded = json.loads(base64.b64decode(content, validate=True))
    except (binascii.Error, ValueError):
        return None
    return decoded if isinstance(decoded, dict) else None


def naming(rows: dict[str, set[str]], key: str) -> dict[str, set[str]]:
    return {
        table: {r for r in keys if key in r} for table, keys in rows.items() if any(key in r for r in keys)
    }


async def test_a_sharded_tenants_state_and_jobs_are_in_its_account_only(
    worker: Container, home_azurite: Azurite, second_azurite: Azurite
) -> None:
    placement = (HOME, "SHARD1")
    sharded, unsharded = tenant_placed_on("SHARD1", placement), tenant_placed_on(HOME, placement)
    tenants = {key: new_tenant(key) for key in (sharded, unsharded)}
    for tenant in tenants.values():
        await write_everything(worker, tenant)
    prefix = worker.settings.table_prefix

    home_rows = await partitions(home_azurite.connection_string, prefix)
    shard_rows = await partitions(second_azurite.connection_string, prefix)
    per_tenant = {"users", "changes", "deliveries", "leases", "messages"}
    assert set(naming(shard_rows, sharded)) == per_tenant
    assert set(naming(home_rows, unsharded)) == per_tenant | {"tenants"}
    assert set(naming(home_rows, sharded)) == {"tenants"}  # its row and nothing else
    assert naming(shard_rows, unsharded) == {}
    assert "tenants" not in shard_rows
    # The mail content's blob too.
    assert await blobs(second_azurite.connection_string, sharded) == [f"{sharded}/m-1.json"]
    assert await blobs(home_azurite.connection_string, sharded) == []
    assert await blobs(home_azurite.connection_string, unsharded) == [f"{unsharded}/m-1.json"]
    assert await blobs(second_azurite.connection_string, unsharded) == []

    # Each job went to the queue of its tenant's account; a notification found it by its directory.
    home_queues, shard_queues = (
        await queued(home_azurite.connection_string),
        await queued(second_azurite.connection_string),
    )

    def jobs_of(queues: dict[str, list[dict[str, Any]]], tenant: Tenant) -> set[tuple[str, str]]:
        return {
            (queue, message["kind"])
            for queue, messages in queues.items()
            for message in messages
            if message.get("tenant_id") == tenant.tenant_id
            or message.get("directory_id") == tenant.directory_id
        }

    expected = {("tenant-jobs", "nightly"), ("sync-jobs", "sync"), ("sync-jobs", "notified")}
    assert jobs_of(shard_queues, tenants[sharded]) == expected
    assert jobs_of(home_queues, tenants[sharded]) == set()
    assert jobs_of(home_queues, tenants[unsharded]) == expected
    assert jobs_of(shard_queues, tenants[unsharded]) == set()


async def test_another_worker_finds_the_tenant_in_the_account_its_row_names(
    worker: Container, home_azurite: Azurite, second_azurite: Azurite
) -> None:
    """The assignment is stored: a worker whose placement sends new tenants elsewhere (the shard closed
    to new tenants) still reads and writes the tenant in its account, and keeps it there on save."""
    sharded = tenant_placed_on("SHARD1", (HOME, "SHARD1"))
    await write_everything(worker, new_tenant(sharded))
    prefix = worker.settings.table_prefix
    other = Container(Settings.from_environ(app_settings(home_azurite, second_azurite, prefix, HOME)))
    try:
        services = other.services
        user = await services.users.get(sharded, "s-1")
        assert user is not None and user.graph_user_id == "g-1"
        assert [c.type for c in await services.feed.read(sharded, 0, 10)] == ["user.matched"]
        tenant = await services.tenants.get(sharded)
        assert tenant is not None
        await services.tenants.save(replace(tenant, display_name="Renamed"))
        again = app_settings(home_azurite, second_azurite, prefix, HOME)
        other_again = Container(Settings.from_environ(again))
        try:
            assert await other_again.router.for_tenant(sharded) is other_again.router.accounts["SHARD1"]
        finally:
            await other_again.close()
    finally:
        await other.close()


async def test_a_message_the_host_poisoned_in_a_shard_is_listed_and_taken(
    worker: Container, second_azurite: Azurite
) -> None:
    """The Functions host moves a message that failed its last try to the poison queue of the account it
    came from: the console's poison listing sees the shard's as well as the home account's."""
    queue = f"jobs{uuid.uuid4().hex[:12]}"
    poison = worker.services.poison
    await poison.put(queue, '{"kind":"parked"}')  # parked by the connector: the home account
    async with QueueServiceClient.from_connection_string(second_azurite.connection_string) as service:
        client = service.get_queue_client(f"{queue}-poison")
        await client.create_queue()
        await client.send_message(base64.b64encode(b'{"kind":"moved"}').decode())
    listed = await poison.peek(queue)
    assert sorted(m.body for m in listed) == ['{"kind":"moved"}', '{"kind":"parked"}']
    moved = next(m for m in listed if m.body == '{"kind":"moved"}')
    taken = await poison.take(queue, moved.message_id)
    assert taken is not None and taken.body == '{"kind":"moved"}'
    assert [m.body for m in await poison.peek(queue)] == ['{"kind":"parked"}']
