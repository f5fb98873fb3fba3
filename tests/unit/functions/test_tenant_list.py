"""`GET /api/v1/tenants` through the app's function: a page of tenants with its cursor and the count of
all, the next page from that cursor, and bad paging a 400 naming its parameter."""

from __future__ import annotations

import pytest

from shared.domain.tenants import TenantState
from tests.fakes.services import add_tenant
from tests.unit.functions.host_api import TENANT, host_api

pytestmark = pytest.mark.unit


async def test_the_tenants_come_a_page_at_a_time() -> None:
    api = await host_api()
    for n in range(3):
        await add_tenant(api.world, f"t{n}.example", TenantState.ACTIVE, directory_id=f"dir-t{n}")

    first = await api.call("GET", "v1/tenants", query={"page_size": "2"})
    assert first.status == 200
    body = first.json()
    assert [t["tenant_id"] for t in body["value"]] == [TENANT, "t0.example"]
    assert body["total"] == 4 and body["next_cursor"]
    assert body["value"][0]["progress"]["total"] == 2  # contoso's two staff members

    rest = (await api.call("GET", "v1/tenants", query={"cursor": body["next_cursor"]})).json()
    assert [t["tenant_id"] for t in rest["value"]] == ["t1.example", "t2.example"]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [({"page_size": "0"}, "page_size"), ({"page_size": "many"}, "page_size"), ({"cursor": "x"}, "cursor")],
)
async def test_bad_paging_is_a_400_naming_it(query: dict[str, str], field: str) -> None:
    api = await host_api()
    answer = await api.call("GET", "v1/tenants", query=query)
    assert (answer.status, answer.error_field) == (400, field)
