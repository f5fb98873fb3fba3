"""The To Do list a staff member's host tasks go to, on fakes: found by name, made when missing, the
staff member's own name before the tenant's, a gone list found or made again, a list To Do refuses
leaving a reason on the user and the calendar's state as it was, two workers making it at once."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from shared.domain.tenants import Tenant, TenantState
from shared.domain.users import SyncState, UserRecord
from shared.service.errors import RateLimited
from shared.service.todo_lists import TodoListUnavailable, ensure_list
from tests.fakes.services import FakeWorld, add_tenant, fake_world

pytestmark = pytest.mark.unit

TID = "contoso.example"
TENANT_LIST = "Tasks from the host"


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, matched=2)
    return w


async def tenant_and_user(world: FakeWorld, staff_id: str = "s1") -> tuple[Tenant, UserRecord]:
    tenant = await world.tenants.get(TID)
    user = await world.users.get(TID, staff_id)
    assert tenant is not None and user is not None
    return tenant, user


async def test_a_missing_list_is_made_once_and_its_id_kept_on_the_user(world: FakeWorld) -> None:
    tenant, user = await tenant_and_user(world)
    saved, list_id = await ensure_list(world.services, tenant, user)
    assert [lst.name for lst in world.todo.mailbox("g1").values()] == ["Tasks", TENANT_LIST]
    assert (saved.todo_list_id, saved.todo_list_name, saved.todo_list_reason) == (list_id, TENANT_LIST, None)
    stored = await world.users.get(TID, "s1")
    assert stored is not None and stored.todo_list_id == list_id
    before = world.todo.requests
    _, same = await ensure_list(world.services, tenant, stored)
    assert same == list_id and world.todo.requests == before  # kept: no Graph request


async def test_an_existing_list_is_found_by_name(world: FakeWorld) -> None:
    tenant, user = await tenant_and_user(world)
    existing = await world.todo.create_list(tenant, "g1", TENANT_LIST)
    _, list_id = await ensure_list(world.services, tenant, user)
    assert list_id == existing.id
    assert len(world.todo.mailbox("g1")) == 2


async def test_the_staff_members_own_name_comes_before_the_tenants(world: FakeWorld) -> None:
    tenant, user = await tenant_and_user(world)
    own = replace(user, staff=replace(user.staff, todo_list_name="MSLINAME"))
    own = await world.users.save(own)
    saved, list_id = await ensure_list(world.services, tenant, own)
    assert saved.todo_list_name == "MSLINAME"
    assert world.todo.mailbox("g1")[list_id].name == "MSLINAME"
    renamed_tenant = replace(tenant, settings=replace(tenant.settings, todo_list_name="Other"))
    _, still = await ensure_list(world.services, renamed_tenant, saved)
    assert still == list_id


async def test_a_list_gone_from_the_mailbox_is_made_again(world: FakeWorld) -> None:
    tenant, user = await tenant_and_user(world)
    saved, first = await ensure_list(world.services, tenant, user)
    del world.todo.mailbox("g1")[first]
    again, second = await ensure_list(world.services, tenant, saved, stale=first)
    assert second != first and again.todo_list_id == second


async def test_a_list_to_do_refuses_leaves_a_reason_and_the_calendar_as_it_was(world: FakeWorld) -> None:
    tenant, user = await tenant_and_user(world)
    synced = await world.users.save(replace(user, sync_state=SyncState.SYNCED, last_error=None))
    world.todo.fail("create_list", "refused")
    with pytest.raises(TodoListUnavailable) as refused:
        await ensure_list(world.services, tenant, synced)
    stored = await world.users.get(TID, "s1")
    assert stored is not None
    assert stored.todo_list_reason == refused.value.reason
    assert TENANT_LIST in refused.value.reason and "Tasks.ReadWrite.All" in refused.value.reason
    assert (stored.sync_state, stored.last_error, stored.todo_list_id) == (SyncState.SYNCED, None, None)
    _, list_id = await ensure_list(world.services, tenant, stored)  # To Do allows it again
    cleared = await world.users.get(TID, "s1")
    assert cleared is not None and (cleared.todo_list_reason, cleared.todo_list_id) == (None, list_id)


async def test_throttling_is_left_to_the_caller_and_saves_nothing(world: FakeWorld) -> None:
    tenant, user = await tenant_and_user(world)
    world.todo.fail("find_list", "throttle")
    with pytest.raises(RateLimited):
        await ensure_list(world.services, tenant, user)
    stored = await world.users.get(TID, "s1")
    assert stored is not None and (stored.todo_list_id, stored.todo_list_reason) == (None, None)


async def test_two_workers_making_the_list_at_once_leave_one(world: FakeWorld) -> None:
    tenant, user = await tenant_and_user(world)
    (_, a), (_, b) = await asyncio.gather(
        ensure_list(world.services, tenant, user), ensure_list(world.services, tenant, user)
    )
    assert a == b
    assert [lst.name for lst in world.todo.mailbox("g1").values()].count(TENANT_LIST) == 1
