"""A lost notification and a dead lease holder heal by themselves, on fakes with the clock moved: the
catch-up a little after a mailbox's last notification (calendar and To Do list, one per burst), and a
check-back message delivered again after its worker died holding the lease."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.domain.tenants import TenantState
from shared.service import jobs
from shared.service.follow_ups import FOLLOW_UP_AFTER
from shared.service.job_codec import encode
from shared.service.job_handlers import run_job, run_message
from shared.service.jobs import Job, Notified
from shared.service.leasing import MAX_CHECK_BACKS
from shared.service.sync import LEASE_TTL
from shared.service.task_sync import LEASE_TTL as TASK_LEASE_TTL
from shared.service.task_sync import lease_key
from tests.fakes.events import event
from tests.fakes.outlook_tasks import task
from tests.fakes.services import FakeWorld, add_tenant, fake_world
from tests.unit.service.test_sync import DIRECTORY, TID, feed, migrate, notify, run_all
from tests.unit.service.test_task_sync import about, notify_tasks, switch, user

pytestmark = pytest.mark.unit


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.MIGRATING, directory_id=DIRECTORY, matched=2)
    await switch(w, "s1", True)
    return w


async def run_notifications(world: FakeWorld) -> list[Job]:
    """Run the notifications queued (and nothing else); answer what they queued to run later."""
    later: list[Job] = []
    for job in [j for j in world.jobs.take() if j.queue != jobs.DELIVERY_QUEUE]:
        if isinstance(job, Notified):
            await run_job(world.services, job)
        else:
            later.append(job)
    later += [j for j in world.jobs.take() if j.queue != jobs.DELIVERY_QUEUE]
    return later


async def run_when_due(world: FakeWorld, due: list[tuple[float, Job]], started: float) -> int:
    """Run each job at its time (seconds after `started`), the clock moved to it; how many asked Graph."""
    asked = 0
    for at, job in sorted(due, key=lambda d: d[0]):
        world.clock.advance(seconds=max(0.0, started + at - world.clock.now().timestamp()))
        before = world.mailboxes.requests
        await run_job(world.services, job)
        asked += world.mailboxes.requests > before
    return asked


async def test_a_change_whose_notification_was_lost_is_read_minutes_after_the_last_one(
    world: FakeWorld,
) -> None:
    await migrate(world, "s1")
    world.mailboxes.put("g1", event("A"))
    await notify(world, "g1", "A")
    later = await run_notifications(world)
    assert feed(world, "s1")[-1] == "event.created"
    world.clock.advance(seconds=60)
    world.mailboxes.put("g1", event("B"))  # its notification is lost: none comes
    assert later and all(0 < j.delay_seconds <= 300 for j in later)
    world.clock.advance(seconds=max(j.delay_seconds for j in later))
    for job in later:
        await run_job(world.services, job)
    await run_all(world)
    created = [c.data["event"]["id"] for c in world.feed.entries[TID] if c.type == "event.created"]
    assert created[-2:] == ["A", "B"]


async def test_a_burst_of_notifications_costs_one_catch_up_after_its_last(world: FakeWorld) -> None:
    await migrate(world, "s1")
    started = world.clock.now().timestamp()
    due: list[tuple[float, Job]] = []
    for n in range(10):  # a notification every 10 s for 90 s
        world.mailboxes.put("g1", event(f"E{n}"))
        await notify(world, "g1", f"E{n}")
        at = world.clock.now().timestamp() - started
        due += [(at + j.delay_seconds, j) for j in await run_notifications(world)]
        world.clock.advance(seconds=10)
    world.mailboxes.put("g1", event("LOST"))  # the burst's last change: its notification is lost
    assert len(due) >= 2  # the index marked more than once during the burst
    assert await run_when_due(world, due, started) == 1  # one catch-up read Graph: after the last one
    await run_all(world)
    created = [c.data["event"]["id"] for c in world.feed.entries[TID] if c.type == "event.created"]
    assert created[-1] == "LOST"
    assert world.clock.now().timestamp() - started <= 90 + FOLLOW_UP_AFTER.total_seconds() + 10


async def test_a_to_do_change_whose_notification_was_lost_is_read_minutes_after_the_last_one(
    world: FakeWorld,
) -> None:
    await migrate(world, "s1")
    lst = (await user(world)).task_sync.list_id
    assert lst is not None
    world.todo.put("g1", lst, task("A"))
    await notify_tasks(world)
    later = await run_notifications(world)
    world.clock.advance(seconds=45)
    world.todo.put("g1", lst, task("B"))  # its notification is lost
    assert later and all(0 < j.delay_seconds <= 300 for j in later)
    world.clock.advance(seconds=max(j.delay_seconds for j in later))
    for job in later:
        await run_job(world.services, job)
    await run_all(world)
    assert [(kind, task_id) for kind, task_id, _ in about(world)][-2:] == [
        ("task.created", "A"),
        ("task.created", "B"),
    ]


async def test_a_check_back_delivered_again_after_its_worker_died_holding_the_lease_takes_over(
    world: FakeWorld,
) -> None:
    await migrate(world, "s1")
    # The last check-back took the lease (the earlier holder's had lapsed), and its worker was killed.
    last_check = jobs.sync_user(TID, "s1", "check_back", check_back=MAX_CHECK_BACKS)
    await world.leases.acquire(f"{TID}/s1", "killed-worker", LEASE_TTL, world.clock.now())
    world.mailboxes.put("g1", event("B"))
    world.clock.advance(seconds=20)  # the queue delivers the message again
    await run_message(world.services, jobs.SYNC_QUEUE, encode(last_check), tries=2)
    [check] = [j for j in world.jobs.take() if j.queue != jobs.DELIVERY_QUEUE]
    assert timedelta(seconds=check.delay_seconds) > LEASE_TTL
    world.clock.advance(seconds=check.delay_seconds)  # the dead worker's lease lapsed meanwhile
    await run_job(world.services, check)
    assert feed(world, "s1")[-1] == "event.created"


async def test_a_task_check_back_delivered_again_after_its_worker_died_holding_the_lease_takes_over(
    world: FakeWorld,
) -> None:
    await migrate(world, "s1")
    lst = (await user(world)).task_sync.list_id
    assert lst is not None
    last_check = jobs.sync_tasks(TID, "s1", "notified", check_back=MAX_CHECK_BACKS)
    await world.leases.acquire(lease_key(TID, "s1"), "killed-worker", TASK_LEASE_TTL, world.clock.now())
    world.todo.put("g1", lst, task("B"))
    world.clock.advance(seconds=20)
    await run_message(world.services, jobs.SYNC_QUEUE, encode(last_check), tries=2)
    [check] = [j for j in world.jobs.take() if j.queue != jobs.DELIVERY_QUEUE]
    assert timedelta(seconds=check.delay_seconds) > TASK_LEASE_TTL
    world.clock.advance(seconds=check.delay_seconds)
    await run_job(world.services, check)
    assert [(kind, task_id) for kind, task_id, _ in about(world)][-1] == ("task.created", "B")


async def test_a_to_do_change_whose_every_notification_was_lost_is_read_after_the_calendars(
    world: FakeWorld,
) -> None:
    await migrate(world, "s1")
    lst = (await user(world)).task_sync.list_id
    assert lst is not None
    world.todo.put("g1", lst, task("T"))  # the list's notification is lost: none comes
    world.mailboxes.put("g1", event("A"))
    await notify(world, "g1", "A")  # the calendar's arrives
    later = await run_notifications(world)
    assert about(world) == []
    world.clock.advance(seconds=max(j.delay_seconds for j in later))
    for job in later:
        await run_job(world.services, job)
    await run_all(world)
    assert [(kind, task_id) for kind, task_id, _ in about(world)] == [("task.created", "T")]
