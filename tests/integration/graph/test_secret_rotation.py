"""A customer app's secret rotated with two workers: each worker has its own Key Vault client, Graph
clients and credential cache, as two Functions instances do (the real adapters: azure-keyvault-secrets,
azure-identity, msgraph-sdk, against the emulator's Entra, Graph and Key Vault). One worker reauthorizes
with the new secret, the old one is deleted in Entra, and a Continuous Access Evaluation event makes
every cached token ask Entra again: both workers keep getting tokens, and the tenant is never marked
`consent_revoked`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest

from m365emulator.control import ControlClient
from shared.adapters.graph.calendar import GraphCalendar
from shared.adapters.graph.client import GraphClients
from shared.adapters.graph.credentials import TenantCredentials
from shared.adapters.graph.directory import GraphCustomerApps
from shared.adapters.keyvault import KeyVaultSecretStore
from shared.domain.tenants import AuthMode, CustomerApp, Tenant, TenantState, secret_name
from shared.domain.users import MatchStatus, StaffMember, SyncState, UserRecord
from shared.service import jobs
from shared.service.commands import CustomerAppCredential
from shared.service.context import Services
from shared.service.customer_app import connect_customer_app
from shared.service.sync import run_sync_job
from shared.settings import Settings
from tests.contract.emulator.conftest import credential
from tests.fakes.services import FakeWorld, add_tenant, fake_world
from tests.fixtures.emulator import EmulatorInfo

pytestmark = pytest.mark.integration

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
PERMISSIONS = ["User.Read.All", "Calendars.ReadWrite"]


@dataclass
class Worker:
    store: KeyVaultSecretStore
    clients: GraphClients
    calendar: GraphCalendar
    services: Services


def settings_for(emulator: EmulatorInfo) -> Settings:
    return Settings.from_environ(
        {
            "KEY_VAULT_URL": emulator.keyvault,
            "GRAPH_CLIENT_ID": emulator.client_id,
            "GRAPH_AUTHORITY_HOST": emulator.authority,
            "GRAPH_BASE_URL": emulator.graph,
            "TLS_CA_BUNDLE": emulator.ca_file,
            "PUBLIC_BASE_URL": "https://connector.example",
            "RENEWAL_SCHEDULE": "0 0 */6 * * *",
            "NIGHTLY_RESYNC_SCHEDULE": "0 0 2 * * *",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        }
    )


@dataclass
class Rotation:
    control: ControlClient
    world: FakeWorld
    tenant_id: str
    client_id: str
    old_secret_id: str
    workers: tuple[Worker, Worker]


@pytest.fixture
async def rotation(emulator_reset: EmulatorInfo) -> AsyncIterator[Rotation]:
    emulator = emulator_reset
    settings = settings_for(emulator)
    platform = credential(
        emulator, emulator.platform_tenant_id, emulator.platform_client_id, emulator.platform_client_secret
    )
    async with emulator.control as control:
        domain = f"rotation-{uuid.uuid4().hex[:8]}.example"
        org = await control.create_tenant("Rotation (customer app)", [domain])
        app = await control.create_app(
            "Customer's own app", org["id"], permissions=PERMISSIONS, secrets=[{"value": "old-secret"}]
        )
        await control.consent(org["id"], app["client_id"])
        mailbox = await control.create_user(org["id"], f"staff@{domain}", time_zone="UTC")
        world = fake_world()
        world.clock.current = datetime.fromisoformat(await control.clock())
        workers = []
        for _ in range(2):
            store = KeyVaultSecretStore(emulator.keyvault, platform, ca_bundle=emulator.ca_file)
            credentials = TenantCredentials(settings, store)
            clients = GraphClients(
                emulator.graph, GRAPH_SCOPE, credentials.credential_for, ca_bundle=emulator.ca_file
            )
            calendar = GraphCalendar(clients, credentials.key_for)
            services = replace(
                world.services,
                secrets=store,
                calendar=calendar,
                customer_apps=GraphCustomerApps(clients, credentials.credential),
            )
            workers.append(Worker(store, clients, calendar, services))
        version = await workers[0].store.set(secret_name(org["id"]), "old-secret")
        tenant = await add_tenant(world, domain, TenantState.ACTIVE, directory_id=org["id"])
        world.tenants.rows[domain] = replace(
            tenant,
            auth_mode=AuthMode.CUSTOMER_APP,
            customer_app=CustomerApp(app["client_id"], None, version),
        )
        now = world.clock.now()
        await world.users.save(
            UserRecord(
                domain,
                StaffMember("s1", f"staff@{domain}", None, "Staff One"),
                MatchStatus.MATCHED,
                now,
                graph_user_id=mailbox["id"],
                sync_state=SyncState.SYNCED,
                last_sync_at=now,
                subscription_id="sub-1",
            )
        )
        old_secret_id = app["secrets"][0]["key_id"]
        try:
            yield Rotation(control, world, domain, app["client_id"], old_secret_id, (workers[0], workers[1]))
        finally:
            for worker in workers:
                await worker.clients.close()
                await worker.store.close()
            await platform.close()


async def synced(rotation: Rotation, worker: Worker) -> UserRecord:
    await run_sync_job(worker.services, jobs.sync_user(rotation.tenant_id, "s1", kind="resync"))
    user = await rotation.world.users.get(rotation.tenant_id, "s1")
    assert user is not None
    return user


def tenant(rotation: Rotation) -> Tenant:
    return rotation.world.tenants.rows[rotation.tenant_id]


async def test_a_rotation_with_two_workers_keeps_both_getting_tokens(rotation: Rotation) -> None:
    a, b = rotation.workers
    for worker in (a, b):  # each caches a credential and a token made with the old secret
        assert (await synced(rotation, worker)).sync_state is SyncState.SYNCED
    before = tenant(rotation)

    added = await rotation.control.add_secret(rotation.client_id, value="new-secret")
    await connect_customer_app(  # the reauthorize on worker a: validated, stored, recorded on the row
        a.services,
        before,
        CustomerAppCredential(rotation.client_id, "new-secret", None),
        create=False,
    )
    await rotation.control.remove_secret(rotation.client_id, rotation.old_secret_id)
    await rotation.control.advance_clock(minutes=1)
    rotation.world.clock.current = datetime.fromisoformat(await rotation.control.clock())
    # Continuous Access Evaluation: every token issued before now is refused with a claims challenge, so
    # each worker must ask Entra for a new one (azure-identity's cache cannot answer a challenge).
    await rotation.control.revoke_tokens(tenant(rotation).directory_id, rotation.client_id)

    for worker in (b, a):
        user = await synced(rotation, worker)
        assert user.sync_state is SyncState.SYNCED and user.last_error is None
        assert tenant(rotation).state is not TenantState.CONSENT_REVOKED

    # A job that read the row before the rotation still names the old version: Entra refuses it, Key
    # Vault's current secret is another version, and the request goes through with it.
    await rotation.control.advance_clock(minutes=1)
    await rotation.control.revoke_tokens(tenant(rotation).directory_id, rotation.client_id)
    user = await rotation.world.users.get(rotation.tenant_id, "s1")
    assert user is not None and user.graph_user_id is not None
    window = (datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC))
    read = await b.calendar.read_delta(before, user.graph_user_id, None, window)
    assert read.items == []
    assert tenant(rotation).state is not TenantState.CONSENT_REVOKED
    assert added["key_id"] != rotation.old_secret_id
