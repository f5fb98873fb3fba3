"""Tenants and users end to end: the local host running the real function app, the emulator, Azurite."""

from __future__ import annotations

import re
import ssl
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e


async def new_organisation(connector: Connector, policy: str = "auto-accept") -> dict[str, Any]:
    """A customer organisation of its own: a few directory users of every kind."""
    domain = f"org{uuid.uuid4().hex[:8]}.example"
    async with connector.control() as control:
        tenant = await control.create_tenant(f"Org {domain}", [domain], consent_policy=policy)
        tid = tenant["id"]
        users = {
            "adele": await control.create_user(
                tid, f"adele@{domain}", display_name="Adele Vance", mail=f"adele@{domain}"
            ),
            "ben": await control.create_user(
                tid, f"ben@{domain}", display_name="Ben Smith", mail=f"ben.smith@{domain}"
            ),
            "cara": await control.create_user(
                tid,
                f"cara@{domain}",
                display_name="Cara",
                proxy_addresses=[f"SMTP:cara@{domain}", "smtp:cara@old.example"],
            ),
            "dan": await control.create_user(tid, f"dan@{domain}", display_name="Dan", account_enabled=False),
            "eve": await control.create_user(tid, f"eve@{domain}", display_name="Eve", mailbox_enabled=False),
        }
    return {"id": tid, "domain": domain, "users": users}


async def own_app(connector: Connector, org: dict[str, Any], secret: str, name: str = "Own app") -> Any:
    """The organisation's own app registration, consented, with `secret`."""
    async with connector.control() as control:
        return await control.create_app(
            name,
            org["id"],
            permissions=["Calendars.ReadWrite", "User.Read.All"],
            secrets=[{"value": secret}],
            consent=True,
        )


def consent(connector: Connector, consent_url: str) -> httpx.Response:
    """Follow the consent URL as the admin's browser would: Entra, then the connector's callback."""
    trust = ssl.create_default_context(cafile=connector.emulator.ca_file)
    with httpx.Client(verify=trust, follow_redirects=True, timeout=30) as browser:
        return browser.get(consent_url)


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.2)


def create(connector: Connector, org: dict[str, Any], **extra: Any) -> httpx.Response:
    body = {"tenant_id": org["domain"], "display_name": "Org", "auth": {"mode": "admin_consent"}, **extra}
    with connector.api() as api:
        return api.post("/api/v1/tenants", json=body)


async def test_admin_consent_connects_and_matches_staff(connector: Connector) -> None:
    org = await new_organisation(connector)
    with connector.api() as api:
        for staff_id, body in {
            "s-adele": {"upn": f"adele@{org['domain']}"},
            "s-ben": {"email": f"ben.smith@{org['domain']}"},
            "s-cara": {"email": "cara@old.example"},
            "s-dan": {"email": f"dan@{org['domain']}"},
            "s-eve": {"email": f"eve@{org['domain']}"},
            "s-zed": {"email": f"zed@{org['domain']}"},
        }.items():
            assert api.put(f"/api/v1/tenants/{org['domain']}/staff/{staff_id}", json=body).status_code == 404
    created = create(connector, org)
    assert created.status_code == 201, created.text
    tenant = created.json()
    assert tenant["state"] == "pending_consent"
    assert tenant["directory_id"] == org["id"]
    page = consent(connector, tenant["consent_url"])
    assert page.status_code == 200 and "Connected" in page.text
    with connector.api() as api:
        staff = {
            "s-adele": ({"upn": f"ADELE@{org['domain']}"}, "matched"),
            "s-ben": ({"email": f"ben.smith@{org['domain']}"}, "matched"),
            "s-cara": ({"email": "cara@old.example"}, "matched"),
            "s-dan": ({"email": f"dan@{org['domain']}"}, "disabled"),
            "s-eve": ({"email": f"eve@{org['domain']}"}, "no_mailbox"),
            "s-zed": ({"email": f"zed@{org['domain']}"}, "unmatched"),
        }
        for staff_id, (body, expected) in staff.items():
            answer = api.put(f"/api/v1/tenants/{org['domain']}/staff/{staff_id}", json=body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["match"] == expected, (staff_id, answer.json())
        state = api.get(f"/api/v1/tenants/{org['domain']}").json()
        assert state["state"] in ("connecting", "migrating")
        users = api.get(
            f"/api/v1/tenants/{org['domain']}/users", params={"match": "matched", "sort": "email"}
        ).json()
        assert users["total"] == 3
        assert {u["staff_id"] for u in users["value"]} == {"s-adele", "s-ben", "s-cara"}
        feed = api.get(f"/api/v1/tenants/{org['domain']}/changes").json()
        assert "tenant.connected" in [c["type"] for c in feed["value"]]


async def test_rematch_after_upn_change(connector: Connector) -> None:
    org = await new_organisation(connector)
    tenant = create(connector, org).json()
    consent(connector, tenant["consent_url"])
    path = f"/api/v1/tenants/{org['domain']}/staff/s1"
    with connector.api() as api:
        first = api.put(path, json={"upn": f"adele@{org['domain']}"}).json()
        assert first["graph_user_id"] == org["users"]["adele"]["id"]
        moved = api.put(path, json={"upn": f"ben@{org['domain']}"}).json()
        assert moved["graph_user_id"] == org["users"]["ben"]["id"] and moved["match"] == "matched"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("auto-decline", "declined")],
)
async def test_declined_consent_changes_nothing_but_the_reason(
    connector: Connector, policy: str, expected: str
) -> None:
    org = await new_organisation(connector, policy)
    tenant = create(connector, org).json()
    page = consent(connector, tenant["consent_url"])
    assert page.status_code == 400 and "declined" in page.text
    with connector.api() as api:
        state = api.get(f"/api/v1/tenants/{org['domain']}").json()
    assert state["state"] == "pending_consent"
    assert "declined" in state["last_error"]


async def test_replayed_and_forged_states_are_refused(connector: Connector) -> None:
    org = await new_organisation(connector)
    tenant = create(connector, org).json()
    assert consent(connector, tenant["consent_url"]).status_code == 200
    state = parse_qs(urlparse(tenant["consent_url"]).query)["state"][0]
    with httpx.Client(base_url=connector.url) as browser:
        replay = browser.get(
            "/api/consent/callback", params={"state": state, "tenant": org["id"], "admin_consent": "True"}
        )
        forged = browser.get(
            "/api/consent/callback", params={"state": "x" * 43, "tenant": org["id"], "admin_consent": "True"}
        )
        missing = browser.get("/api/consent/callback")
    for page in (replay, forged, missing):
        assert page.status_code == 400 and "not valid" in page.text


async def test_consent_for_another_tenant_is_refused(connector: Connector) -> None:
    org = await new_organisation(connector)
    tenant = create(connector, org).json()
    state = parse_qs(urlparse(tenant["consent_url"]).query)["state"][0]
    with httpx.Client(base_url=connector.url) as browser:
        page = browser.get(
            "/api/consent/callback",
            params={"state": state, "tenant": str(uuid.uuid4()), "admin_consent": "True"},
        )
    assert page.status_code == 400 and "different organisation" in page.text
    with connector.api() as api:
        assert api.get(f"/api/v1/tenants/{org['domain']}").json()["state"] == "pending_consent"


async def test_customer_app_mode_and_a_wrong_secret(connector: Connector) -> None:
    org = await new_organisation(connector)
    app = await own_app(connector, org, "customer-secret-value-1", "Customer's own app")
    base = {"tenant_id": org["id"], "display_name": "Org"}
    with connector.api() as api:
        wrong = api.post(
            "/api/v1/tenants",
            json={
                **base,
                "auth": {"mode": "customer_app", "client_id": app["client_id"], "client_secret": "nope"},
            },
        )
        assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "auth.client_secret"
        assert api.get(f"/api/v1/tenants/{org['id']}").status_code == 404
        ok = api.post(
            "/api/v1/tenants",
            json={
                **base,
                "auth": {
                    "mode": "customer_app",
                    "client_id": app["client_id"],
                    "client_secret": "customer-secret-value-1",
                },
            },
        )
        assert ok.status_code == 201, ok.text
        assert ok.json()["state"] == "connecting"
        assert "customer-secret-value-1" not in ok.text
        matched = api.put(
            f"/api/v1/tenants/{org['id']}/staff/s1", json={"upn": f"adele@{org['domain']}"}
        ).json()
        assert matched["match"] == "matched"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tenant_id": "not a tenant", "display_name": "X", "auth": {"mode": "admin_consent"}}, "tenant_id"),
        (
            {"tenant_id": "unknown-org.example", "display_name": "X", "auth": {"mode": "admin_consent"}},
            "tenant_id",
        ),
        ({"tenant_id": "contoso.example", "auth": {"mode": "admin_consent"}}, "display_name"),
        ({"tenant_id": "contoso.example", "display_name": "X", "auth": {"mode": "password"}}, "auth.mode"),
        (
            {
                "tenant_id": "contoso.example",
                "display_name": "X",
                "auth": {"mode": "admin_consent"},
                "settings": {"privacy_mode": "yes"},
            },
            "settings.privacy_mode",
        ),
    ],
)
def test_bad_input_names_the_field(connector: Connector, body: dict[str, Any], field: str) -> None:
    with connector.api() as api:
        answer = api.post("/api/v1/tenants", json=body)
        assert 400 <= answer.status_code < 500
        assert answer.json()["error"]["field"] == field
        malformed = api.post(
            "/api/v1/tenants", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert malformed.status_code == 400 and malformed.json()["error"]["field"] == "body"


def test_function_key_is_required(connector: Connector) -> None:
    with httpx.Client(base_url=connector.url) as anonymous:
        assert anonymous.get("/api/v1/tenants").status_code == 401
        assert anonymous.get("/api/health").status_code == 200


async def test_disconnect_purges_state_and_secrets(connector: Connector) -> None:
    org = await new_organisation(connector)
    app = await own_app(connector, org, "own-secret-to-purge")
    with connector.api() as api:
        api.post(
            "/api/v1/tenants",
            json={
                "tenant_id": org["id"],
                "display_name": "Org",
                "auth": {
                    "mode": "customer_app",
                    "client_id": app["client_id"],
                    "client_secret": "own-secret-to-purge",
                },
            },
        )
        api.put(f"/api/v1/tenants/{org['id']}/staff/s1", json={"upn": f"adele@{org['domain']}"})
        assert api.delete(f"/api/v1/tenants/{org['id']}").status_code == 202
        wait_for(lambda: api.get(f"/api/v1/tenants/{org['id']}").json()["state"] == "disconnected")
        assert api.get(f"/api/v1/tenants/{org['id']}/users").json()["total"] == 0
        assert api.delete(f"/api/v1/tenants/{org['id']}").status_code == 202  # idempotent


def _feed(api: Any, tid: str, cursor: int = 0) -> list[dict[str, Any]]:
    answer = api.get(f"/api/v1/tenants/{tid}/changes", params={"cursor": cursor, "limit": 1000})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["value"])


async def test_disconnected_tenant_reconnects(connector: Connector) -> None:
    org = await new_organisation(connector)
    tid = org["domain"]
    first = create(connector, org)
    assert first.status_code == 201, first.text
    assert "Connected" in consent(connector, first.json()["consent_url"]).text
    with connector.api() as api:
        staff = f"/api/v1/tenants/{tid}/staff/s-adele"
        assert api.put(staff, json={"upn": f"adele@{org['domain']}"}).json()["match"] == "matched"
        assert api.delete(f"/api/v1/tenants/{tid}").status_code == 202
        wait_for(lambda: api.get(f"/api/v1/tenants/{tid}").json()["state"] == "disconnected", 60)
        # The disconnect deleted the feed's changes but not their numbers: a host that had not read them
        # hears so (410, naming the cursor to go on from) rather than missing them silently.
        gone = api.get(f"/api/v1/tenants/{tid}/changes", params={"cursor": 0})
        assert gone.status_code == 410, gone.text
        assert gone.json()["error"]["field"] == "cursor" and "Resync" in gone.json()["error"]["message"]
        go_on = int(re.findall(r"cursor (\d+)", gone.json()["error"]["message"])[-1])
        assert go_on > 0
        page = api.get(f"/api/v1/tenants/{tid}/changes", params={"cursor": go_on}).json()
        assert page["retention_days"] == 30
        before = page["value"]
        cursor = int(before[-1]["sequence"])  # a host that kept its cursor
        assert [c["type"] for c in before] == ["tenant.disconnected"]
        refused = api.post(f"/api/v1/tenants/{tid}/reauthorize")
        assert refused.status_code == 409 and "POST /tenants" in refused.json()["error"]["message"]

    again = create(connector, org)  # the same body as the first time

    assert again.status_code == 201, again.text
    assert again.json()["state"] == "pending_consent" and again.json()["consent_url"]
    assert "Connected" in consent(connector, again.json()["consent_url"]).text
    with connector.api() as api:
        assert api.get(f"/api/v1/tenants/{tid}/users").json()["total"] == 0  # the old rows were purged
        assert api.put(staff, json={"upn": f"adele@{org['domain']}"}).json()["match"] == "matched"
        wait_for(lambda: api.get(f"/api/v1/tenants/{tid}").json()["state"] in ("active", "degraded"), 60)
        after = _feed(api, tid, cursor)
        assert after and after[0]["type"] == "tenant.connected"
        assert [int(c["sequence"]) for c in after] == list(range(cursor + 1, cursor + 1 + len(after)))


async def test_disconnected_customer_app_tenant_reconnects_with_its_recovered_secret(
    connector: Connector,
) -> None:
    org = await new_organisation(connector)
    app = await own_app(connector, org, "own-secret-kept-by-the-vault")
    body = {
        "tenant_id": org["id"],
        "display_name": "Org",
        "auth": {
            "mode": "customer_app",
            "client_id": app["client_id"],
            "client_secret": "own-secret-kept-by-the-vault",
        },
    }
    with connector.api() as api:
        assert api.post("/api/v1/tenants", json=body).status_code == 201
        assert api.delete(f"/api/v1/tenants/{org['id']}").status_code == 202
        wait_for(lambda: api.get(f"/api/v1/tenants/{org['id']}").json()["state"] == "disconnected", 60)

        again = api.post("/api/v1/tenants", json=body)  # Key Vault holds the name soft-deleted: recovered

        assert again.status_code == 201, again.text
        assert again.json()["state"] == "connecting"
        matched = api.put(f"/api/v1/tenants/{org['id']}/staff/s1", json={"upn": f"adele@{org['domain']}"})
        assert matched.json()["match"] == "matched"  # the connector signs in with the secret it wrote


async def test_one_organisation_cannot_be_registered_twice(connector: Connector) -> None:
    org = await new_organisation(connector)
    with connector.api() as api:
        by_guid = {"tenant_id": org["id"], "display_name": "Org", "auth": {"mode": "admin_consent"}}
        assert api.post("/api/v1/tenants", json=by_guid).status_code == 201

        by_domain = create(connector, org)  # its verified domain: the same directory

        assert by_domain.status_code == 409, by_domain.text
        error = by_domain.json()["error"]
        assert error["field"] == "tenant_id" and f"'{org['id']}'" in error["message"]
        assert api.get(f"/api/v1/tenants/{org['domain']}").status_code == 404
        assert api.delete(f"/api/v1/tenants/{org['id']}").status_code == 202
        wait_for(lambda: api.get(f"/api/v1/tenants/{org['id']}").json()["state"] == "disconnected", 60)
    assert create(connector, org).status_code == 201  # a completed disconnect frees the organisation
