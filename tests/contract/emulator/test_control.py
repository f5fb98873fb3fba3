"""The control surface, the demo seed, the ready line and resets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from m365emulator.control import ControlFailed
from m365emulator.process import EmulatorProcess
from tests.contract.emulator.conftest import raw_token, unique
from tests.fixtures.emulator import info_from

pytestmark = pytest.mark.contract


async def test_ready_line_has_urls_ca_and_demo_credentials(emulator):
    raw = emulator.raw
    assert set(raw) == {
        "authority",
        "graph",
        "keyvault",
        "control",
        "ca_file",
        "tenant_id",
        "client_id",
        "client_secret",
        "platform_tenant_id",
        "platform_client_id",
        "platform_client_secret",
    }
    assert raw["graph"] == raw["authority"] + "/v1.0"
    assert raw["control"] == raw["authority"] + "/_emulator"
    assert raw["keyvault"].startswith("https://localhost:")
    assert raw["keyvault"] != raw["authority"]


async def test_demo_organisation(control, emulator):
    users = await control.users(emulator.tenant_id)
    assert len(users) >= 36
    assert [u["upn"] for u in users if not u["account_enabled"]] == ["former.employee@contoso.example"]
    assert [u["upn"] for u in users if not u["mailbox_enabled"]] == ["it.admin@contoso.example"]
    assert len({u["time_zone"] for u in users}) >= 5
    assert any(u["mail"] != u["upn"] and u["mail"] for u in users)
    tenants = {t["display_name"]: t for t in await control.tenants()}
    assert tenants["Contoso"]["id"] == emulator.tenant_id
    assert "contoso.example" in tenants["Contoso"]["domains"]
    assert tenants["Contoso"]["consent_policy"] == "page"
    app = await control.get_app(emulator.client_id)
    assert app["multi_tenant"] is True
    assert "http://localhost:7071/api/consent/callback" in app["redirect_uris"]
    info = await control.info()
    stats = await control.stats()
    if info["calendar"]:
        assert stats["events"] > 36 * 5


async def test_runtime_reset_clears_faults_clock_stats_and_settings(control):
    await control.add_fault(status=503)
    await control.set_settings(throttle_budget=5)
    before = await control.clock()
    await control.advance_clock(days=2)
    assert await control.clock() > before
    await control.reset()
    assert await control.faults() == []
    assert (await control.settings())["throttle_budget"] == 10_000
    assert (await control.clock())[:10] == before[:10]
    assert (await control.stats())["requests_total"] == 0


async def test_bad_control_input_is_400(control):
    with pytest.raises(ControlFailed) as err:
        await control.set_settings(nonsense=1)
    assert err.value.status == 400
    with pytest.raises(ControlFailed) as err:
        await control.add_fault(status=503, when="sometime")
    assert err.value.status == 400
    with pytest.raises(ControlFailed) as err:
        await control.create_user("00000000-0000-0000-0000-000000000000", "x@y.example")
    assert err.value.status == 404


async def test_full_reset_rebuilds_the_seed_with_the_same_credentials(tmp_path):
    proc = EmulatorProcess(tmp_path)
    info = info_from(proc.start(), proc.log_file)
    try:
        async with info.control as control:
            extra = await control.create_tenant(unique("gone"), [])
            await control.reset(data=True)
            assert extra["id"] not in {t["id"] for t in await control.tenants()}
            assert len(await control.users(info.tenant_id)) >= 36
        assert await raw_token(info, info.tenant_id, info.client_id, info.client_secret)
    finally:
        proc.stop()


def test_cli_help_names_the_options():
    out = subprocess.run(
        [sys.executable, "-m", "m365emulator", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    for option in ("--port", "--seed", "--ca-file", "--latency-ms", "--host"):
        assert option in out


async def test_empty_seed_prints_no_credentials(tmp_path):
    proc = EmulatorProcess(tmp_path, seed="empty")
    ready = proc.start()
    try:
        assert "client_secret" not in ready
        assert json.loads(json.dumps(ready))["ca_file"].endswith("ca.pem")
    finally:
        proc.stop()
