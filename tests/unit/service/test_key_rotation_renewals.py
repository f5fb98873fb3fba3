"""Subscriptions through rotations of the notification key: a renewal never re-signs a clientState with
another version behind Graph's back, nor strands one that names an older version; the renewal timer moves
every subscription (calendar and To Do list) to the current version after a rotation, so two rotations
never leave a subscription signed with a version the operator has since disabled."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from shared.domain.tenants import TenantState
from shared.domain.users import UserRecord
from shared.service import jobs
from shared.service.context import Services
from shared.service.jobs import Job, TaskMode
from shared.service.keys import CURRENT_FOR, FRESH_FOR, NOTIFICATION_KEY, KeyRing, new_key_value
from shared.service.notifications import receive_changes
from shared.service.records import VERSION_NOT_KNOWN, Watched
from shared.service.schedules import KEY_ROTATED, renew_tenant_subscriptions
from shared.service.subscriptions import ensure_subscription
from tests.fakes.keys import WorkerVault, race_first_reads
from tests.fakes.services import FakeWorld, add_tenant, fake_world, run_queued

pytestmark = pytest.mark.unit

TID = "contoso.example"
DIRECTORY = "9188040d-6c67-4c5b-b112-36a304b66dad"


class Worker:
    """One worker: its own KeyRing (and monotonic clock) over the shared fake vault."""

    def __init__(self, world: FakeWorld) -> None:
        self.time = 0.0
        self.keys = KeyRing(world.secrets, monotonic=lambda: self.time)
        self.services: Services = replace(world.services, keys=self.keys)


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, directory_id=DIRECTORY, matched=2)
    for staff_id in ("s1", "s2"):
        found = await w.users.get(TID, staff_id)
        assert found is not None
        switches = found.staff.switches.changed({"tasks_from_outlook": True})
        await w.users.save(replace(found, staff=replace(found.staff, switches=switches)))
    return w


async def user(world: FakeWorld, staff_id: str = "s1") -> UserRecord:
    found = await world.users.get(TID, staff_id)
    assert found is not None
    return found


async def run_all(worker: Worker, world: FakeWorld) -> list[Job]:
    return await run_queued(world, worker.services)


async def migrate(worker: Worker, world: FakeWorld) -> None:
    await world.jobs.enqueue([jobs.migrate_user(TID, s) for s in ("s1", "s2")])
    await run_all(worker, world)


def held(world: FakeWorld) -> dict[str, str]:
    """What Graph holds: subscription id -> its clientState."""
    return {sid: str(state) for sid, (_, _, state) in world.mailboxes.subscriptions.items()}


async def notified(worker: Worker, world: FakeWorld) -> int:
    """A notification for every subscription Graph holds, with its clientState: how many the webhook took."""
    by_graph_user = {u.graph_user_id: u for u in [await user(world, "s1"), await user(world, "s2")]}
    items = []
    for sid, (graph_user_id, _, state) in world.mailboxes.subscriptions.items():
        record = await world.subscription_index.get(sid)
        assert record is not None and graph_user_id in by_graph_user
        resource = (
            f"Users/{graph_user_id}/todo/lists/L1/tasks/T1"
            if record.watches is Watched.TASKS
            else f"Users/{graph_user_id}/Events/E1"
        )
        items.append(
            {
                "subscriptionId": sid,
                "tenantId": DIRECTORY,
                "clientState": state,
                "changeType": "updated",
                "resource": resource,
            }
        )
    received = await receive_changes(worker.services, json.dumps({"value": items}).encode())
    return received.accepted


def version_of(state: str) -> str:
    return state.split(".")[1]


async def rotate(world: FakeWorld, *workers: Worker) -> str:
    """The operator adds a version; each worker reads it once its cached one is `CURRENT_FOR` old."""
    version = await world.secrets.set(NOTIFICATION_KEY, new_key_value())
    for worker in workers:
        worker.time += CURRENT_FOR
    return version


async def test_a_renewal_keeps_the_subscription_and_the_version_it_names(
    world: FakeWorld,
) -> None:
    worker = Worker(world)
    await migrate(worker, world)
    first = await user(world)
    before = held(world)
    tenant = await world.tenants.get(TID)
    assert tenant is not None and first.subscription_id is not None

    renewed = await ensure_subscription(worker.services, tenant, first, force_new=False)

    assert renewed.subscription_id == first.subscription_id
    assert held(world) == before  # Graph kept the clientState: a PATCH changes only the expiry
    record = await world.subscription_index.get(first.subscription_id)
    current = await worker.keys.signing(NOTIFICATION_KEY)
    assert record is not None and record.key_version == current.version
    assert await notified(worker, world) == 4  # two calendars, two lists


async def test_a_rotation_then_a_renewal_still_takes_every_notification(world: FakeWorld) -> None:
    worker = Worker(world)
    await migrate(worker, world)
    first = await user(world)
    old = version_of(held(world)[first.subscription_id or ""])
    new = await rotate(world, worker)
    tenant = await world.tenants.get(TID)
    assert tenant is not None

    renewed = await ensure_subscription(worker.services, tenant, first, force_new=False)

    # Re-signed with the current version (a new subscription, the old one deleted after), never a PATCH
    # that leaves the index saying one version and Graph holding another.
    assert renewed.subscription_id not in (None, first.subscription_id)
    assert first.subscription_id not in world.mailboxes.subscriptions
    state = held(world)[renewed.subscription_id or ""]
    assert version_of(state) == new != old
    record = await world.subscription_index.get(renewed.subscription_id or "")
    assert record is not None and record.key_version == new
    assert await notified(worker, world) == 4  # the re-signed one, and those still on the previous version


async def test_two_rotations_move_every_subscription_before_its_version_is_disabled(world: FakeWorld) -> None:
    worker = Worker(world)
    await migrate(worker, world)
    versions = [version_of(s) for s in held(world).values()]
    assert len(set(versions)) == 1

    for _ in range(2):  # each rotation is followed by a run of the renewal timer (every few hours)
        current = await rotate(world, worker)
        await renew_tenant_subscriptions(worker.services, TID)
        ran = await run_all(worker, world)
        assert sorted((j.kind, j.reason) for j in ran if isinstance(j, (jobs.SyncUser, jobs.SyncTasks))) == [
            ("resubscribe", KEY_ROTATED),
            ("resubscribe", KEY_ROTATED),
            (TaskMode.RESUBSCRIBE, KEY_ROTATED),
            (TaskMode.RESUBSCRIBE, KEY_ROTATED),
        ]
        assert {version_of(s) for s in held(world).values()} == {current}
        records = await world.subscription_index.for_tenant(TID)
        assert sorted(r.subscription_id for r in records) == sorted(held(world))
        assert sorted((r.watches, r.key_version) for r in records) == sorted(
            [(Watched.EVENTS, current)] * 2 + [(Watched.TASKS, current)] * 2
        )
        versions.append(current)

    world.secrets.disabled.update(versions[:-1])  # the operator disables both older versions
    worker.time += CURRENT_FOR
    assert len(world.mailboxes.subscriptions) == 4
    assert await notified(worker, world) == 4
    await renew_tenant_subscriptions(worker.services, TID)  # nothing left to move
    assert not [j for j in world.jobs.take() if getattr(j, "reason", None) == KEY_ROTATED]


async def test_a_worker_with_an_older_cached_version_never_moves_subscriptions_back(world: FakeWorld) -> None:
    a, b = Worker(world), Worker(world)
    await migrate(a, world)
    await b.keys.signing(NOTIFICATION_KEY)  # b caches the first version
    current = await rotate(world, a)  # a reads the new one; b's cache is still young
    await renew_tenant_subscriptions(a.services, TID)
    await run_all(a, world)
    assert {version_of(s) for s in held(world).values()} == {current}

    b.time += FRESH_FOR  # b's cache, still current for signing, says the first version: it asks again
    await renew_tenant_subscriptions(b.services, TID)
    tenant = await world.tenants.get(TID)
    assert tenant is not None
    await ensure_subscription(b.services, tenant, await user(world), force_new=False)

    assert not [j for j in world.jobs.take() if getattr(j, "reason", None) == KEY_ROTATED]
    assert {version_of(s) for s in held(world).values()} == {current}


async def test_subscriptions_signed_by_two_workers_racing_the_first_key_end_on_one_version(
    world: FakeWorld,
) -> None:
    a, b = Worker(world), Worker(world)
    vault_a, vault_b = WorkerVault(world.secrets), WorkerVault(world.secrets, write_delay=0.01)
    a.keys = KeyRing(vault_a, monotonic=lambda: a.time)
    b.keys = KeyRing(vault_b, monotonic=lambda: b.time)
    a.services = replace(world.services, keys=a.keys)
    b.services = replace(world.services, keys=b.keys)
    race_first_reads(vault_a, vault_b)
    await asyncio.gather(a.keys.signing(NOTIFICATION_KEY), b.keys.signing(NOTIFICATION_KEY))
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    await run_all(a, world)
    await world.jobs.enqueue([jobs.migrate_user(TID, "s2")])
    await run_all(b, world)
    assert len({version_of(s) for s in held(world).values()}) == 2  # each worker signed with its own

    a.time += FRESH_FOR  # a later renewal-timer run, on either worker
    await renew_tenant_subscriptions(a.services, TID)
    await run_all(a, world)

    current = await world.secrets.current(NOTIFICATION_KEY)
    assert current is not None
    assert {version_of(s) for s in held(world).values()} == {current.version}
    assert await notified(a, world) == 4 and await notified(b, world) == 4


async def test_a_list_subscription_adopted_after_a_lost_run_is_resigned_at_the_next_renewal(
    world: FakeWorld,
) -> None:
    """A run died after Graph made the list's subscription and before indexing it; the next run meets
    Graph's 409 and adopts it. Its clientState names the version current when it was made, which the
    adopting run does not know: the index says none recorded, so the renewal timer re-signs it, and the
    operator can disable the old version without stranding it."""
    worker = Worker(world)
    await migrate(worker, world)
    first = await user(world)
    lost = first.task_sync.subscription_id
    assert lost is not None
    old = version_of(held(world)[lost])
    await world.subscription_index.delete(lost)  # the lost run: made in Graph, never indexed
    await world.users.save(replace(first, task_sync=replace(first.task_sync, subscription_id=None)))
    current = await rotate(world, worker)
    await world.jobs.enqueue([jobs.sync_tasks(TID, "s1", "lost", kind=TaskMode.RESUBSCRIBE)])
    await run_all(worker, world)

    adopted = (await user(world)).task_sync.subscription_id
    assert adopted == lost and version_of(held(world)[lost]) == old  # Graph kept the old clientState
    record = await world.subscription_index.get(lost)
    assert record is not None and record.key_version == VERSION_NOT_KNOWN  # not the current version

    await renew_tenant_subscriptions(worker.services, TID)
    await run_all(worker, world)
    assert {version_of(s) for s in held(world).values()} == {current}
    world.secrets.disabled.add(old)
    worker.time += CURRENT_FOR
    assert await notified(worker, world) == 4
