"""Deleting a staff member leaves nothing of them behind, against fakes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.domain.signing import client_state
from shared.domain.tenants import TenantState
from shared.service import jobs
from shared.service import users as svc
from shared.service.errors import NotFound
from shared.service.jobs import RemoveStaff
from shared.service.keys import NOTIFICATION_KEY
from shared.service.notifications import receive_changes
from shared.service.staff_removal import run_remove_staff
from tests.fakes.events import event
from tests.fakes.services import FakeWorld, add_tenant, fake_world
from tests.unit.service.test_sync import DIRECTORY, TID, feed, migrate, run_all

pytestmark = pytest.mark.unit


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.MIGRATING, directory_id=DIRECTORY, matched=2)
    w.mailboxes.put("g1", event("A"))
    w.mailboxes.put("g2", event("B"))
    await migrate(w, "s1", "s2")
    return w


def left_of(world: FakeWorld, staff_id: str, graph_user_id: str) -> dict[str, object]:
    """Everything any store still holds of one user: empty when nothing is left."""
    left: dict[str, object] = {
        "user": world.users.rows.get((TID, staff_id)),
        "graph subscriptions": [
            sid for sid, (user, _, _) in world.mailboxes.subscriptions.items() if user == graph_user_id
        ],
        "subscription index": [r for r in world.subscription_index.rows.values() if r.staff_id == staff_id],
        "item statuses": world.item_statuses.rows.get((TID, staff_id)),
        "item notes": world.item_statuses.notes.get((TID, staff_id)),
        "busy index": world.busy.indexes.get((TID, staff_id)),
        "working hours": world.busy.hours.get((TID, staff_id)),
        "holds": world.busy.holds.get((TID, staff_id)),
        "lease": world.leases.rows.get(f"{TID}/{staff_id}"),
    }
    return {store: rows for store, rows in left.items() if rows}


async def test_a_deleted_staff_member_leaves_nothing_and_the_others_keep_everything(
    world: FakeWorld,
) -> None:
    kept = left_of(world, "s2", "g2")
    assert left_of(world, "s1", "g1").keys() >= {"user", "graph subscriptions", "subscription index"}
    await svc.delete_staff(world.services, TID, "s1")
    await run_all(world)
    assert left_of(world, "s1", "g1") == {}
    assert left_of(world, "s2", "g2") == kept
    with pytest.raises(NotFound):
        await svc.delete_staff(world.services, TID, "s1")


async def notify_subscription(world: FakeWorld, subscription_id: str, graph_user_id: str) -> None:
    key = await world.services.keys.signing(NOTIFICATION_KEY)
    item = {
        "subscriptionId": subscription_id,
        "tenantId": DIRECTORY,
        "clientState": client_state(key.secret, key.version, DIRECTORY, graph_user_id),
        "changeType": "created",
        "resource": f"Users/{graph_user_id}/Events/C",
    }
    received = await receive_changes(world.services, json.dumps({"value": [item]}).encode())
    await world.jobs.enqueue(received.jobs)


async def test_a_notification_arriving_during_the_deletion_is_dropped(world: FakeWorld) -> None:
    subscription_id = world.users.rows[(TID, "s1")].subscription_id
    assert subscription_id is not None
    await svc.delete_staff(world.services, TID, "s1")
    [cleanup] = world.jobs.take()
    assert isinstance(cleanup, RemoveStaff) and cleanup.subscription_id == subscription_id
    world.mailboxes.put("g1", event("C"))
    await notify_subscription(world, subscription_id, "g1")  # Graph still notifies until the clean-up ran
    before = feed(world, "s1")
    await run_all(world)  # the notification's job finds no row: no sync, no new subscription
    assert feed(world, "s1") == before
    assert left_of(world, "s1", "g1").keys() == {"graph subscriptions", "subscription index", "item statuses"}
    assert world.users.rows.get((TID, "s1")) is None
    await world.jobs.enqueue([cleanup])
    await run_all(world)
    assert left_of(world, "s1", "g1") == {}


async def test_a_clean_up_that_died_midway_completes_when_redelivered(
    world: FakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    await svc.delete_staff(world.services, TID, "s1")
    [cleanup] = world.jobs.take()
    assert isinstance(cleanup, RemoveStaff)

    async def worker_dies(tenant_id: str, staff_id: str) -> None:
        raise RuntimeError("worker killed")

    monkeypatch.setattr(world.item_statuses, "delete_user", worker_dies)
    with pytest.raises(RuntimeError):
        await run_remove_staff(world.services, cleanup)
    assert left_of(world, "s1", "g1").keys() == {"item statuses"}  # the subscription went first
    monkeypatch.undo()
    await run_remove_staff(world.services, cleanup)  # the queue redelivers the message
    await run_remove_staff(world.services, cleanup)  # and once more: nothing left to do
    assert left_of(world, "s1", "g1") == {}
    assert left_of(world, "s2", "g2").keys() >= {"user", "graph subscriptions", "item statuses"}


async def test_the_clean_up_waits_for_a_sync_run_under_way(world: FakeWorld) -> None:
    now = world.clock.now()
    await world.leases.acquire(f"{TID}/s1", "syncing-worker", timedelta(minutes=2), now)
    await svc.delete_staff(world.services, TID, "s1")
    [cleanup] = world.jobs.take()
    assert isinstance(cleanup, RemoveStaff)
    await run_remove_staff(world.services, cleanup)
    [waiting] = world.jobs.take()
    assert isinstance(waiting, RemoveStaff) and waiting.delay_seconds > 120
    assert "graph subscriptions" in left_of(world, "s1", "g1")  # untouched while the run may still write
    assert await world.leases.release(f"{TID}/s1", "syncing-worker") is True  # asked to run once more
    assert await world.leases.release(f"{TID}/s1", "syncing-worker") is False
    await run_remove_staff(world.services, waiting)
    assert left_of(world, "s1", "g1") == {}


async def test_a_staff_member_added_back_before_the_clean_up_keeps_what_they_have(world: FakeWorld) -> None:
    record = world.users.rows[(TID, "s1")]
    await svc.delete_staff(world.services, TID, "s1")
    [cleanup] = world.jobs.take()
    assert isinstance(cleanup, RemoveStaff)
    await world.users.save(replace(record, etag=None))  # added back (as a PUT of the staff would)
    await world.jobs.enqueue([jobs.sync_user(TID, "s1")])
    await run_all(world)
    kept = left_of(world, "s1", "g1")
    await run_remove_staff(world.services, cleanup)
    assert left_of(world, "s1", "g1") == kept
