"""Console links against fakes: the token's round trip, and every token that must be refused."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from shared.domain.tenants import AuthMode, secret_name
from shared.service import console, tenant_consent
from shared.service.commands import parse_create_tenant, parse_flag
from shared.service.errors import ConsoleAccessDenied, InvalidInput, NotFound
from shared.service.keys import CONSOLE_KEY
from tests.fakes.directory import FakeOrganisation
from tests.fakes.services import FakeWorld, fake_world

pytestmark = pytest.mark.unit

CONTOSO = "9188040d-6c67-4c5b-b112-36a304b66dad"
FABRIKAM = "2f0e4e64-0c1b-4bb9-9d1d-6b9f6f0d5e11"
NORTHWIND = "5b1f3c2a-7d4e-4f60-8a9b-0c1d2e3f4a5b"
APP_ID = "aaaaaaaa-0000-0000-0000-000000000001"


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    w.directory.add(FakeOrganisation(CONTOSO, {"contoso.example"}))
    w.directory.add(FakeOrganisation(FABRIKAM, {"fabrikam.example"}))
    for tid in (CONTOSO, FABRIKAM):
        body = {"tenant_id": tid, "display_name": tid, "auth": {"mode": "admin_consent"}}
        await tenant_consent.create_tenant(w.services, parse_create_tenant(body))
    return w


def token_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


async def link_token(world: FakeWorld, tenant_id: str = CONTOSO, minutes: int = 60) -> str:
    link = await console.issue_link(world.services, tenant_id, timedelta(minutes=minutes))
    return token_of(link.url)


async def refused(
    world: FakeWorld, token: str | None, tenant_id: str | None = CONTOSO
) -> ConsoleAccessDenied:
    with pytest.raises(ConsoleAccessDenied) as caught:
        await console.authorize(world.services, token, tenant_id)
    return caught.value


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".", maxsplit=1)[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


async def test_a_link_round_trips_to_its_tenant(world: FakeWorld) -> None:
    link = await console.issue_link(world.services, CONTOSO, timedelta(minutes=60))
    assert link.url.startswith("https://connector.example/api/console?token=")
    assert link.expires_at == world.clock.now() + timedelta(hours=1)
    grant = await console.authorize(world.services, token_of(link.url), CONTOSO)
    assert grant.tenant_id == CONTOSO
    assert grant.expires_at == link.expires_at
    assert set(claims_of(token_of(link.url))) == {"tid", "exp", "nonce", "kid"}


async def test_the_key_is_created_in_the_vault_on_first_use_and_never_travels(world: FakeWorld) -> None:
    assert CONSOLE_KEY not in world.secrets.values
    token = await link_token(world)
    key = world.secrets.values[CONSOLE_KEY]
    assert len(key) >= 43 and key not in token
    assert await link_token(world) != token  # a fresh nonce each time
    assert world.secrets.values[CONSOLE_KEY] == key  # one key, reused


async def test_a_link_works_until_it_expires(world: FakeWorld) -> None:
    token = await link_token(world, minutes=5)
    world.clock.advance(minutes=4, seconds=59)
    await console.authorize(world.services, token, CONTOSO)
    world.clock.advance(seconds=1)
    denied = await refused(world, token)
    assert (denied.status, denied.code) == (401, "expired_token")


async def test_a_token_for_another_tenant_is_forbidden(world: FakeWorld) -> None:
    denied = await refused(world, await link_token(world, FABRIKAM), CONTOSO)
    assert (denied.status, denied.code) == (403, "forbidden")


async def test_a_tampered_payload_is_refused(world: FakeWorld) -> None:
    payload, signature = (await link_token(world, FABRIKAM)).split(".")
    claims = claims_of(payload)
    for forged_claims in ({**claims, "tid": CONTOSO}, {**claims, "exp": claims["exp"] + 86_400}):
        forged = b64(json.dumps(forged_claims, separators=(",", ":")).encode()) + "." + signature
        denied = await refused(world, forged)
        assert (denied.status, denied.code) == (401, "invalid_token")


async def test_a_tampered_or_foreign_signature_is_refused(world: FakeWorld) -> None:
    token = await link_token(world)
    payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    other_key = console.sign_token(
        b"not the connector's key", CONTOSO, world.clock.now() + timedelta(hours=1)
    )
    for forged in (f"{payload}.{flipped}", f"{payload}.", other_key, token + "x"):
        denied = await refused(world, forged)
        assert (denied.status, denied.code) == (401, "invalid_token"), forged


@pytest.mark.parametrize("token", [None, "", "garbage", "a.b.c", "x" * 5000, ".", "é.é"])
async def test_missing_and_malformed_tokens_are_refused(world: FakeWorld, token: str | None) -> None:
    denied = await refused(world, token)
    assert denied.status == 401


async def test_a_genuine_token_with_malformed_claims_is_refused(world: FakeWorld) -> None:
    key = (await world.services.keys.signing(CONSOLE_KEY)).secret
    for claims in ([1, 2], {"tid": CONTOSO}, {"tid": CONTOSO, "exp": "tomorrow"}, {"tid": 7, "exp": 1}):
        payload = b64(json.dumps(claims).encode())
        token = f"{payload}.{console._mac(key, payload)}"
        denied = await refused(world, token)
        assert denied.code == "invalid_token"


async def test_links_only_for_known_tenants(world: FakeWorld) -> None:
    with pytest.raises(NotFound):
        await console.issue_link(world.services, "nobody.example", timedelta(hours=1))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ttl_minutes": 0}, "ttl_minutes"),
        ({"ttl_minutes": 4}, "ttl_minutes"),
        ({"ttl_minutes": 1441}, "ttl_minutes"),
        ({"ttl_minutes": "60"}, "ttl_minutes"),
        ({"ttl_minutes": True}, "ttl_minutes"),
        ({"ttl_minutes": 1.5}, "ttl_minutes"),
        ({"ttl": 60}, "ttl"),
    ],
)
def test_bad_lifetimes_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        console.parse_ttl(body)
    assert caught.value.field == field


def test_lifetime_defaults_to_an_hour() -> None:
    assert console.parse_ttl({}) == timedelta(hours=1)
    assert console.parse_ttl({"ttl_minutes": 1440}) == timedelta(days=1)


def test_only_failed_must_be_a_boolean() -> None:
    assert parse_flag({}, "only_failed") is False
    assert parse_flag({"only_failed": True}, "only_failed") is True
    with pytest.raises(InvalidInput) as caught:
        parse_flag({"only_failed": "yes"}, "only_failed")
    assert caught.value.field == "only_failed"


async def test_reauthorize_by_admin_consent_answers_a_new_consent_link(world: FakeWorld) -> None:
    connection = await console.reauthorize(world.services, CONTOSO, {})
    assert connection.consent_url is not None and "/adminconsent?" in connection.consent_url


async def test_reauthorize_a_customer_app_with_only_a_new_secret(world: FakeWorld) -> None:
    org = world.directory.add(FakeOrganisation(NORTHWIND, {"northwind.example"}, apps={APP_ID: "first"}))
    body = {
        "tenant_id": "northwind.example",
        "display_name": "Northwind",
        "auth": {"mode": "customer_app", "client_id": APP_ID, "client_secret": "first"},
    }
    await tenant_consent.create_tenant(world.services, parse_create_tenant(body))
    with pytest.raises(InvalidInput) as missing:
        await console.reauthorize(world.services, "northwind.example", {})
    assert missing.value.field == "client_secret"
    org.apps[APP_ID] = "second"
    with pytest.raises(InvalidInput) as wrong:
        await console.reauthorize(world.services, "northwind.example", {"client_secret": "first"})
    assert (wrong.value.field, wrong.value.status) == ("client_secret", 422)
    assert world.secrets.values[secret_name(NORTHWIND)] == "first"  # a refused secret changes nothing
    connection = await console.reauthorize(world.services, "northwind.example", {"client_secret": "second"})
    assert connection.tenant.auth_mode is AuthMode.CUSTOMER_APP
    assert connection.tenant.customer_app is not None and connection.tenant.customer_app.client_id == APP_ID
    assert world.secrets.values[secret_name(NORTHWIND)] == "second"
    stored = await world.secrets.current(secret_name(NORTHWIND))
    assert stored is not None  # the row names the new version: every worker's credential cache key
    assert connection.tenant.customer_app.secret_version == stored.version
    assert world.tenants.rows["northwind.example"].customer_app == connection.tenant.customer_app


async def test_reauthorize_names_a_bad_expiry(world: FakeWorld) -> None:
    with pytest.raises(InvalidInput) as caught:
        await console.reauthorize(
            world.services,
            CONTOSO,
            {"client_id": APP_ID, "client_secret": "s", "client_secret_expires_at": "x"},
        )
    assert caught.value.field == "client_secret_expires_at"


async def test_overview_counts_dead_deliveries(world: FakeWorld) -> None:
    view = await console.overview(world.services, CONTOSO)
    assert view.tenant.tenant_id == CONTOSO
    assert view.progress.phase == "waiting_for_consent"
    assert view.dead_deliveries == 0
