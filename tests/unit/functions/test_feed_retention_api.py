"""The feed's retention as the host and the console set and read it: a tenant setting in PATCH and GET,
said by every page of the pull feed, announced on the feed when it changes, refused naming the field."""

from __future__ import annotations

import pytest

from tests.unit.functions.host_api import TENANT, HostApi, host_api, snapshot

pytestmark = pytest.mark.unit


@pytest.fixture
async def api() -> HostApi:
    return await host_api()


@pytest.mark.parametrize("route", [f"v1/tenants/{TENANT}/settings", f"console/tenants/{TENANT}/settings"])
async def test_the_retention_is_set_read_and_told(api: HostApi, route: str) -> None:
    assert (await api.call("GET", f"v1/tenants/{TENANT}")).json()["settings"]["feed_retention_days"] == 30

    patched = await api.call("PATCH", route, {"feed_retention_days": 90})

    assert patched.status == 200, patched.body
    assert patched.json()["settings"]["feed_retention_days"] == 90
    assert (await api.call("GET", f"v1/tenants/{TENANT}")).json()["settings"]["feed_retention_days"] == 90
    page = (await api.call("GET", f"v1/tenants/{TENANT}/changes", query={"cursor": "0"})).json()
    assert page["retention_days"] == 90
    told = [c for c in page["value"] if c["type"] == "tenant.feed_retention_changed"]
    assert [c["data"] for c in told] == [{"previous_days": 30, "days": 90}]


@pytest.mark.parametrize("days", [0, 366, "30", 30.5, True])
async def test_a_bad_retention_is_a_400_naming_the_field(api: HostApi, days: object) -> None:
    before = snapshot(api.world)

    answer = await api.call("PATCH", f"v1/tenants/{TENANT}/settings", {"feed_retention_days": days})

    assert (answer.status, answer.error_field) == (400, "settings.feed_retention_days")
    assert snapshot(api.world) == before
