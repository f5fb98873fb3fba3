"""An app registration's redirect URIs through the control surface: replaced as an operator replaces them,
refused as Entra refuses them, and what admin consent then accepts."""

from __future__ import annotations

import httpx
import pytest

from m365emulator.control import ControlFailed
from m365emulator.directory import GRAPH_PERMISSIONS
from tests.contract.emulator.conftest import unique

pytestmark = pytest.mark.contract

SEEDED = "http://127.0.0.1:7071/api/consent/callback"
MOVED = "http://127.0.0.1:7072/api/consent/callback"


async def _app(control, emulator) -> dict:
    return await control.create_app(
        unique("connector"),
        emulator.platform_tenant_id,
        multi_tenant=True,
        redirect_uris=[SEEDED],
        permissions=list(GRAPH_PERMISSIONS),
    )


async def _consent_status(emulator, tenant_id: str, client_id: str, redirect: str) -> int:
    params = {"client_id": client_id, "redirect_uri": redirect}
    async with httpx.AsyncClient(verify=emulator.ssl_context()) as http:
        response = await http.get(f"{emulator.authority}/{tenant_id}/adminconsent", params=params)
    return response.status_code


async def test_replaced_redirect_uris_are_the_only_ones_consent_accepts(control, emulator_reset):
    emulator = emulator_reset
    name = unique("cust")
    tenant = await control.create_tenant(name, [f"{name}.example"], consent_policy="auto-accept")
    app = await _app(control, emulator)
    assert await _consent_status(emulator, tenant["id"], app["client_id"], MOVED) == 400  # AADSTS50011

    updated = await control.set_redirect_uris(app["client_id"], [MOVED])

    assert updated["redirect_uris"] == [MOVED]
    assert (await control.get_app(app["client_id"]))["redirect_uris"] == [MOVED]
    assert await _consent_status(emulator, tenant["id"], app["client_id"], MOVED) == 302
    assert await _consent_status(emulator, tenant["id"], app["client_id"], SEEDED) == 400


@pytest.mark.parametrize(
    "uris",
    [
        ["http://connector.example/api/consent/callback"],  # http only on localhost / 127.0.0.1
        ["/api/consent/callback"],  # not absolute
        ["https://connector.example/api/consent/callback;x"],  # ; is not supported
        ["https://connector.example/" + "a" * 250],  # over 256 characters
        [f"https://connector.example/{n}" for n in range(257)],  # over 256 URIs
        "https://connector.example/api/consent/callback",  # not a list
    ],
)
async def test_redirect_uris_entra_refuses_are_refused_naming_the_field(control, emulator_reset, uris):
    app = await _app(control, emulator_reset)
    with pytest.raises(ControlFailed) as refused:
        await control.set_redirect_uris(app["client_id"], uris)
    assert refused.value.status == 400
    assert "redirect_uris" in str(refused.value.body)
    assert (await control.get_app(app["client_id"]))["redirect_uris"] == [SEEDED]  # nothing changed


async def test_unknown_app_fields_and_apps_are_refused(control, emulator_reset):
    app = await _app(control, emulator_reset)
    with pytest.raises(ControlFailed) as refused:
        await control.call("PATCH", f"/apps/{app['client_id']}", {"display_name": "Renamed"})
    assert refused.value.status == 400 and "display_name" in str(refused.value.body)
    with pytest.raises(ControlFailed) as missing:
        await control.set_redirect_uris("00000000-0000-4000-8000-000000000000", [MOVED])
    assert missing.value.status == 404
