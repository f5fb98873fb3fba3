"""Connecting tenants, against fakes: outcomes in the repositories, the feed and the queue."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pytest

from shared.domain.tenants import AuthMode, Tenant, TenantState, secret_name
from shared.domain.users import MatchStatus, StaffMember, UserRecord
from shared.service import tenant_consent, tenant_disconnect, tenant_settings, tenants
from shared.service.commands import parse_create_tenant
from shared.service.errors import ChangesPruned, Conflict, InvalidInput
from shared.service.records import GraphSubscription, SubscriptionRecord
from shared.service.tenant_consent import ConsentCallback, ConsentResult
from tests.fakes.directory import FakeOrganisation
from tests.fakes.services import FakeWorld, fake_world

pytestmark = pytest.mark.unit

CONTOSO = "9188040d-6c67-4c5b-b112-36a304b66dad"
T_FAR = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


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
    connection = await tenant_consent.create_tenant(world.services, parse_create_tenant(body))
    assert connection.consent_url is not None
    return consent_state_of(connection.consent_url)


def ok_callback(state: str, tenant: str = CONTOSO) -> ConsentCallback:
    return ConsentCallback(
        state=state, tenant=tenant, admin_consent="True", error=None, error_description=None
    )


async def test_admin_consent_connects_and_queues_discovery(world: FakeWorld) -> None:
    state = await start(world)
    world.directory.organisations[CONTOSO].consented = True
    outcome = await tenant_consent.complete_consent(world.services, ok_callback(state))
    assert outcome.result is ConsentResult.CONNECTED
    tenant = world.tenants.rows[CONTOSO]
    assert tenant.state is TenantState.CONNECTING
    assert [j.kind for j in world.jobs.take() if j.queue != "host-deliveries"] == ["discover"]
    assert world.feed.types(CONTOSO) == ["tenant.connected"]


async def test_consent_url_names_the_tenant_app_redirect_and_state(world: FakeWorld) -> None:
    body = {"tenant_id": "Contoso.Example", "display_name": "Contoso", "auth": {"mode": "admin_consent"}}
    connection = await tenant_consent.create_tenant(world.services, parse_create_tenant(body))
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
    await tenant_consent.complete_consent(world.services, ok_callback(state))
    replay = await tenant_consent.complete_consent(world.services, ok_callback(state))
    assert replay.result is ConsentResult.INVALID_STATE
    assert world.feed.types(CONTOSO) == ["tenant.connected"]


async def test_expired_state_records_a_reason_and_changes_nothing_else(world: FakeWorld) -> None:
    state = await start(world)
    world.clock.advance(hours=2)
    outcome = await tenant_consent.complete_consent(world.services, ok_callback(state))
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
    outcome = await tenant_consent.complete_consent(world.services, callback)
    assert outcome.result is result
    tenant = world.tenants.rows[CONTOSO]
    assert tenant.state is TenantState.PENDING_CONSENT
    assert "AADSTS65004" in (tenant.last_error or "") and "Trace ID" not in (tenant.last_error or "")


async def test_consent_for_another_tenant_is_refused(world: FakeWorld) -> None:
    state = await start(world)
    outcome = await tenant_consent.complete_consent(
        world.services, ok_callback(state, tenant="00000000-0000-0000-0000-000000000001")
    )
    assert outcome.result is ConsentResult.WRONG_TENANT
    assert world.tenants.rows[CONTOSO].state is TenantState.PENDING_CONSENT


async def test_forged_state_changes_nothing(world: FakeWorld) -> None:
    await start(world)
    before = dict(world.tenants.rows)
    outcome = await tenant_consent.complete_consent(world.services, ok_callback("forged-state-value"))
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
    connection = await tenant_consent.create_tenant(world.services, parse_create_tenant(body))
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
        await tenant_consent.create_tenant(world.services, parse_create_tenant(body))
    assert raised.value.field == "auth.client_secret"
    assert world.tenants.rows == {} and world.secrets.values == {}


async def test_disconnect_purges_and_is_idempotent(world: FakeWorld) -> None:
    state = await start(world)
    world.directory.organisations[CONTOSO].consented = True
    await tenant_consent.complete_consent(world.services, ok_callback(state))
    await tenant_disconnect.begin_disconnect(world.services, CONTOSO)
    await tenant_disconnect.begin_disconnect(world.services, CONTOSO)
    assert world.tenants.rows[CONTOSO].state is TenantState.DISCONNECTING
    for job in world.jobs.take():
        if job.kind == "disconnect":
            await tenant_disconnect.finish_disconnect(world.services, job.tenant_id)
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
    await tenant_consent.complete_consent(world.services, ok_callback(state))
    racing = _WorkerMovesStateFirst(world)
    world.services = replace(world.services, tenants=racing)  # type: ignore[arg-type]
    return racing


async def test_a_disconnect_racing_a_finishing_migration_still_disconnects(world: FakeWorld) -> None:
    racing = await _migrating(world)

    tenant = await tenant_disconnect.begin_disconnect(world.services, CONTOSO)

    assert racing.raced
    assert tenant.state is TenantState.DISCONNECTING
    assert world.tenants.rows[CONTOSO].state is TenantState.DISCONNECTING
    assert [j.kind for j in world.jobs.take() if j.kind == "disconnect"] == ["disconnect"]


async def test_a_settings_patch_racing_a_finishing_migration_applies_to_the_fresh_row(
    world: FakeWorld,
) -> None:
    racing = await _migrating(world)

    tenant = await tenant_settings.update_settings(world.services, CONTOSO, {"privacy_mode": True})

    assert racing.raced
    stored = world.tenants.rows[CONTOSO]
    assert stored.settings.privacy_mode is True and tenant.settings.privacy_mode is True
    assert stored.state is TenantState.ACTIVE  # the worker's change is kept


async def test_consent_revoked_is_recorded_once(world: FakeWorld) -> None:
    state = await start(world)
    world.directory.organisations[CONTOSO].consented = True
    await tenant_consent.complete_consent(world.services, ok_callback(state))
    await tenants.mark_consent_revoked(world.services, CONTOSO, "403 Authorization_RequestDenied")
    await tenants.mark_consent_revoked(world.services, CONTOSO, "403 Authorization_RequestDenied")
    assert world.tenants.rows[CONTOSO].state is TenantState.CONSENT_REVOKED
    assert world.feed.types(CONTOSO).count("tenant.consent_revoked") == 1


# --- reconnecting a disconnected tenant (issue 13, item 1) ---------------------------------------


async def _disconnect(world: FakeWorld, tenant_id: str = CONTOSO) -> None:
    await tenant_disconnect.begin_disconnect(world.services, tenant_id)
    for job in world.jobs.take():
        if job.kind == "disconnect":
            await tenant_disconnect.finish_disconnect(world.services, job.tenant_id)
    assert world.tenants.rows[tenant_id].state is TenantState.DISCONNECTED


async def _connected(world: FakeWorld, tenant_id: str = CONTOSO) -> None:
    state = await start(world, tenant_id)
    world.directory.organisations[CONTOSO].consented = True
    outcome = await tenant_consent.complete_consent(world.services, ok_callback(state))
    assert outcome.result is ConsentResult.CONNECTED


async def test_disconnected_tenant_reconnects(world: FakeWorld) -> None:
    await _connected(world)
    await _disconnect(world)
    cursor = world.feed.entries[CONTOSO][-1].sequence or 0  # a host that read everything up to here

    state = await start(world)  # POST /tenants with the same body

    assert world.tenants.rows[CONTOSO].state is TenantState.PENDING_CONSENT
    outcome = await tenant_consent.complete_consent(world.services, ok_callback(state))
    assert outcome.result is ConsentResult.CONNECTED
    assert world.tenants.rows[CONTOSO].state is TenantState.CONNECTING
    assert world.users.rows == {}  # the old connection's rows went with the disconnect
    after = await world.feed.read(CONTOSO, cursor, 100)
    assert [(c.type, c.sequence) for c in after] == [("tenant.connected", cursor + 1)]
    # The disconnect deleted what came before (numbers kept): the feed holds its last change and on.
    assert [c.type for c in world.feed.entries[CONTOSO]] == ["tenant.disconnected", "tenant.connected"]
    assert [c.sequence for c in world.feed.entries[CONTOSO]] == [cursor, cursor + 1]
    with pytest.raises(ChangesPruned):
        await world.feed.read(CONTOSO, 0, 100)  # a cursor from before the disconnect: 410 at the edge


async def test_disconnected_pending_tenant_reconnects(world: FakeWorld) -> None:
    await start(world)
    await _disconnect(world)
    state = await start(world)
    assert world.tenants.rows[CONTOSO].state is TenantState.PENDING_CONSENT
    world.directory.organisations[CONTOSO].consented = True
    outcome = await tenant_consent.complete_consent(world.services, ok_callback(state))
    assert outcome.result is ConsentResult.CONNECTED


CUSTOMER_APP = {
    "tenant_id": CONTOSO,
    "display_name": "Contoso",
    "auth": {
        "mode": "customer_app",
        "client_id": "aaaaaaaa-0000-0000-0000-000000000001",
        "client_secret": "s3cret",
    },
}


async def test_disconnected_customer_app_tenant_reconnects_with_its_recovered_secret(
    world: FakeWorld,
) -> None:
    await tenant_consent.create_tenant(world.services, parse_create_tenant(CUSTOMER_APP))
    await _disconnect(world)
    name = secret_name(CONTOSO)
    assert name not in world.secrets.values and world.secrets.deleted[name] == ["s3cret"]  # soft-deleted

    connection = await tenant_consent.create_tenant(world.services, parse_create_tenant(CUSTOMER_APP))

    assert connection.tenant.state is TenantState.CONNECTING
    assert world.tenants.rows[CONTOSO].customer_app is not None
    assert world.secrets.values[name] == "s3cret"
    assert world.secrets.versions[name] == ["s3cret", "s3cret"]  # recovered, then a new version
    assert name not in world.secrets.deleted


async def test_a_tenant_still_disconnecting_answers_retry_shortly(world: FakeWorld) -> None:
    await _connected(world)
    await tenant_disconnect.begin_disconnect(world.services, CONTOSO)  # the purge job has not run yet
    with pytest.raises(Conflict) as raised:
        await start(world)
    assert "still disconnecting" in raised.value.reason
    with pytest.raises(Conflict) as reauthorizing:
        await tenant_consent.reauthorize(world.services, CONTOSO, None)
    assert "still disconnecting" in reauthorizing.value.reason
    assert world.tenants.rows[CONTOSO].state is TenantState.DISCONNECTING


async def test_reauthorize_of_a_disconnected_tenant_points_at_create(world: FakeWorld) -> None:
    await _connected(world)
    await _disconnect(world)
    with pytest.raises(Conflict) as raised:
        await tenant_consent.reauthorize(world.services, CONTOSO, None)
    assert "POST /tenants" in raised.value.reason


# --- one organisation, one tenant (issue 13, item 2) ----------------------------------------------


async def test_one_organisation_cannot_be_registered_twice(world: FakeWorld) -> None:
    await _connected(world)  # under its directory GUID
    before = dict(world.tenants.rows)

    with pytest.raises(Conflict) as raised:
        await start(world, "contoso.example")  # its verified domain

    assert raised.value.field == "tenant_id" and f"'{CONTOSO}'" in raised.value.reason
    with pytest.raises(Conflict):
        await tenant_consent.create_tenant(
            world.services, parse_create_tenant({**CUSTOMER_APP, "tenant_id": "contoso.example"})
        )
    assert world.tenants.rows == before
    assert world.secrets.values == {}


async def test_one_organisation_registered_twice_under_a_pending_tenant(world: FakeWorld) -> None:
    await start(world, "contoso.example")
    with pytest.raises(Conflict) as raised:
        await start(world, CONTOSO)
    assert "'contoso.example' (pending_consent)" in raised.value.reason


class _BothListFirst:
    """Two requests for one directory interleaved the worst way: each lists the tenants (and finds none)
    before either stores its row, as two workers would."""

    def __init__(self, world: FakeWorld) -> None:
        self._inner = world.tenants
        self._listed = 0
        self._both = asyncio.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def list(self) -> list[Tenant]:
        listed = await self._inner.list()
        self._listed += 1
        if self._listed == 2:
            self._both.set()
        await asyncio.wait_for(self._both.wait(), 5)
        return listed


async def test_two_concurrent_creates_for_one_organisation_connect_it_once(world: FakeWorld) -> None:
    world.services = replace(world.services, tenants=_BothListFirst(world))  # type: ignore[arg-type]

    outcomes = await asyncio.gather(
        start(world, CONTOSO), start(world, "contoso.example"), return_exceptions=True
    )

    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(conflicts) == 1 and all(isinstance(o, str) for o in outcomes if o not in conflicts)
    assert list(world.tenants.rows) in ([CONTOSO], ["contoso.example"])
    assert f"'{next(iter(world.tenants.rows))}'" in conflicts[0].reason


async def test_a_completed_disconnect_frees_the_organisation(world: FakeWorld) -> None:
    await _connected(world)
    await tenant_disconnect.begin_disconnect(world.services, CONTOSO)
    with pytest.raises(Conflict):  # still disconnecting: the directory is still held
        await start(world, "contoso.example")
    for job in world.jobs.take():
        if job.kind == "disconnect":
            await tenant_disconnect.finish_disconnect(world.services, job.tenant_id)

    await start(world, "contoso.example")

    assert world.tenants.rows["contoso.example"].state is TenantState.PENDING_CONSENT
    assert world.tenants.rows[CONTOSO].state is TenantState.DISCONNECTED


async def test_disconnecting_a_copy_leaves_the_other_tenants_subscriptions_and_secret(
    world: FakeWorld,
) -> None:
    """Two keys over one directory, as stored before directories were claimed."""
    await tenant_consent.create_tenant(world.services, parse_create_tenant(CUSTOMER_APP))
    original = world.tenants.rows[CONTOSO]
    subscription = GraphSubscription("sub-original", T_FAR, "users/u-adele/events")
    world.mailboxes.subscriptions[subscription.id] = ("u-adele", subscription, "client-state")
    world.mailboxes.subscription_tenants[subscription.id] = CONTOSO
    await world.subscription_index.put(
        SubscriptionRecord(subscription.id, CONTOSO, "s-adele", "u-adele", T_FAR)
    )
    copy = replace(original, tenant_id="contoso.example", etag=None)
    world.tenants.rows[copy.tenant_id] = replace(copy, etag='W/"copy"')  # no claim: an old row

    await _disconnect(world, "contoso.example")

    assert subscription.id in world.mailboxes.subscriptions
    assert await world.subscription_index.get(subscription.id) is not None
    assert world.secrets.values[secret_name(CONTOSO)] == "s3cret"
    assert world.tenants.rows[CONTOSO].state is TenantState.CONNECTING


async def test_reconnect_starts_without_rows_a_late_job_wrote_after_the_purge(world: FakeWorld) -> None:
    await _connected(world)
    await _disconnect(world)
    late = UserRecord(
        CONTOSO, StaffMember("s-late", "late@contoso.example", None, "Late"), MatchStatus.MATCHED, T_FAR
    )
    await world.users.save(late)  # a job that was running during the purge saved its user afterwards

    await start(world)

    assert await world.users.list_all(CONTOSO) == []
