"""Connecting tenants, against fakes: outcomes in the repositories, the feed and the queue."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs, urlparse

import pytest

from shared.domain.tenants import AuthMode, Tenant, TenantState, secret_name
from shared.service import tenants as svc
from shared.service.commands import parse_create_tenant
from shared.service.errors import Conflict, InvalidInput
from shared.service.tenants import ConsentCallback, ConsentResult
from tests.fakes.directory import FakeOrganisation
from tests.fakes.services import FakeWorld, fake_world

pytestmark = pytest.mark.unit

CONTOSO = "9188040d-6c67-4c5b-b112-36a304b66dad"


@pytest.fixture
def world() -> FakeWorld:
    w = fake_world()
    w.directory.add(
        FakeOrganisation(
            CONTOSO, {"contoso.example"}, apps={"aaaaaaaa-0000-0000-0000-000000000001": "s3cret"}
        )
    )
    return w


def consent_state_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["state"][0]


async def start(world: FakeWorld, tenant_id: str = CONTOSO) -> str:
    body = {"tenant_id": tenant_id, "display_name": "Contoso", "auth": {"mode": "admin_consent"}}
    connection = await svc.create_tenant(world.services, parse_create_tenant(body))
    assert connection.consent_url is not None
    return consent_state_of(connection.consent_url)


def ok_callback(state: str, tenant: str = CONTOSO) -> ConsentCallback:
    return ConsentCallback(
        state=state, tenant=tenant, admin_consent="True", error=None, error_description=None
    )


async def test_admin_consent_connects_and_queues_discovery(world: FakeWorld) -> None:
    state = await start(world)
    world.directory.organisations[CONTOSO].consented = True
    outcome = await svc.complete_consent(world.services, ok_callback(state))
    assert outcome.result is ConsentResult.CONNECTED
    tenant = world.tenants.rows[CONTOSO]
    assert tenant.state is TenantState.CONNECTING
    assert [j.kind for j in world.jobs.take() if j.queue != "host-deliveries"] == ["discover"]
    assert world.feed.types(CONTOSO) == ["tenant.connected"]


async def test_consent_url_names_the_tenant_app_redirect_and_state(world: FakeWorld) -> None:
    body = {"tenant_id": "Contoso.Example", "display_name": "Contoso", "auth": {"mode": "admin_consent"}}
    connection = await svc.create_tenant(world.services, parse_create_tenant(body))
    url = urlparse(connection.consent_url or "")
    assert url.path == f"/{CONTOSO}/v2.0/adminconsent"
    query = parse_qs(url.query)
    assert query["client_id"] == [world.services.config.client_id]
    assert query["redirect_uri"] == ["https://connector.example/api/consent/callback"]
    assert query["scope"] == ["https://graph.microsoft.com/.default"]
    assert len(query["state"][0]) >= 40
    assert connection.tenant.tenant_id == "contoso.example"


async def test_state_is_one_time(world: FakeWorld) -> None:
    state = await start(world)
    world.directory.organisations[CONTOSO].consented = True
    await svc.complete_consent(world.services, ok_callback(state))
    replay = await svc.complete_consent(world.services, ok_callback(state))
    assert replay.result is ConsentResult.INVALID_STATE
    assert world.feed.types(CONTOSO) == ["tenant.connected"]


async def test_expired_state_records_a_reason_and_changes_nothing_else(world: FakeWorld) -> None:
    state = await start(world)
    world.clock.advance(hours=2)
    outcome = await svc.complete_consent(world.services, ok_callback(state))
    assert outcome.result is ConsentResult.EXPIRED_STATE
    tenant = world.tenants.rows[CONTOSO]
    assert tenant.state is TenantState.PENDING_CONSENT
    assert "expired" in (tenant.last_error or "")
    assert [j for j in world.jobs.take() if j.queue != "host-deliveries"] == []


@pytest.mark.parametrize(
    ("error", "result"),
    [
        ("access_denied", ConsentResult.DECLINED),
        ("consent_required", ConsentResult.DECLINED),
        ("server_error", ConsentResult.FAILED),
    ],
)
async def test_declined_or_failed_consent(world: FakeWorld, error: str, result: ConsentResult) -> None:
    state = await start(world)
    callback = ConsentCallback(
        state, None, "True", error, "AADSTS65004: User declined to consent to access the app.\r\nTrace ID: x"
    )
    outcome = await svc.complete_consent(world.services, callback)
    assert outcome.result is result
    tenant = world.tenants.rows[CONTOSO]
    assert tenant.state is TenantState.PENDING_CONSENT
    assert "AADSTS65004" in (tenant.last_error or "") and "Trace ID" not in (tenant.last_error or "")


async def test_consent_for_another_tenant_is_refused(world: FakeWorld) -> None:
    state = await start(world)
    outcome = await svc.complete_consent(
        world.services, ok_callback(state, tenant="00000000-0000-0000-0000-000000000001")
    )
    assert outcome.result is ConsentResult.WRONG_TENANT
    assert world.tenants.rows[CONTOSO].state is TenantState.PENDING_CONSENT


async def test_forged_state_changes_nothing(world: FakeWorld) -> None:
    await start(world)
    before = dict(world.tenants.rows)
    outcome = await svc.complete_consent(world.services, ok_callback("forged-state-value"))
    assert outcome.result is ConsentResult.INVALID_STATE
    assert world.tenants.rows == before


async def test_duplicate_create_is_a_conflict(world: FakeWorld) -> None:
    await start(world)
    with pytest.raises(Conflict):
        await start(world)


async def test_unknown_tenant_is_rejected_and_nothing_stored(world: FakeWorld) -> None:
    with pytest.raises(InvalidInput) as raised:
        await start(world, "fabrikam.example")
    assert raised.value.field == "tenant_id"
    assert world.tenants.rows == {}


async def test_customer_app_secret_goes_to_the_vault_only(world: FakeWorld) -> None:
    body = {
        "tenant_id": CONTOSO,
        "display_name": "Contoso",
        "auth": {
            "mode": "customer_app",
            "client_id": "aaaaaaaa-0000-0000-0000-000000000001",
            "client_secret": "s3cret",
        },
    }
    connection = await svc.create_tenant(world.services, parse_create_tenant(body))
    assert connection.consent_url is None
    assert connection.tenant.auth_mode is AuthMode.CUSTOMER_APP
    assert world.secrets.values[secret_name(CONTOSO)] == "s3cret"
    assert "s3cret" not in repr(world.tenants.rows[CONTOSO])
    assert world.tenants.rows[CONTOSO].state is TenantState.CONNECTING


async def test_wrong_customer_secret_stores_nothing(world: FakeWorld) -> None:
    body = {
        "tenant_id": CONTOSO,
        "display_name": "Contoso",
        "auth": {
            "mode": "customer_app",
            "client_id": "aaaaaaaa-0000-0000-0000-000000000001",
            "client_secret": "wrong",
        },
    }
    with pytest.raises(InvalidInput) as raised:
        await svc.create_tenant(world.services, parse_create_tenant(body))
    assert raised.value.field == "auth.client_secret"
    assert world.tenants.rows == {} and world.secrets.values == {}


async def test_disconnect_purges_and_is_idempotent(world: FakeWorld) -> None:
    state = await start(world)
    world.directory.organisations[CONTOSO].consented = True
    await svc.complete_consent(world.services, ok_callback(state))
    await svc.begin_disconnect(world.services, CONTOSO)
    await svc.begin_disconnect(world.services, CONTOSO)
    assert world.tenants.rows[CONTOSO].state is TenantState.DISCONNECTING
    for job in world.jobs.take():
        if job.kind == "disconnect":
            await svc.finish_disconnect(world.services, job.tenant_id)
    assert world.tenants.rows[CONTOSO].state is TenantState.DISCONNECTED
    assert world.consent_states.rows == {}
    assert "tenant.disconnected" in world.feed.types(CONTOSO)


class _WorkerMovesStateFirst:
    """The tenants repository as a request sees it while a worker finishes the migration: the first save
    after a read loses the race to the worker's own save (the tenant became active meanwhile)."""

    def __init__(self, world: FakeWorld) -> None:
        self._world = world
        self._inner = world.tenants
        self.raced = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def save(self, tenant: Tenant) -> Tenant:
        if not self.raced:
            self.raced = True
            current = self._inner.rows[tenant.tenant_id]
            await self._inner.save(current.with_state(TenantState.ACTIVE, current.updated_at))
        return await self._inner.save(tenant)


async def _migrating(world: FakeWorld) -> _WorkerMovesStateFirst:
    state = await start(world)
    world.directory.organisations[CONTOSO].consented = True
    await svc.complete_consent(world.services, ok_callback(state))
    racing = _WorkerMovesStateFirst(world)
    world.services = replace(world.services, tenants=racing)  # type: ignore[arg-type]
    return racing


async def test_a_disconnect_racing_a_finishing_migration_still_disconnects(world: FakeWorld) -> None:
    racing = await _migrating(world)

    tenant = await svc.begin_disconnect(world.services, CONTOSO)

    assert racing.raced
    assert tenant.state is TenantState.DISCONNECTING
    assert world.tenants.rows[CONTOSO].state is TenantState.DISCONNECTING
    assert [j.kind for j in world.jobs.take() if j.kind == "disconnect"] == ["disconnect"]


async def test_a_settings_patch_racing_a_finishing_migration_applies_to_the_fresh_row(
    world: FakeWorld,
) -> None:
    racing = await _migrating(world)

    tenant = await svc.update_settings(world.services, CONTOSO, {"privacy_mode": True})

    assert racing.raced
    stored = world.tenants.rows[CONTOSO]
    assert stored.settings.privacy_mode is True and tenant.settings.privacy_mode is True
    assert stored.state is TenantState.ACTIVE  # the worker's change is kept


async def test_consent_revoked_is_recorded_once(world: FakeWorld) -> None:
    state = await start(world)
    world.directory.organisations[CONTOSO].consented = True
    await svc.complete_consent(world.services, ok_callback(state))
    await svc.mark_consent_revoked(world.services, CONTOSO, "403 Authorization_RequestDenied")
    await svc.mark_consent_revoked(world.services, CONTOSO, "403 Authorization_RequestDenied")
    assert world.tenants.rows[CONTOSO].state is TenantState.CONSENT_REVOKED
    assert world.feed.types(CONTOSO).count("tenant.consent_revoked") == 1
