"""Entra ID through azure-identity's ClientSecretCredential, and the admin consent flow over raw HTTP."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from m365emulator.directory import GRAPH_PERMISSIONS
from tests.contract.emulator.conftest import credential, graph_client, raw_token, unique

pytestmark = pytest.mark.contract

REDIRECT = "http://127.0.0.1:7071/api/consent/callback"


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def new_customer(control, policy: str = "page") -> dict:
    name = unique("cust")
    return await control.create_tenant(name, [f"{name}.example"], consent_policy=policy)


async def new_connector_app(control, emulator, **extra) -> dict:
    return await control.create_app(
        unique("connector"),
        emulator.platform_tenant_id,
        multi_tenant=True,
        redirect_uris=[REDIRECT],
        permissions=list(GRAPH_PERMISSIONS),
        **extra,
    )


async def test_token_for_a_consented_app_carries_tenant_app_and_roles(connector):
    payload = claims(connector.token)
    assert payload["tid"] == connector.tenant_id
    assert payload["appid"] == connector.emulator.client_id
    assert payload["aud"] == "https://graph.microsoft.com"
    assert set(payload["roles"]) == set(GRAPH_PERMISSIONS)
    assert payload["exp"] - payload["iat"] == 3599


async def test_tenant_can_be_named_by_its_verified_domain(connector):
    emulator = connector.emulator
    token = await raw_token(emulator, "contoso.example", emulator.client_id, emulator.client_secret)
    assert claims(token)["tid"] == emulator.tenant_id


async def test_wrong_secret_is_aadsts7000215(emulator_reset):
    emulator = emulator_reset
    cred = credential(emulator, emulator.tenant_id, emulator.client_id, "not-the-secret")
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        await cred.get_token("https://graph.microsoft.com/.default")
    await cred.close()


async def test_unknown_app_is_aadsts700016(emulator_reset):
    emulator = emulator_reset
    cred = credential(emulator, emulator.tenant_id, "00000000-0000-0000-0000-000000000001", "x")
    with pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        await cred.get_token("https://graph.microsoft.com/.default")
    await cred.close()


async def test_unknown_tenant_fails_discovery_and_token(emulator_reset):
    emulator = emulator_reset
    cred = credential(
        emulator, "11111111-2222-3333-4444-555555555555", emulator.client_id, emulator.client_secret
    )
    with pytest.raises((ClientAuthenticationError, ValueError)):
        await cred.get_token("https://graph.microsoft.com/.default")
    await cred.close()
    async with httpx.AsyncClient(verify=emulator.ssl_context()) as http:
        response = await http.post(
            f"{emulator.authority}/nowhere.example/oauth2/v2.0/token",
            data={"grant_type": "client_credentials", "client_id": emulator.client_id, "client_secret": "x"},
        )
    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]


async def test_expired_secret_is_aadsts7000222(control, emulator_reset):
    emulator = emulator_reset
    tenant = await new_customer(control)
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    app = await control.create_app(
        unique("own-app"),
        tenant["id"],
        permissions=["Calendars.ReadWrite"],
        secrets=[{"end_date_time": past}],
    )
    cred = credential(emulator, tenant["id"], app["client_id"], app["secrets"][0]["value"])
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000222"):
        await cred.get_token("https://graph.microsoft.com/.default")
    await cred.close()


async def test_customer_owned_app_works_at_home_only(control, emulator_reset):
    emulator = emulator_reset
    tenant = await new_customer(control)
    future = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    app = await control.create_app(
        unique("own-app"),
        tenant["id"],
        permissions=["User.Read.All"],
        secrets=[{"end_date_time": future}],
        consent=True,
    )
    secret = app["secrets"][0]["value"]
    token = await raw_token(emulator, tenant["id"], app["client_id"], secret)
    assert claims(token)["roles"] == ["User.Read.All"]
    cred = credential(emulator, emulator.tenant_id, app["client_id"], secret)
    with pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        await cred.get_token("https://graph.microsoft.com/.default")
    await cred.close()


async def test_secret_expiry_follows_the_emulator_clock(control, emulator_reset):
    emulator = emulator_reset
    tenant = await new_customer(control)
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    app = await control.create_app(
        unique("own"), tenant["id"], secrets=[{"end_date_time": soon}], consent=True
    )
    secret = app["secrets"][0]["value"]
    assert await raw_token(emulator, tenant["id"], app["client_id"], secret)
    await control.advance_clock(hours=3)
    cred = credential(emulator, tenant["id"], app["client_id"], secret)
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000222"):
        await cred.get_token("https://graph.microsoft.com/.default")
    await cred.close()


async def test_without_consent_the_token_has_no_roles_and_graph_answers_403(control, emulator_reset):
    emulator = emulator_reset
    tenant = await new_customer(control)
    app = await new_connector_app(control, emulator)
    await control.create_user(tenant["id"], f"someone@{tenant['domains'][0]}")
    secret = app["secrets"][0]["value"]
    token = await raw_token(emulator, tenant["id"], app["client_id"], secret)
    assert "roles" not in claims(token)
    cred = credential(emulator, tenant["id"], app["client_id"], secret)
    graph = graph_client(emulator, cred)
    with pytest.raises(ODataError) as err:
        await graph.users.get()
    assert err.value.response_status_code == 403
    assert err.value.error.code == "Authorization_RequestDenied"
    with pytest.raises(ODataError) as err:
        await graph.users.by_user_id(f"someone@{tenant['domains'][0]}").todo.lists.get()
    assert err.value.error.code == "ErrorAccessDenied"
    await cred.close()


async def test_discovery_documents(emulator_reset):
    emulator = emulator_reset
    async with httpx.AsyncClient(verify=emulator.ssl_context()) as http:
        doc = (
            await http.get(f"{emulator.authority}/contoso.example/v2.0/.well-known/openid-configuration")
        ).json()
        assert doc["token_endpoint"] == f"{emulator.authority}/{emulator.tenant_id}/oauth2/v2.0/token"
        assert doc["authorization_endpoint"].endswith("/oauth2/v2.0/authorize")
        missing = await http.get(
            f"{emulator.authority}/nowhere.example/v2.0/.well-known/openid-configuration"
        )
        assert missing.status_code == 400
        instance = await http.get(
            f"{emulator.authority}/common/discovery/instance",
            params={
                "api-version": "1.1",
                "authorization_endpoint": f"https://localhost/{emulator.tenant_id}/oauth2",
            },
        )
        assert instance.json()["tenant_discovery_endpoint"].endswith(
            f"/{emulator.tenant_id}/v2.0/.well-known/openid-configuration"
        )


# --- admin consent ------------------------------------------------------------------------------


def location(response: httpx.Response) -> tuple[str, dict[str, list[str]]]:
    assert response.status_code == 302, response.text
    parts = urlsplit(response.headers["Location"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query)


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_consent_page_accept_grants_and_redirects_with_tenant_and_state(
    control, emulator_reset, version
):
    emulator = emulator_reset
    tenant = await new_customer(control)
    app = await new_connector_app(control, emulator)
    path = "/v2.0/adminconsent" if version == "v2" else "/adminconsent"
    params = {"client_id": app["client_id"], "redirect_uri": REDIRECT, "state": "st-123"}
    if version == "v2":
        params["scope"] = "https://graph.microsoft.com/.default"
    async with httpx.AsyncClient(verify=emulator.ssl_context()) as http:
        page = await http.get(f"{emulator.authority}/{tenant['domains'][0]}{path}", params=params)
        assert page.status_code == 200
        assert "id=accept" in page.text and "id=cancel" in page.text
        form = dict(params, action="accept")
        accepted = await http.post(f"{emulator.authority}/{tenant['domains'][0]}{path}", data=form)
    target, query = location(accepted)
    assert target == REDIRECT
    assert query["admin_consent"] == ["True"]
    assert query["tenant"] == [tenant["id"]]
    assert query["state"] == ["st-123"]
    assert "https://graph.microsoft.com/Calendars.ReadWrite" in query["scope"][0].split(" ")
    token = await raw_token(emulator, tenant["id"], app["client_id"], app["secrets"][0]["value"])
    assert set(claims(token)["roles"]) == set(GRAPH_PERMISSIONS)


async def test_consent_page_cancel_redirects_with_access_denied_and_no_tenant(control, emulator_reset):
    emulator = emulator_reset
    tenant = await new_customer(control)
    app = await new_connector_app(control, emulator)
    form = {"client_id": app["client_id"], "redirect_uri": REDIRECT, "state": "s1", "action": "cancel"}
    async with httpx.AsyncClient(verify=emulator.ssl_context()) as http:
        response = await http.post(f"{emulator.authority}/{tenant['id']}/v2.0/adminconsent", data=form)
    _, query = location(response)
    assert query["error"] == ["access_denied"]
    assert query["error_description"][0].startswith("AADSTS65004")
    assert query["admin_consent"] == ["True"]
    assert query["state"] == ["s1"]
    assert "tenant" not in query


@pytest.mark.parametrize(("policy", "expect_error"), [("auto-accept", False), ("auto-decline", True)])
async def test_consent_policies_redirect_straight_away(control, emulator_reset, policy, expect_error):
    emulator = emulator_reset
    tenant = await new_customer(control, policy)
    app = await new_connector_app(control, emulator)
    params = {"client_id": app["client_id"], "redirect_uri": REDIRECT, "state": "x"}
    async with httpx.AsyncClient(verify=emulator.ssl_context()) as http:
        response = await http.get(f"{emulator.authority}/{tenant['id']}/adminconsent", params=params)
    _, query = location(response)
    assert ("error" in query) is expect_error
    assert ("tenant" in query) is not expect_error


@pytest.mark.parametrize(
    ("redirect", "code"),
    [("https://evil.example/callback", "AADSTS50011"), ("http://127.0.0.1:7071/api/other", "AADSTS50011")],
)
async def test_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(
    control, emulator_reset, redirect, code
):
    emulator = emulator_reset
    tenant = await new_customer(control, "auto-accept")
    app = await new_connector_app(control, emulator)
    params = {"client_id": app["client_id"], "redirect_uri": redirect}
    async with httpx.AsyncClient(verify=emulator.ssl_context()) as http:
        response = await http.get(f"{emulator.authority}/{tenant['id']}/adminconsent", params=params)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert code in response.text


async def test_registered_redirect_uri_with_extra_path_is_accepted(control, emulator_reset):
    emulator = emulator_reset
    tenant = await new_customer(control, "auto-accept")
    app = await new_connector_app(control, emulator)
    params = {"client_id": app["client_id"], "redirect_uri": REDIRECT + "/extra"}
    async with httpx.AsyncClient(verify=emulator.ssl_context()) as http:
        response = await http.get(f"{emulator.authority}/{tenant['id']}/adminconsent", params=params)
    target, _ = location(response)
    assert target == REDIRECT + "/extra"


async def test_consent_for_an_unknown_tenant_is_an_error_page(emulator_reset):
    emulator = emulator_reset
    params = {"client_id": emulator.client_id, "redirect_uri": REDIRECT}
    async with httpx.AsyncClient(verify=emulator.ssl_context()) as http:
        response = await http.get(f"{emulator.authority}/nowhere.example/adminconsent", params=params)
    assert response.status_code == 400
    assert "AADSTS90002" in response.text


# --- revocation and token expiry ----------------------------------------------------------------


async def test_revoked_grants_give_tokens_without_roles(control, emulator_reset):
    emulator = emulator_reset
    tenant = await new_customer(control)
    app = await new_connector_app(control, emulator)
    await control.consent(tenant["id"], app["client_id"])
    await control.create_user(tenant["id"], f"pat@{tenant['domains'][0]}")
    secret = app["secrets"][0]["value"]
    await control.revoke_consent(tenant["id"], app["client_id"], mode="grants")
    cred = credential(emulator, tenant["id"], app["client_id"], secret)
    assert "roles" not in claims((await cred.get_token("https://graph.microsoft.com/.default")).token)
    graph = graph_client(emulator, cred)
    with pytest.raises(ODataError) as err:
        await graph.users.by_user_id(f"pat@{tenant['domains'][0]}").todo.lists.get()
    assert err.value.response_status_code == 403
    assert err.value.error.code == "ErrorAccessDenied"
    await cred.close()


async def test_deleted_service_principal_is_aadsts700016(control, emulator_reset):
    emulator = emulator_reset
    tenant = await new_customer(control)
    app = await new_connector_app(control, emulator)
    await control.consent(tenant["id"], app["client_id"])
    await control.revoke_consent(tenant["id"], app["client_id"], mode="service_principal")
    cred = credential(emulator, tenant["id"], app["client_id"], app["secrets"][0]["value"])
    with pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        await cred.get_token("https://graph.microsoft.com/.default")
    await cred.close()
    await control.consent(tenant["id"], app["client_id"])  # consenting again brings it back
    assert await raw_token(emulator, tenant["id"], app["client_id"], app["secrets"][0]["value"])


async def test_advancing_the_clock_expires_graph_tokens(connector, control):
    response = await connector.http.get("users", params={"$top": "1"})
    assert response.status_code == 200
    await control.advance_clock(minutes=61)
    expired = await connector.http.get("users", params={"$top": "1"})
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "InvalidAuthenticationToken"
    emulator = connector.emulator
    fresh = await raw_token(emulator, emulator.tenant_id, emulator.client_id, emulator.client_secret)
    async with httpx.AsyncClient(verify=emulator.ssl_context()) as http:
        again = await http.get(f"{emulator.graph}/users", headers={"Authorization": f"Bearer {fresh}"})
    assert again.status_code == 200


async def test_graph_rejects_missing_and_forged_tokens(emulator_reset):
    emulator = emulator_reset
    async with httpx.AsyncClient(verify=emulator.ssl_context()) as http:
        missing = await http.get(f"{emulator.graph}/users")
        forged = await http.get(f"{emulator.graph}/users", headers={"Authorization": "Bearer a.b.c"})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert forged.status_code == 401


# --- Continuous Access Evaluation: client capabilities and claims challenges ------------------------


async def test_tokens_declare_client_capabilities_only_when_the_request_asks(connector):
    assert "xms_cc" not in claims(connector.token)  # no `claims` in the request
    cae = await connector.cred.get_token("https://graph.microsoft.com/.default", enable_cae=True)
    assert claims(cae.token)["xms_cc"] == ["CP1"]  # azure-identity's {"access_token":{"xms_cc":…}}


async def test_a_malformed_claims_request_is_aadsts50117(emulator_reset):
    emulator = emulator_reset
    form = {
        "grant_type": "client_credentials",
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "scope": "https://graph.microsoft.com/.default",
        "claims": "{not json",
    }
    async with httpx.AsyncClient(verify=emulator.ssl_context()) as http:
        refused = await http.post(f"{emulator.authority}/{emulator.tenant_id}/oauth2/v2.0/token", data=form)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request"
    assert refused.json()["error_codes"] == [50117]


async def test_a_revocation_event_challenges_cae_tokens_and_the_sdk_answers_with_their_claims(
    connector, control
):
    """CAE for workload identities: Graph refuses the app's cp1 tokens issued before the event with a
    claims challenge, keeps the others to their expiry, and a token requested with the claims is taken;
    msgraph-sdk (kiota) answers the challenge by itself."""
    await connector.graph.users.get()  # kiota asks for a CAE token (cp1) and caches it
    cae = (await connector.cred.get_token("https://graph.microsoft.com/.default", enable_cae=True)).token
    await control.advance_clock(minutes=1)
    revoked_at = await control.revoke_tokens(connector.tenant_id, connector.emulator.client_id)

    challenged = await connector.http.get("users", headers={"Authorization": f"Bearer {cae}"})
    kept = await connector.http.get("users")  # the token of a client that did not declare cp1

    assert challenged.status_code == 401
    error = challenged.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert "TokenIssuedBeforeRevocationTimestamp" in error["message"]
    header = challenged.headers["WWW-Authenticate"]
    assert header.startswith("Bearer ") and 'error="insufficient_claims"' in header
    encoded = header.split('claims="', 1)[1].split('"', 1)[0]
    assert json.loads(base64.b64decode(encoded)) == {
        "access_token": {"nbf": {"essential": True, "value": str(revoked_at)}}
    }
    assert kept.status_code == 200

    users = await connector.graph.users.get()  # 401, a token requested with the claims, the retry

    assert users is not None and users.value
    asked = (await control.stats())["token_claims"][-1]["access_token"]
    assert asked["nbf"] == {"essential": True, "value": str(revoked_at)}
    again = (await connector.cred.get_token("https://graph.microsoft.com/.default", enable_cae=True)).token
    assert claims(again)["iat"] >= revoked_at
