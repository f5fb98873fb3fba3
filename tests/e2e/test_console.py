"""The admin console end to end: links from the host API, the page, and its token-checked JSON API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential
from azure.keyvault.secrets.aio import SecretClient

from shared.service.console import sign_token
from shared.service.keys import CONSOLE_KEY
from tests.e2e.test_tenants import consent, create, new_organisation
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e

STAFF = {"s-adele": "adele", "s-ben": "ben", "s-dan": "dan"}


async def connected_organisation(connector: Connector) -> dict[str, Any]:
    """A new organisation connected by admin consent, with three staff members (two matched)."""
    org = await new_organisation(connector)
    tenant = create(connector, org, display_name=f"Org {org['domain']}")
    assert tenant.status_code == 201, tenant.text
    assert consent(connector, tenant.json()["consent_url"]).status_code == 200
    with connector.api() as api:
        for staff_id, user in STAFF.items():
            body = {"upn": f"{user}@{org['domain']}", "display_name": user.capitalize()}
            assert api.put(f"/api/v1/tenants/{org['domain']}/staff/{staff_id}", json=body).status_code == 200
    return org


def console_link(connector: Connector, tenant_id: str, **body: Any) -> dict[str, Any]:
    with connector.api() as api:
        answer = api.post(f"/api/v1/tenants/{tenant_id}/console-links", json=body or None)
    assert answer.status_code == 201, answer.text
    link: dict[str, Any] = answer.json()
    return link


def token_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


def console_client(connector: Connector, token: str | None) -> httpx.Client:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=f"{connector.url}/api/console/tenants", headers=headers, timeout=30)


async def vault_secret(connector: Connector, name: str) -> str | None:
    """A secret as the connector's own Key Vault holds it (read with the platform identity)."""
    emulator = connector.emulator
    credential = ClientSecretCredential(
        emulator.platform_tenant_id,
        emulator.platform_client_id,
        emulator.platform_client_secret,
        authority=emulator.authority,
        disable_instance_discovery=True,
        connection_verify=emulator.ca_file,
    )
    client = SecretClient(
        emulator.keyvault, credential, verify_challenge_resource=False, connection_verify=emulator.ca_file
    )
    try:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return (await client.get_secret(name)).value
        except ResourceNotFoundError:
            return None
    finally:
        await client.close()
        await credential.close()


async def test_a_console_link_opens_the_console_of_its_tenant(connector: Connector) -> None:
    org = await connected_organisation(connector)
    before = datetime.now(UTC)
    link = console_link(connector, org["domain"])
    assert link["url"].startswith(f"{connector.url}/api/console?token=")
    expires = datetime.fromisoformat(link["expires_at"])
    assert timedelta(minutes=59) < expires - before <= timedelta(minutes=61)
    longer = console_link(connector, org["domain"], ttl_minutes=240)
    assert datetime.fromisoformat(longer["expires_at"]) - before > timedelta(hours=3, minutes=59)
    with httpx.Client(timeout=30) as browser:
        page = browser.get(link["url"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'sha256-" in page.headers["content-security-policy"]
    assert f'data-tenant="{org["domain"]}"' in page.text
    assert "Resync all users" in page.text and "Migration" in page.text


@pytest.mark.parametrize(
    ("body", "field"),
    [({"ttl_minutes": 0}, "ttl_minutes"), ({"ttl_minutes": "soon"}, "ttl_minutes"), ({"ttl": 5}, "ttl")],
)
async def test_console_links_name_a_bad_field(connector: Connector, body: dict[str, Any], field: str) -> None:
    org = await new_organisation(connector)
    assert create(connector, org).status_code == 201
    with connector.api() as api:
        bad = api.post(f"/api/v1/tenants/{org['domain']}/console-links", json=body)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == field


def test_console_links_need_a_key_and_a_known_tenant(connector: Connector) -> None:
    with connector.api() as api:
        assert api.post("/api/v1/tenants/nobody.example/console-links").status_code == 404
    with httpx.Client(base_url=connector.url) as anonymous:
        assert anonymous.post("/api/v1/tenants/nobody.example/console-links").status_code == 401


async def test_expired_forged_and_missing_links_get_the_refusal_page(connector: Connector) -> None:
    org = await connected_organisation(connector)
    good = token_of(console_link(connector, org["domain"])["url"])
    key = await vault_secret(connector, CONSOLE_KEY)
    assert key is not None
    expired = sign_token(key.encode(), org["domain"], datetime.now(UTC) - timedelta(seconds=1))
    payload, signature = good.split(".")
    forged = f"{payload}.{signature[::-1]}"
    foreign = sign_token(
        b"a key the connector never had", org["domain"], datetime.now(UTC) + timedelta(hours=1)
    )
    with httpx.Client(base_url=connector.url, timeout=30) as browser:
        pages = {
            "expired": browser.get("/api/console", params={"token": expired}),
            "forged": browser.get("/api/console", params={"token": forged}),
            "foreign": browser.get("/api/console", params={"token": foreign}),
            "missing": browser.get("/api/console"),
        }
    for name, page in pages.items():
        assert page.status_code == 401, name
        assert page.headers["content-type"].startswith("text/html"), name
        assert "ask its administrator, for a new console link" in " ".join(page.text.split()), name
        assert org["domain"] not in page.text, name
    assert "has expired" in pages["expired"].text
    assert "not valid" in pages["forged"].text
    with console_client(connector, expired) as api:
        answer = api.get(f"/{org['domain']}")
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "expired_token"
        assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_the_console_api_serves_and_changes_its_own_tenant(connector: Connector) -> None:
    org = await connected_organisation(connector)
    tid = org["domain"]
    token = token_of(console_link(connector, tid)["url"])
    with console_client(connector, token) as api:
        tenant = api.get(f"/{tid}")
        assert tenant.status_code == 200, tenant.text
        body = tenant.json()
        assert body["tenant_id"] == tid and body["state"] in ("connecting", "migrating", "active")
        assert body["progress"]["by_match"]["matched"] == 2
        assert body["dead_deliveries"] == 0
        assert tenant.headers["cache-control"] == "no-store"

        users = api.get(f"/{tid}/users", params={"match": "matched", "sort": "-email", "page_size": 1}).json()
        assert users["total"] == 2 and [u["staff_id"] for u in users["value"]] == ["s-ben"]
        rest = api.get(
            f"/{tid}/users", params={"match": "matched", "sort": "-email", "cursor": users["next_cursor"]}
        )
        assert [u["staff_id"] for u in rest.json()["value"]] == ["s-adele"]
        assert api.get(f"/{tid}/users", params={"q": "ADE"}).json()["total"] == 1
        assert api.get(f"/{tid}/users", params={"state": "nope"}).json()["error"]["field"] == "state"

        patched = api.patch(f"/{tid}/settings", json={"window_days_back": 10, "privacy_mode": True})
        assert patched.status_code == 200, patched.text
        bad = api.patch(f"/{tid}/settings", json={"window_days_back": -1})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "settings.window_days_back"

        assert api.post(f"/{tid}/rematch").status_code == 202
        resync = api.post(f"/{tid}/resync", json={"only_failed": False})
        assert resync.status_code == 202 and resync.json()["users"] == 2
        assert (
            api.post(f"/{tid}/resync", json={"only_failed": "yes"}).json()["error"]["field"] == "only_failed"
        )
        one = api.post(f"/{tid}/users/s-adele/resync")
        assert one.status_code == 202 and one.json()["staff_id"] == "s-adele"
        assert api.post(f"/{tid}/users/s-dan/resync").status_code == 409  # disabled in Entra: not matched
        assert api.post(f"/{tid}/users/s-nobody/resync").status_code == 404

        reauthorized = api.post(f"/{tid}/reauthorize", json={})
        assert reauthorized.status_code == 200 and "/adminconsent?" in reauthorized.json()["consent_url"]
        assert (
            api.post(f"/{tid}/reauthorize", json={"client_secret": "x"}).json()["error"]["field"]
            == "client_id"
        )
    with connector.api() as host:
        settings = host.get(f"/api/v1/tenants/{tid}").json()["settings"]
    assert settings["window_days_back"] == 10 and settings["privacy_mode"] is True

    with console_client(connector, None) as anonymous:
        assert anonymous.get(f"/{tid}").status_code == 401
        assert anonymous.get(f"/{tid}", params={"token": token}).status_code == 401  # only as a bearer
    with console_client(connector, token) as api:
        assert api.delete(f"/{tid}").status_code == 202
        assert api.get(f"/{tid}").json()["state"] in ("disconnecting", "disconnected")


async def test_a_token_for_one_tenant_cannot_read_or_change_another(connector: Connector) -> None:
    a, b = await connected_organisation(connector), await connected_organisation(connector)
    token_a = token_of(console_link(connector, a["domain"])["url"])
    tid = b["domain"]
    with connector.api() as host:
        before = host.get(f"/api/v1/tenants/{tid}").json()
    attempts = [
        ("GET", f"/{tid}", None),
        ("GET", f"/{tid}/users", None),
        ("PATCH", f"/{tid}/settings", {"window_days_back": 1}),
        ("POST", f"/{tid}/rematch", None),
        ("POST", f"/{tid}/resync", {"only_failed": False}),
        ("POST", f"/{tid}/users/s-adele/resync", None),
        ("POST", f"/{tid}/reauthorize", {}),
        ("DELETE", f"/{tid}", None),
        ("GET", f"/{tid.upper()}", None),
    ]
    with console_client(connector, token_a) as api:
        for method, path, body in attempts:
            answer = api.request(method, path, json=body)
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.json()["error"]["code"] == "forbidden"
            assert tid not in answer.text
        assert api.get(f"/{a['domain']}").status_code == 200  # the same token, on its own tenant
    with connector.api() as host:
        after = host.get(f"/api/v1/tenants/{tid}").json()
        changes = [c["type"] for c in host.get(f"/api/v1/tenants/{tid}/changes").json()["value"]]
    # B's own background work (discovery, migration) may move it on; nothing A's token asked for happened.
    assert after["state"] not in ("disconnecting", "disconnected")
    assert after["settings"] == before["settings"]
    assert "tenant.disconnected" not in changes
