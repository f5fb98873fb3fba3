"""The state a host and the console read: migrating while staff migrate, degraded while users fail."""

from __future__ import annotations

import pytest

from functions.views import tenant_json
from shared.domain.tenants import TenantState
from shared.domain.users import MatchStatus, StaffMember, UserRecord
from shared.service import jobs
from shared.service.job_handlers import run_job
from shared.service.sync import request_tenant_resync
from shared.service.tenants import get_tenant, tenant_progress
from tests.fakes.services import FakeWorld, add_tenant, fake_world

pytestmark = pytest.mark.unit

TID = "contoso.example"


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.MIGRATING, matched=3)
    await migrate(w, "s1", "s2", "s3")
    return w


async def migrate(world: FakeWorld, *staff: str) -> None:
    await world.jobs.enqueue([jobs.migrate_user(TID, s) for s in staff])
    await run_queued(world)


async def run_queued(world: FakeWorld) -> None:
    for _ in range(20):
        batch = [j for j in world.jobs.take() if j.queue == jobs.SYNC_QUEUE]
        if not batch:
            return
        for job in batch:  # a calendar or a To Do list
            await run_job(world.services, job)


async def shown(world: FakeWorld) -> dict[str, object]:
    """The tenant as `GET /tenants/{tid}` and the console show it."""
    tenant = await get_tenant(world.services, TID)
    body = tenant_json(tenant, world.clock.now(), await tenant_progress(world.services, tenant))
    return {
        "state": body["state"],
        "phase": body["progress"]["phase"],
        "percent": body["progress"]["percent"],
    }


async def add_staff(world: FakeWorld, *numbers: int) -> None:
    """What `PUT …/staff/{id}` stores for a staff member matched at once: a user waiting to migrate."""
    now = world.clock.now()
    for n in numbers:
        staff = StaffMember(f"s{n}", f"user{n}@contoso.example", None, f"User {n}")
        await world.users.save(UserRecord(TID, staff, MatchStatus.MATCHED, now, graph_user_id=f"g{n}"))


async def test_staff_added_to_an_active_tenant_show_it_migrating_until_they_are_synced(
    world: FakeWorld,
) -> None:
    assert await shown(world) == {"state": "active", "phase": "done", "percent": 100}
    world.clock.advance(days=2)
    await add_staff(world, 4, 5)
    assert await shown(world) == {"state": "migrating", "phase": "migrating", "percent": 60}
    await migrate(world, "s4", "s5")
    assert await shown(world) == {"state": "active", "phase": "done", "percent": 100}


async def test_an_active_tenant_with_users_in_error_shows_degraded_and_active_again_once_healed(
    world: FakeWorld,
) -> None:
    world.clock.advance(hours=5)
    for staff_id, mailbox in (("s1", "g1"), ("s2", "g2")):
        world.mailboxes.mailbox(mailbox).unavailable = "the user has no Exchange Online mailbox"
        await world.jobs.enqueue([jobs.sync_user(TID, staff_id, "nightly", kind="resync")])
    await run_queued(world)
    assert await shown(world) == {"state": "degraded", "phase": "done", "percent": 100}
    for mailbox in ("g1", "g2"):
        world.mailboxes.mailbox(mailbox).unavailable = None
    assert await request_tenant_resync(world.services, TID, only_failed=True) == 2
    await run_queued(world)
    assert await shown(world) == {"state": "active", "phase": "done", "percent": 100}


async def test_a_tenant_whose_first_migration_ended_with_failures_shows_active_once_they_are_resynced() -> (
    None
):
    w = fake_world()
    await add_tenant(w, TID, TenantState.MIGRATING, matched=2)
    w.mailboxes.mailbox("g2").unavailable = "the user has no Exchange Online mailbox"
    await migrate(w, "s1", "s2")
    assert await shown(w) == {"state": "degraded", "phase": "done", "percent": 100}
    w.mailboxes.mailbox("g2").unavailable = None
    await request_tenant_resync(w.services, TID, only_failed=True)
    await run_queued(w)
    assert await shown(w) == {"state": "active", "phase": "done", "percent": 100}


async def test_the_eta_of_staff_added_later_counts_their_migrations_not_the_other_users_catch_ups(
    world: FakeWorld,
) -> None:
    world.clock.advance(days=2)
    await add_staff(world, 4, 5)
    world.clock.advance(seconds=30)
    # Outlook changes meanwhile: the three users migrated two days ago catch up; that is no migration.
    await world.jobs.enqueue([jobs.sync_user(TID, s, "notified") for s in ("s1", "s2", "s3")])
    await migrate(world, "s4")
    tenant = await get_tenant(world.services, TID)
    eta = (await tenant_progress(world.services, tenant)).eta_seconds
    assert eta == 30  # s4 took 30 s since the two were added; s5 is left
