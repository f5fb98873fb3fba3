"""The poison queues: a job that fails its last try is parked with the reason, and the tenant's console sees
its own (never another tenant's), redelivers or drops them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from shared.domain.tenants import TenantState
from shared.service import jobs
from shared.service.errors import InvalidInput, NotFound
from shared.service.job_codec import encode
from shared.service.job_handlers import run_message
from shared.service.jobs import MAX_DEQUEUE
from shared.service.poison import HOST_MOVED, PoisonQueueCount, drop_poison, list_poison, redeliver_poison
from tests.fakes.services import FakeWorld, add_tenant, fake_world
from tests.fakes.storage import FakeTenants

pytestmark = pytest.mark.unit

TID, OTHER = "contoso.example", "fabrikam.example"


class UnreachableTenants(FakeTenants):
    async def get(self, tenant_id: str) -> None:
        raise RuntimeError("table storage unreachable")


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, matched=1)
    await add_tenant(w, OTHER, TenantState.ACTIVE, directory_id="dir-2", matched=1)
    return w


async def fail_last_try(world: FakeWorld, tenant_id: str) -> None:
    broken = replace(world.services, tenants=UnreachableTenants())
    body = encode(jobs.sync_user(tenant_id, "s1", kind="resync"))
    parked = sum(len(q) for q in world.poison.queues.values())
    with pytest.raises(RuntimeError):  # an earlier try: the host delivers the message again
        await run_message(broken, jobs.SYNC_QUEUE, body.encode(), tries=MAX_DEQUEUE - 1)
    assert sum(len(q) for q in world.poison.queues.values()) == parked
    await run_message(broken, jobs.SYNC_QUEUE, body.encode(), tries=MAX_DEQUEUE)  # the last: parked


def test_the_last_try_is_the_hosts_max_dequeue_count() -> None:
    host = json.loads((Path(__file__).parents[3] / "host.json").read_text())
    assert host["extensions"]["queues"]["maxDequeueCount"] == MAX_DEQUEUE


async def test_a_job_failing_its_last_try_is_parked_with_the_reason(world: FakeWorld) -> None:
    await fail_last_try(world, TID)
    [entry] = (await list_poison(world.services, TID)).entries
    assert (entry.queue, entry.kind, entry.attempts) == (jobs.SYNC_QUEUE, "resync", MAX_DEQUEUE)
    assert entry.reason == "RuntimeError: table storage unreachable"
    assert entry.job["tenant_id"] == TID and entry.job["staff_id"] == "s1"
    assert entry.failed_at == world.clock.now()


async def test_a_tenant_sees_only_its_own_poison_messages(world: FakeWorld) -> None:
    await fail_last_try(world, OTHER)
    assert (await list_poison(world.services, TID)).entries == []
    [theirs] = (await list_poison(world.services, OTHER)).entries
    with pytest.raises(NotFound):
        await drop_poison(world.services, TID, theirs.queue, theirs.message_id)
    assert len((await list_poison(world.services, OTHER)).entries) == 1


async def test_redelivered_it_runs_again_and_dropped_it_is_gone(world: FakeWorld) -> None:
    await fail_last_try(world, TID)
    await fail_last_try(world, TID)
    first, second = (await list_poison(world.services, TID)).entries
    await redeliver_poison(world.services, TID, first.queue, first.message_id)
    assert world.jobs.take() == [jobs.sync_user(TID, "s1", kind="resync")]
    await drop_poison(world.services, TID, second.queue, second.message_id)
    assert (await list_poison(world.services, TID)).entries == []
    assert world.jobs.take() == []


async def test_a_message_the_host_moved_itself_says_why_from_what_is_known(world: FakeWorld) -> None:
    await world.poison.put(jobs.WRITE_QUEUE, encode(jobs.write_appointment(TID, "a-1", "changed")))
    await world.poison.put(jobs.WRITE_QUEUE, "not a job")  # names no tenant: shown to none
    [entry] = (await list_poison(world.services, TID)).entries
    assert (entry.kind, entry.reason, entry.job["appointment_id"]) == ("write", HOST_MOVED, "a-1")
    assert entry.attempts == jobs.MAX_DEQUEUE  # the host moves a message after its maxDequeueCount
    assert f"after {jobs.MAX_DEQUEUE} tries" in entry.reason and "functionTimeout" in entry.reason


async def test_a_queue_holding_more_than_storage_peeks_says_how_many_wait(world: FakeWorld) -> None:
    """Regression: the listing showed the first 32 messages of a queue and said nothing of the others."""
    for number in range(40):
        await world.poison.put(
            jobs.WRITE_QUEUE, encode(jobs.write_appointment(TID, f"a-{number}", "changed"))
        )
    await world.poison.put(jobs.SYNC_QUEUE, encode(jobs.migrate_user(TID, "s1")))
    listing = await list_poison(world.services, TID)
    assert len(listing.entries) == 33
    assert listing.queues == [
        PoisonQueueCount(jobs.SYNC_QUEUE, 1, 1),
        PoisonQueueCount(jobs.WRITE_QUEUE, 40, 32),
    ]
    assert not listing.complete
    for entry in [e for e in listing.entries if e.queue == jobs.WRITE_QUEUE][:8]:
        await drop_poison(world.services, TID, entry.queue, entry.message_id)
    assert (await list_poison(world.services, TID)).complete  # the rest show as the first are handled


async def test_an_unknown_queue_is_refused_naming_it(world: FakeWorld) -> None:
    with pytest.raises(InvalidInput) as refused:
        await drop_poison(world.services, TID, "mail-queue", "p1")
    assert refused.value.field == "queue"
