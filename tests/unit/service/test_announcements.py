"""Exactly once as the host sees it: a storage failure anywhere between a sync run's statuses and its feed
append (the calendar's run and the To Do list's) neither repeats a change nor loses a later one. The
failures are injected into the fakes as Azure Storage fails: a request that never arrives, or one that
lands and whose answer is lost."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from shared.domain.tenants import TenantState
from shared.service import jobs
from shared.service.job_handlers import run_job
from shared.service.jobs import Job
from shared.service.records import Announcement
from shared.service.task_statuses import tasks_scope
from tests.fakes.events import event
from tests.fakes.outlook_tasks import task
from tests.fakes.services import FakeWorld, add_tenant, fake_world, switch_on

pytestmark = pytest.mark.unit

TID = "contoso.example"


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.MIGRATING, matched=1)
    await switch_on(w, TID, "s1", "tasks_from_outlook")
    return w


def storage_fails(target: object, method: str, *, lands: bool = False) -> list[int]:
    """The next call of `target.method` fails as Azure Storage fails: before it reaches the service, or
    (`lands`) after the service did it (the answer lost). Answers a list that counts the failures."""
    original: Callable[..., Awaitable[Any]] = getattr(target, method)
    failed: list[int] = []

    async def failing(*args: Any, **kwargs: Any) -> Any:
        setattr(target, method, original)  # once
        if lands:
            await original(*args, **kwargs)
        failed.append(1)
        raise ServiceRequestError("the storage account did not answer")

    setattr(target, method, failing)
    return failed


async def run_all(world: FakeWorld) -> int:
    """Every queued job, each delivered again (as the queue does) when it raised; how many raised."""
    raised = 0
    for _ in range(50):
        batch = [j for j in world.jobs.take() if j.queue != jobs.DELIVERY_QUEUE]
        if not batch:
            return raised
        for job in batch:
            raised += await _run(world, job)
    raise AssertionError("the queues never went quiet")


async def _run(world: FakeWorld, job: Job) -> int:
    try:
        await run_job(world.services, job)
    except ServiceRequestError:
        await world.jobs.enqueue([job])  # redelivered
        return 1
    return 0


def feed(world: FakeWorld, prefix: str) -> list[tuple[str, str]]:
    """The host's view of one kind of item: each change's type and the item's id, in feed order."""
    kind = prefix.rstrip(".")
    return [
        (c.type, c.data[kind]["id"]) for c in world.feed.entries.get(TID, []) if c.type.startswith(prefix)
    ]


async def migrated(world: FakeWorld) -> str:
    world.mailboxes.put("g1", event("A"))
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    assert await run_all(world) == 0
    list_id = await world.todo.connector_list("g1", "Tasks from the host")
    return list_id


async def notified(world: FakeWorld) -> int:
    await world.jobs.enqueue([jobs.sync_user(TID, "s1", "notified"), jobs.sync_tasks(TID, "s1", "notified")])
    return await run_all(world)


@pytest.mark.parametrize("lands", [False, True], ids=["never-stored", "stored-answer-lost"])
async def test_an_event_is_announced_once_when_storing_its_status_fails(
    world: FakeWorld, lands: bool
) -> None:
    await migrated(world)
    world.mailboxes.put("g1", event("B"))
    failed = storage_fails(world.item_statuses, "apply", lands=lands)
    assert await notified(world) == 1 and failed
    assert feed(world, "event.") == [("event.created", "A"), ("event.created", "B")]


async def test_an_event_is_announced_once_when_the_feed_append_lands_and_its_answer_is_lost(
    world: FakeWorld,
) -> None:
    await migrated(world)
    world.mailboxes.put("g1", event("B"))
    failed = storage_fails(world.feed, "append", lands=True)
    assert await notified(world) == 1 and failed
    assert feed(world, "event.") == [("event.created", "A"), ("event.created", "B")]


async def test_an_event_is_announced_once_when_clearing_its_announcement_fails(world: FakeWorld) -> None:
    await migrated(world)
    world.mailboxes.put("g1", event("B"))
    failed = storage_fails(world.item_statuses, "announced")
    assert await notified(world) == 1 and failed
    assert feed(world, "event.") == [("event.created", "A"), ("event.created", "B")]
    assert await world.item_statuses.pending(TID, "s1") is None


@pytest.mark.parametrize(("step", "lands"), [("apply", False), ("apply", True), ("append", True)])
async def test_a_deletion_after_a_failed_run_is_announced_when_its_creation_was(
    world: FakeWorld, step: str, lands: bool
) -> None:
    # The event made, its run failing around the feed; the staff member deletes it before the run is
    # delivered again: the host sees both (or neither), never a creation alone.
    await migrated(world)
    world.mailboxes.put("g1", event("B"))
    storage_fails(world.item_statuses if step == "apply" else world.feed, step, lands=lands)
    job = jobs.sync_user(TID, "s1", "notified")
    assert await _run(world, job) == 1
    world.jobs.take()
    world.mailboxes.remove("g1", "B")
    await world.jobs.enqueue([job])
    assert await run_all(world) == 0
    about_b = [kind for kind, item in feed(world, "event.") if item == "B"]
    assert about_b in ([], ["event.created", "event.deleted"])
    host: set[str] = set()
    for kind, item in feed(world, "event."):
        (host.add if kind == "event.created" else host.discard)(item)
    assert host == set(world.mailboxes.mailbox("g1").events)


@pytest.mark.parametrize(
    ("target", "method", "lands"),
    [("statuses", "apply", False), ("statuses", "apply", True), ("feed", "append", True)],
)
async def test_a_task_is_announced_once_when_storage_fails_around_the_feed(
    world: FakeWorld, target: str, method: str, lands: bool
) -> None:
    list_id = await migrated(world)
    made = world.todo.put("g1", list_id, task("T"))
    failed = storage_fails(world.item_statuses if target == "statuses" else world.feed, method, lands=lands)
    await world.jobs.enqueue([jobs.sync_tasks(TID, "s1", "notified")])
    assert await run_all(world) == 1 and failed
    assert feed(world, "task.") == [("task.created", made.id)]
    assert await world.item_statuses.pending(TID, tasks_scope("s1")) is None


async def test_a_run_finding_an_announcement_publishes_it_first_and_not_what_it_plans_again(
    world: FakeWorld,
) -> None:
    # A run that died after the announcement's transaction and before the rest of its statuses (a large
    # plan takes several): the next plans again what was not stored, and publishes only what the
    # announcement did not hold.
    await migrated(world)
    world.mailboxes.put("g1", event("B"))
    statuses = world.item_statuses
    original = statuses.apply

    async def first_transaction_only(
        tenant_id: str, staff_id: str, upserts: Any, deletes: Any, *, announcing: Announcement | None = None
    ) -> None:
        statuses.apply = original  # type: ignore[method-assign]
        await original(tenant_id, staff_id, [], [], announcing=announcing)
        raise ServiceRequestError("the storage account did not answer")

    statuses.apply = first_transaction_only  # type: ignore[method-assign]
    assert await notified(world) == 1
    assert feed(world, "event.") == [("event.created", "A"), ("event.created", "B")]
    assert await statuses.pending(TID, "s1") is None
    assert "B" in statuses.rows[TID, "s1"]
