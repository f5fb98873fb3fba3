"""`GET /tenants` a page at a time: tenant id order, each tenant's progress read for its page only (a
tenant's progress reads its users), a cursor that walks every tenant once, and bad paging refused."""

from __future__ import annotations

import pytest

from shared.domain.progress import UserProgress
from shared.domain.tenants import TenantState
from shared.service.errors import InvalidInput
from shared.service.tenants import MAX_TENANT_PAGE, tenants_page
from shared.service.user_queries import encode_cursor
from tests.fakes.services import FakeWorld, add_tenant, fake_world


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    for n in (3, 1, 5, 2, 4):
        await add_tenant(w, f"t{n}.example", TenantState.ACTIVE, directory_id=f"dir-{n}", matched=n)
    return w


async def test_pages_walk_every_tenant_once_in_tenant_id_order(world: FakeWorld) -> None:
    seen: list[tuple[str, int]] = []
    cursor: str | None = None
    for _ in range(5):
        page = await tenants_page(world.services, 2, cursor)
        assert page.total == 5
        seen += [(t.tenant_id, p.total) for t, p in page.tenants]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [(f"t{n}.example", n) for n in range(1, 6)]  # each with its own users' progress


async def test_a_page_reads_only_its_own_tenants_users(world: FakeWorld) -> None:
    read: list[str] = []
    listing = world.users.list_progress

    async def list_progress(tenant_id: str) -> list[UserProgress]:
        read.append(tenant_id)
        return await listing(tenant_id)

    world.users.list_progress = list_progress  # type: ignore[method-assign]
    page = await tenants_page(world.services, 2, None)
    assert [t.tenant_id for t, _ in page.tenants] == ["t1.example", "t2.example"]
    assert sorted(read) == ["t1.example", "t2.example"]


async def test_a_tenant_added_between_pages_is_met_in_its_place(world: FakeWorld) -> None:
    first = await tenants_page(world.services, 2, None)
    await add_tenant(
        world, "t0.example", TenantState.ACTIVE, directory_id="dir-0"
    )  # before the cursor: not shown again
    await add_tenant(world, "t3a.example", TenantState.ACTIVE, directory_id="dir-3a")
    second = await tenants_page(world.services, 2, first.next_cursor)
    assert [t.tenant_id for t, _ in second.tenants] == ["t3.example", "t3a.example"]
    assert second.total == 7


@pytest.mark.parametrize(
    ("page_size", "cursor", "field"),
    [
        (0, None, "page_size"),
        (MAX_TENANT_PAGE + 1, None, "page_size"),
        (10, "not-a-cursor", "cursor"),
        (10, encode_cursor("display_name", "t1.example"), "cursor"),  # a users page's cursor
    ],
)
async def test_bad_paging_names_its_field(
    world: FakeWorld, page_size: int, cursor: str | None, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await tenants_page(world.services, page_size, cursor)
    assert refused.value.field == field
