"""Leases of runs that died on storage: let go where storage allows, else taken over at once by the next
delivery of the same queue message (never by another message before the lease lapses)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from shared.domain.tenants import TenantState
from shared.service import jobs
from shared.service.job_codec import encode
from shared.service.job_handlers import run_message
from shared.service.jobs import Job, SyncUser
from shared.service.leasing import RELEASE_TRIES, run_leased
from shared.service.records import LeaseOutcome
from shared.service.sync import LEASE_TTL
from tests.fakes.events import event
from tests.fakes.outlook_tasks import task
from tests.fakes.services import FakeWorld, add_tenant, fake_world, switch_on
from tests.fakes.storage import FakeClock, FakeLeases

pytestmark = pytest.mark.unit

TID = "contoso.example"


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.MIGRATING, matched=1)
    await deliver(w, jobs.migrate_user(TID, "s1"), "migrate-1")
    w.jobs.take()
    return w


async def deliver(world: FakeWorld, job: Job, message_id: str, tries: int = 1) -> None:
    await run_message(world.services, job.queue, encode(job), tries=tries, message_id=message_id)


def storage_down(target: object, method: str, times: int) -> None:
    """The next `times` calls of `target.method` fail as an unreachable storage account fails."""
    original: Callable[..., Awaitable[Any]] = getattr(target, method)
    left = [times]

    async def failing(*args: Any, **kwargs: Any) -> Any:
        if left[0] == 0:
            return await original(*args, **kwargs)
        left[0] -= 1
        raise ServiceRequestError("the storage account did not answer")

    setattr(target, method, failing)


def announced(world: FakeWorld) -> list[str]:
    return [c.data["event"]["id"] for c in world.feed.entries.get(TID, []) if c.type == "event.created"]


def notified() -> SyncUser:
    return jobs.sync_user(TID, "s1", "notified")


async def test_a_run_failing_on_storage_lets_go_of_its_lease_when_storage_answers_again(
    world: FakeWorld,
) -> None:
    world.mailboxes.put("g1", event("B"))
    storage_down(world.item_statuses, "apply", 1)
    storage_down(world.leases, "release", 1)  # the first release fails too; the next try lets go
    with pytest.raises(ServiceRequestError):
        await deliver(world, notified(), "m-1")
    assert world.leases.rows == {}
    await deliver(world, notified(), "other")  # any job runs at once
    assert announced(world) == ["B"]


async def test_a_lease_its_dead_run_kept_is_taken_over_at_once_by_the_same_message_delivered_again(
    world: FakeWorld,
) -> None:
    world.mailboxes.put("g1", event("B"))
    storage_down(world.item_statuses, "apply", 1)
    storage_down(world.leases, "release", RELEASE_TRIES)  # down through every try: the lease is kept
    with pytest.raises(ServiceRequestError):
        await deliver(world, notified(), "m-1")
    assert len(world.leases.rows) == 1

    await deliver(world, notified(), "m-1", tries=2)  # the queue delivers the message again

    assert announced(world) == ["B"]
    assert [j for j in world.jobs.take() if isinstance(j, SyncUser) and j.check_back] == []


async def test_another_message_waits_for_a_kept_lease_to_lapse(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("B"))
    storage_down(world.item_statuses, "apply", 1)
    storage_down(world.leases, "release", RELEASE_TRIES)
    with pytest.raises(ServiceRequestError):
        await deliver(world, notified(), "m-1")

    await deliver(world, notified(), "m-2", tries=2)

    assert announced(world) == []
    assert [j.check_back for j in world.jobs.take() if isinstance(j, SyncUser)] == [1]  # checks back


async def test_a_run_kept_busy_past_the_leases_lifetime_keeps_its_lease() -> None:
    # Notifications keep asking for another pass; each pass takes 70 s, so the run outlives the
    # 2-minute lease it took: a job arriving then must be deferred, not run beside it.
    leases, clock = FakeLeases(), FakeClock()
    ran: list[int] = []
    beside: list[LeaseOutcome] = []

    async def busy_pass(number: int) -> None:
        ran.append(number)
        clock.advance(seconds=70)
        if number < 3:  # a notification meanwhile
            beside.append(await leases.acquire("t/s1", "another job", LEASE_TTL, clock.now()))

    assert await run_leased(leases, clock, "t/s1", LEASE_TTL, busy_pass)
    assert ran == [0, 1, 2, 3]
    assert beside == [LeaseOutcome.DEFERRED] * 3
    assert leases.rows == {}


async def test_a_migration_that_died_holding_its_lists_lease_too_is_taken_over_by_its_redelivery() -> None:
    """A migration takes the To Do list's lease with the calendar's; killed holding both, the same message
    delivered again takes each over at once (the calendar's, then the list's by its own run)."""
    world = fake_world()
    await add_tenant(world, TID, TenantState.MIGRATING, matched=1)
    await switch_on(world, TID, "s1", "tasks_from_outlook")
    listed = world.todo.put("g1", await world.todo.connector_list("g1", "Tasks from the host"), task("S"))
    world.mailboxes.put("g1", event("B"))
    storage_down(world.item_statuses, "apply", 1)
    storage_down(world.leases, "release", 2 * RELEASE_TRIES)  # neither lease let go
    with pytest.raises(ServiceRequestError):
        await deliver(world, jobs.migrate_user(TID, "s1"), "m-1")
    assert sorted(world.leases.rows) == [f"{TID}/s1", f"{TID}/s1/tasks"]

    await deliver(world, jobs.migrate_user(TID, "s1"), "m-1", tries=2)

    assert announced(world) == ["B"]
    assert [c.data["task"]["id"] for c in world.feed.entries[TID] if c.type == "task.created"] == [listed.id]
    assert [j for j in world.jobs.take() if getattr(j, "check_back", 0)] == []
    assert world.leases.rows == {}
