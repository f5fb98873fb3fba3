"""To Do tasks, Outlook to host, on fakes: migration linking, notifications, echoes, expired links, switches,
faults, renewal, lifecycle, resyncs and removal."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.domain.outlook_tasks import OutlookTask, TaskStatus
from shared.domain.signing import client_state
from shared.domain.tasks import TaskState
from shared.domain.tenants import ConflictPolicy, TenantState
from shared.domain.users import DirectoryUser, SyncState, UserRecord
from shared.service import jobs
from shared.service.commands import parse_staff_put
from shared.service.job_handlers import run_job
from shared.service.jobs import Job, SyncTasks, TaskMode
from shared.service.keys import NOTIFICATION_KEY
from shared.service.notifications import receive_changes, receive_lifecycle
from shared.service.records import Change, Watched
from shared.service.schedules import nightly_tenant, renew_tenant_subscriptions
from shared.service.staff_removal import remove_leftovers
from shared.service.sync import request_tenant_resync, request_user_resync
from shared.service.task_api import get_task, put_task
from shared.service.task_bodies import parse_task
from shared.service.task_statuses import note_deleted_task, note_written_task, tasks_scope
from shared.service.tenant_disconnect import begin_disconnect
from shared.service.tenant_settings import update_settings
from shared.service.users import put_staff, set_switches
from tests.fakes.calendar import throttled
from tests.fakes.directory import FakeOrganisation
from tests.fakes.events import event
from tests.fakes.outlook_tasks import edited, task
from tests.fakes.services import FakeWorld, add_tenant, fake_world, run_queued
from tests.fakes.todo import FakeTask

pytestmark = pytest.mark.unit

TID = "contoso.example"
DIRECTORY = "9188040d-6c67-4c5b-b112-36a304b66dad"


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.MIGRATING, directory_id=DIRECTORY, matched=2)
    for staff_id in ("s1", "s2"):
        await switch(w, staff_id, True)
    return w


async def switch(world: FakeWorld, staff_id: str, on: bool) -> None:
    user = await world.users.get(TID, staff_id)
    assert user is not None
    switches = user.staff.switches.changed({"tasks_from_outlook": on})
    await world.users.save(replace(user, staff=replace(user.staff, switches=switches)))


async def run_all(world: FakeWorld) -> list[Job]:
    return await run_queued(world)


def changes(world: FakeWorld, prefix: str = "task.") -> list[Change]:
    return [c for c in world.feed.entries.get(TID, []) if c.type.startswith(prefix)]


def about(world: FakeWorld) -> list[tuple[str, str, str | None]]:
    """The `task.created|updated|deleted` changes (not the outcomes of the host's writes, `task.synced`)."""
    return [
        (c.type, c.data["task"]["id"], c.data["task_id"])
        for c in changes(world)
        if c.type in ("task.created", "task.updated", "task.deleted")
    ]


async def user(world: FakeWorld, staff_id: str = "s1") -> UserRecord:
    found = await world.users.get(TID, staff_id)
    assert found is not None
    return found


async def list_id(world: FakeWorld, graph_user_id: str = "g1") -> str:
    """The user's connector list (found or made as a run would), as the fake To Do holds it."""
    return await world.todo.connector_list(graph_user_id, "Tasks from the host")


async def migrate(world: FakeWorld, *staff: str) -> None:
    await world.jobs.enqueue([jobs.migrate_user(TID, s) for s in staff])
    await run_all(world)


async def notify_tasks(world: FakeWorld, staff_id: str = "s1", *, forged: bool = False) -> None:
    key = await world.services.keys.signing(NOTIFICATION_KEY)
    found = await user(world, staff_id)
    assert found.graph_user_id is not None
    graph_user_id = found.graph_user_id
    watched = "" if forged else Watched.TASKS  # an events clientState never passes for a task subscription
    body = {
        "value": [
            {
                "subscriptionId": found.task_sync.subscription_id,
                "tenantId": DIRECTORY,
                "clientState": client_state(key.secret, key.version, DIRECTORY, graph_user_id, watched),
                "changeType": "updated",
                "resource": f"Users/{graph_user_id}/todo/lists/{found.task_sync.list_id}/tasks/T",
            }
        ]
    }
    received = await receive_changes(world.services, json.dumps(body).encode())
    await world.jobs.enqueue(received.jobs)


async def test_migration_links_the_hosts_tasks_announces_the_rest_and_counts_them(world: FakeWorld) -> None:
    lst = await list_id(world)
    hosts = world.todo.put("g1", lst, task("H", host_task_id="T-1"))
    staffs = world.todo.put("g1", lst, task("S", due=date(2026, 12, 5)))
    await migrate(world, "s1")
    assert about(world) == [("task.created", staffs.id, None)]
    assert changes(world)[0].data["task"]["due"] == "2026-12-05"
    migrated = next(c for c in world.feed.entries[TID] if c.type == "user.migrated" and c.staff_id == "s1")
    assert (migrated.data["tasks"], migrated.data["tasks_linked"]) == (2, 1)
    state = (await user(world)).task_sync
    assert (state.state, state.list_id, state.tasks) == (SyncState.SYNCED, lst, 2)
    assert state.delta_link and state.subscription_id
    assert world.todo.subscribed() == {("g1", lst)}
    statuses = world.item_statuses.rows[(TID, tasks_scope("s1"))]
    assert {g: s.appointment_id for g, s in statuses.items()} == {hosts.id: "T-1", staffs.id: None}
    # the calendar's own statuses are untouched by the list's
    assert (TID, "s1") not in world.item_statuses.rows or hosts.id not in world.item_statuses.rows[
        (TID, "s1")
    ]


async def test_a_staff_member_adds_edits_completes_reopens_moves_and_deletes_tasks(world: FakeWorld) -> None:
    await migrate(world, "s1")
    lst = (await user(world)).task_sync.list_id
    assert lst is not None
    added = world.todo.put("g1", lst, task("A", title="Call the supplier"))
    await notify_tasks(world)
    await run_all(world)
    edited = world.todo.put("g1", lst, replace(added, title="Call the supplier back"))
    await notify_tasks(world)
    await run_all(world)
    done = world.todo.put("g1", lst, replace(edited, status=TaskStatus.COMPLETED))
    await notify_tasks(world)
    await run_all(world)
    world.todo.put("g1", lst, replace(done, status=TaskStatus.IN_PROGRESS))
    moving = world.todo.put("g1", lst, task("M"))
    await notify_tasks(world)
    await run_all(world)
    world.todo.remove("g1", lst, added.id)
    world.todo.remove("g1", lst, moving.id, moved=True)
    await notify_tasks(world)
    await run_all(world)
    seen = [
        (c.type, c.data["task"]["id"], c.data["task"].get("status"), c.data.get("reason"))
        for c in changes(world)
    ]
    assert seen == [
        ("task.created", "A", "not_started", None),
        ("task.updated", "A", "not_started", None),
        ("task.updated", "A", "completed", None),
        ("task.updated", "A", "in_progress", None),
        ("task.created", "M", "not_started", None),
        ("task.deleted", "A", None, "deleted"),
        ("task.deleted", "M", None, "moved"),
    ]
    assert (await user(world)).task_sync.tasks == 0


async def test_duplicate_late_and_forged_notifications_announce_nothing_twice(world: FakeWorld) -> None:
    await migrate(world, "s1")
    lst = (await user(world)).task_sync.list_id
    assert lst is not None
    world.todo.put("g1", lst, task("A"))
    for _ in range(3):
        await notify_tasks(world)
    await run_all(world)
    await notify_tasks(world)  # late: nothing new
    await run_all(world)
    assert about(world) == [("task.created", "A", None)]
    await notify_tasks(world, forged=True)
    assert world.jobs.take() == []


async def test_the_connectors_own_writes_never_come_back(world: FakeWorld) -> None:
    await migrate(world, "s1")
    lst = (await user(world)).task_sync.list_id
    assert lst is not None
    written = world.todo.put("g1", lst, task("W", host_task_id="T-7", title="Quote"))
    await note_written_task(world.item_statuses, TID, "s1", written.id, written.change_key or "", "T-7")
    await notify_tasks(world)
    await run_all(world)
    rewritten = world.todo.put("g1", lst, replace(written, title="Quote v2"))
    # the write's further steps (checklist items) move the change key on before the delta reads it
    await note_written_task(world.item_statuses, TID, "s1", rewritten.id, rewritten.change_key or "", "T-7")
    rewritten = world.todo.put("g1", lst, rewritten)
    await notify_tasks(world)
    await run_all(world)
    assert changes(world) == []
    # the staff member completes the host's task in To Do: the host hears it, with its task id
    world.todo.put("g1", lst, replace(rewritten, status=TaskStatus.COMPLETED))
    await notify_tasks(world)
    await run_all(world)
    assert about(world) == [("task.updated", "W", "T-7")]
    # the connector deletes it (the host deleted its task): no change either
    world.todo.remove("g1", lst, "W")
    await note_deleted_task(world.item_statuses, TID, "s1", "W")
    await notify_tasks(world)
    await run_all(world)
    assert about(world) == [("task.updated", "W", "T-7")]


async def test_an_expired_delta_link_reads_the_list_again_without_duplicates(world: FakeWorld) -> None:
    lst = await list_id(world)
    kept = world.todo.put("g1", lst, task("K"))
    gone = world.todo.put("g1", lst, task("G"))
    await migrate(world, "s1")
    world.todo.expire_tokens("g1", lst)
    world.todo.put("g1", lst, replace(kept, title="Kept, renamed"))
    world.todo.remove("g1", lst, gone.id)
    world.todo.put("g1", lst, task("N"))
    await notify_tasks(world)
    await run_all(world)
    assert sorted(about(world)) == sorted(
        [
            ("task.created", "K", None),
            ("task.created", "G", None),
            ("task.updated", "K", None),
            ("task.deleted", "G", None),
            ("task.created", "N", None),
        ]
    )
    await notify_tasks(world)
    await run_all(world)
    assert len(changes(world)) == 5


async def test_switched_off_the_list_is_not_read_and_on_again_it_catches_up_once(world: FakeWorld) -> None:
    await migrate(world, "s1")
    lst = (await user(world)).task_sync.list_id
    assert lst is not None
    before = (await user(world)).task_sync
    await set_switches(world.services, TID, ["s1"], {"tasks_from_outlook": False})
    await run_all(world)
    made = world.todo.put("g1", lst, task("OFF"))
    requests = world.todo.requests
    await notify_tasks(world)
    await run_all(world)
    assert changes(world) == [] and world.todo.requests == requests
    assert (await user(world)).task_sync.delta_link == before.delta_link  # kept as it was
    await set_switches(world.services, TID, ["s1"], {"tasks_from_outlook": True})
    await run_all(world)
    assert about(world) == [("task.created", made.id, None)]
    await set_switches(world.services, TID, ["s1"], {"tasks_from_outlook": True})
    await notify_tasks(world)
    await run_all(world)
    assert len(changes(world)) == 1


async def test_a_list_that_cannot_be_read_is_the_users_task_error_and_calendar_sync_goes_on(
    world: FakeWorld,
) -> None:
    lst = await list_id(world)
    world.todo.task_list("g1", lst).faults.append(throttled(1))
    await migrate(world, "s1")
    assert (await user(world)).sync_state is SyncState.SYNCED  # the calendar migrated
    assert any(c.type == "user.migrated" for c in world.feed.entries[TID])
    world.todo.task_list("g1", lst).faults.clear()
    await run_all(world)  # the throttled list's own job, retried
    assert (await user(world)).task_sync.state is SyncState.SYNCED
    from shared.service.errors import MailboxUnavailable

    world.todo.task_list("g1", lst).faults.append(MailboxUnavailable("the list is gone"))
    await world.jobs.enqueue([jobs.sync_tasks(TID, "s1", kind=TaskMode.RESYNC)])
    await run_all(world)
    found = await user(world)
    assert found.task_sync.state is SyncState.ERROR and found.task_sync.last_error == "the list is gone"
    assert found.sync_state is SyncState.SYNCED and found.last_error is None


async def test_the_renewal_timer_renews_and_recreates_task_subscriptions(world: FakeWorld) -> None:
    await migrate(world, "s1", "s2")
    first = (await user(world)).task_sync.subscription_id
    assert first is not None
    world.clock.advance(hours=52)  # within a day of the expiry (`TASK_LIFETIME`, 70 hours)
    await renew_tenant_subscriptions(world.services, TID)
    await run_all(world)
    renewed = (await user(world)).task_sync
    assert renewed.subscription_id == first
    assert renewed.subscription_expires_at is not None
    assert renewed.subscription_expires_at > world.clock.now() + timedelta(hours=40)
    world.mailboxes.subscriptions.pop(first)  # Graph dropped it without a word (no lifecycle for tasks)
    await renew_tenant_subscriptions(world.services, TID)
    await run_all(world)
    recreated = (await user(world)).task_sync.subscription_id
    assert recreated not in (None, first)
    record = await world.subscription_index.get(recreated)
    assert record is not None and record.watches is Watched.TASKS


async def test_reauthorization_of_a_task_subscription_renews_it(world: FakeWorld) -> None:
    await migrate(world, "s1")
    found = await user(world)
    key = await world.services.keys.signing(NOTIFICATION_KEY)
    body = {
        "value": [
            {
                "subscriptionId": found.task_sync.subscription_id,
                "tenantId": DIRECTORY,
                "clientState": client_state(key.secret, key.version, DIRECTORY, "g1", Watched.TASKS),
                "lifecycleEvent": "reauthorizationRequired",
            }
        ]
    }
    received = await receive_lifecycle(world.services, json.dumps(body).encode())
    assert [(j.kind, j.staff_id) for j in received.jobs] == [(TaskMode.RENEW, "s1")]
    events_state = client_state(key.secret, key.version, DIRECTORY, "g1")
    forged = {"value": [{**body["value"][0], "clientState": events_state}]}
    assert (await receive_lifecycle(world.services, json.dumps(forged).encode())).jobs == []


async def test_resyncs_and_the_nightly_run_read_each_list_whole(world: FakeWorld) -> None:
    await migrate(world, "s1", "s2")
    await switch(world, "s2", False)
    await request_user_resync(world.services, TID, "s1")
    queued = world.jobs.take()
    assert [(j.kind, j.staff_id) for j in queued if isinstance(j, jobs.SyncTasks)] == [
        (TaskMode.RESYNC, "s1")
    ]
    await request_tenant_resync(world.services, TID)
    queued = world.jobs.take()
    assert [j.staff_id for j in queued if isinstance(j, jobs.SyncTasks)] == ["s1"]
    await nightly_tenant(world.services, TID)
    queued = world.jobs.take()
    assert [(j.kind, j.staff_id) for j in queued if isinstance(j, jobs.SyncTasks)] == [
        (TaskMode.RESYNC, "s1")
    ]


async def test_a_deleted_staff_members_task_subscription_and_statuses_go(world: FakeWorld) -> None:
    lst = await list_id(world)
    world.todo.put("g1", lst, task("A"))
    await migrate(world, "s1")
    subscription = (await user(world)).task_sync.subscription_id
    await world.users.delete(TID, "s1")
    await remove_leftovers(world.services, jobs.remove_staff(TID, "s1"))
    assert subscription not in world.mailboxes.subscriptions
    assert await world.subscription_index.get(subscription or "") is None
    assert (TID, tasks_scope("s1")) not in world.item_statuses.rows


async def test_a_disconnect_removes_the_task_subscriptions_and_the_lists_state(world: FakeWorld) -> None:
    lst = await list_id(world)
    world.todo.put("g1", lst, task("A"))
    await migrate(world, "s1", "s2")
    assert len(world.todo.subscribed()) == 2
    assert [c.data["task"]["id"] for c in changes(world) if c.type == "task.created"] == ["A"]
    await begin_disconnect(world.services, TID)
    await run_all(world)
    assert world.todo.subscribed() == set()
    assert (TID, tasks_scope("s1")) not in world.item_statuses.rows
    assert world.subscription_index.rows == {}
    world.todo.put("g1", lst, task("B"))  # what was in To Do stays; nothing more is read
    await world.jobs.enqueue([jobs.sync_tasks(TID, "s1")])
    await run_all(world)
    # the disconnect cleared the feed (its numbering kept): nothing was announced about B since
    assert [c.data["task"]["id"] for c in changes(world) if c.type == "task.created"] == []


async def test_a_list_that_cannot_be_made_is_a_reason_on_the_user_and_the_calendar_migrates(
    world: FakeWorld,
) -> None:
    world.todo.fail("create_list", "refused")
    await migrate(world, "s1")
    found = await user(world)
    assert found.sync_state is SyncState.SYNCED and found.last_error is None
    assert found.task_sync.state is SyncState.ERROR
    assert found.task_sync.last_error and "cannot be found or made" in found.task_sync.last_error
    assert found.todo_list_reason == found.task_sync.last_error
    migrated = next(c for c in world.feed.entries[TID] if c.type == "user.migrated" and c.staff_id == "s1")
    assert "tasks" not in migrated.data  # the list was not read
    await world.jobs.enqueue([jobs.sync_tasks(TID, "s1", kind=TaskMode.RESYNC)])  # made this time
    await run_all(world)
    assert (await user(world)).task_sync.state is SyncState.SYNCED


async def test_a_list_made_at_migration_costs_its_own_save_and_no_lost_race(world: FakeWorld) -> None:
    """A list made at migration is saved at once (two workers making one keep the first stored); the
    calendar's final save then starts from that row, so it never meets its own migration's save as a
    conflict (a refused write and a read again)."""
    await switch(world, "s2", False)
    world.users.requests.clear()
    await migrate(world, "s1", "s2")
    assert world.users.requests[TID, "s1"] == world.users.requests[TID, "s2"] + 2  # the list's read and save
    s1 = await user(world)
    assert s1.todo_list_id is not None and s1.task_sync.list_id == s1.todo_list_id
    assert (s1.sync_state, s1.task_sync.state) == (SyncState.SYNCED, SyncState.SYNCED)


async def test_a_migrating_list_costs_the_user_row_no_read_or_save_of_its_own(world: FakeWorld) -> None:
    """The list's id and task state ride on the calendar's final save: a user migrating with the list
    reads and saves its row as often as one without."""
    await switch(world, "s2", False)
    lst = await list_id(world)
    world.todo.put("g1", lst, task("S"))
    world.users.requests.clear()
    await migrate(world, "s1", "s2")
    assert world.users.requests[TID, "s1"] == world.users.requests[TID, "s2"]
    s1 = await user(world)
    assert (s1.todo_list_id, s1.task_sync.list_id, s1.task_sync.state) == (lst, lst, SyncState.SYNCED)
    assert s1.task_sync.subscription_id and s1.task_sync.delta_link and s1.task_sync.tasks == 1
    assert (await user(world, "s2")).task_sync.state is SyncState.PENDING


async def test_a_migration_publishes_the_lists_changes_with_the_calendars_in_one_append(
    world: FakeWorld,
) -> None:
    """The list's announcement, stored with its statuses, is published by the calendar's run with its own:
    one feed append (the list's changes first, `user.migrated` last, the sequences contiguous), so one
    delivery range; the list's pull in the message monitor names its changes' sequences."""
    lst = await list_id(world)
    for n in range(3):
        world.todo.put("g1", lst, task(f"S{n}"))
    world.mailboxes.put("g1", event("Planning"))
    appended: list[list[str]] = []
    append = world.feed.append

    async def recording(tenant_id: str, changes: Any, *, key: str | None = None) -> Any:
        appended.append([c.type for c in changes])
        return await append(tenant_id, changes, key=key)

    world.feed.append = recording  # type: ignore[method-assign]
    await migrate(world, "s1")
    mine = [c for c in world.feed.entries[TID] if c.staff_id == "s1"]
    assert [c.type for c in mine] == [*["task.created"] * 3, "event.created", "user.migrated"]
    numbers = [c.sequence or 0 for c in mine]
    assert numbers == list(range(numbers[0], numbers[0] + len(mine)))
    assert appended[-2:] == [["task.created"] * 3, ["event.created", "user.migrated"]]
    [pull] = [m for m in world.messages.rows.values() if m.kind == "tasks_migrate"]
    assert pull.detail["sequences"] == numbers[:3]


async def test_a_task_job_during_the_migration_is_caught_up_by_the_migrations_run_once(
    world: FakeWorld,
) -> None:
    """The migration's calendar run holds the list's lease with its own: a task job meanwhile (a staff
    member added a task, Graph notified) is deferred, and the run reads the list once more before it lets
    go, not the deferred job's check-back minutes later. Nothing is announced twice."""
    lst = await list_id(world)
    staffs = world.todo.put("g1", lst, task("S"))
    read = world.todo.read_tasks_delta
    added: list[FakeTask] = []

    async def added_after_the_read(*args: Any, **kwargs: Any) -> Any:
        found = await read(*args, **kwargs)
        if not added:
            added.append(world.todo.put("g1", lst, task("A")))
            await run_job(world.services, jobs.sync_tasks(TID, "s1", "notified"))
        return found

    world.todo.read_tasks_delta = added_after_the_read  # type: ignore[method-assign]
    await run_job(world.services, jobs.migrate_user(TID, "s1"))

    assert about(world) == [("task.created", staffs.id, None), ("task.created", added[0].id, None)]
    assert world.leases.rows == {}
    check_backs = [j for j in world.jobs.take() if isinstance(j, SyncTasks)]
    assert [j.check_back for j in check_backs] == [1]  # the deferred job's, which finds nothing new
    await world.jobs.enqueue(check_backs)
    await run_all(world)
    assert len(about(world)) == 2
    kinds = sorted(m.kind for m in world.messages.rows.values() if m.kind.startswith("tasks_"))
    assert kinds == ["tasks_migrate", "tasks_notification", "tasks_notification"]  # catch-up, check-back


def raising(error: Exception) -> Any:
    """A port's method that fails (storage or the feed down)."""

    async def refuse(*args: object, **kwargs: object) -> None:
        raise error

    return refuse


async def failing_migration(world: FakeWorld, error: type[Exception]) -> None:
    """s1's migration, failing with `error` (a port made to raise)."""
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    with pytest.raises(error):
        await run_all(world)


async def test_a_migration_whose_feed_fails_publishes_each_change_once_on_the_retry(world: FakeWorld) -> None:
    """The feed refuses the migration's append, and its clean-up's too: the list's announcement stays
    stored with its statuses, and the retry publishes it (and the calendar's, `user.migrated` with them)
    exactly once."""
    lst = await list_id(world)
    staffs = world.todo.put("g1", lst, task("S"))
    world.mailboxes.put("g1", event("Planning"))
    append = world.feed.append
    world.feed.append = raising(ConnectionError("the feed is down"))  # type: ignore[method-assign]
    await failing_migration(world, ConnectionError)
    assert about(world) == []
    assert (TID, tasks_scope("s1")) in world.item_statuses.announcements  # stored with its statuses
    world.feed.append = append  # type: ignore[method-assign]
    await migrate(world, "s1")
    assert about(world) == [("task.created", staffs.id, None)]
    mine = [c.type for c in world.feed.entries[TID] if c.staff_id == "s1"]
    assert sorted(mine) == ["event.created", "task.created", "user.migrated"]


async def test_a_migration_failing_after_its_list_was_read_keeps_the_lists_state(world: FakeWorld) -> None:
    """Should the calendar's run fail after the list's run (here its busy index cannot be stored, before it
    published the list's announcement), its clean-up publishes the list's changes, lets go of both leases
    and saves the list's state on its own: the retry neither subscribes the list again nor announces its
    tasks twice."""
    lst = await list_id(world)
    staffs = world.todo.put("g1", lst, task("S"))
    failing = world.busy.write_index
    world.busy.write_index = raising(RuntimeError("storage is down"))  # type: ignore[method-assign]
    await failing_migration(world, RuntimeError)
    first = (await user(world)).task_sync
    assert (first.list_id, first.state) == (lst, SyncState.SYNCED) and first.subscription_id
    assert about(world) == [("task.created", staffs.id, None)]
    assert (TID, tasks_scope("s1")) not in world.item_statuses.announcements  # published and cleared
    assert not world.leases.rows  # the calendar's lease and the list's: let go
    world.busy.write_index = failing  # type: ignore[method-assign]
    await migrate(world, "s1")
    assert (await user(world)).task_sync.subscription_id == first.subscription_id
    assert about(world) == [("task.created", staffs.id, None)]


async def test_a_migration_failing_with_its_lists_save_raises_its_own_error_and_recovers(
    world: FakeWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """The calendar's run fails after the list's run, and the list's own save fails too: the calendar's
    error is the job's, the lost save is logged; the retry finds the list by name, its stored statuses
    (nothing announced twice) and its subscription (no second one on the list)."""
    lst = await list_id(world)
    staffs = world.todo.put("g1", lst, task("S"))
    failing_index, saving = world.busy.write_index, world.users.save

    async def refusing_the_list(record: UserRecord, *args: Any, **kwargs: Any) -> Any:
        if record.task_sync.list_id:
            raise ConnectionError("the list's save was lost")
        return await saving(record, *args, **kwargs)

    world.busy.write_index = raising(RuntimeError("storage is down"))  # type: ignore[method-assign]
    world.users.save = refusing_the_list  # type: ignore[method-assign]
    await failing_migration(world, RuntimeError)
    assert (await user(world)).task_sync.list_id is None  # the list's state was not saved: and it says so
    lost = "was not saved or announced in full (the list's save was lost)"
    assert any(lost in r.getMessage() for r in caplog.records)
    world.busy.write_index, world.users.save = failing_index, saving  # type: ignore[method-assign]
    await migrate(world, "s1")
    synced = (await user(world)).task_sync
    assert (synced.list_id, synced.state) == (lst, SyncState.SYNCED) and synced.subscription_id
    assert about(world) == [("task.created", staffs.id, None)]
    held = [s for _, s, _ in world.mailboxes.subscriptions.values() if f"/todo/lists/{lst}/" in s.resource]
    assert len(held) == 1


async def hosts_task_seen(world: FakeWorld, policy: ConflictPolicy, *, privacy: bool = False) -> OutlookTask:
    """The tenant's policy set, s1 migrated, the host's task T-1 written to To Do and its echo read: the To
    Do task as the list reads it (the one To Do the write went to)."""
    tenant = await world.tenants.get(TID)
    assert tenant is not None
    settings = replace(tenant.settings, conflict_policy=policy, privacy_mode=privacy)
    await world.tenants.save(replace(tenant, settings=settings))
    await migrate(world, "s1")
    await put_task(world.services, TID, parse_task("T-1", {"staff_id": "s1", "title": "Secret quote"}))
    await run_all(world)
    record = await world.tasks.get(TID, "T-1")
    assert record is not None and record.graph_task_id and record.list_id
    seen = world.todo.task_list("g1", record.list_id).tasks[record.graph_task_id].outlook(None)
    assert (seen.host_task_id, seen.title) == ("T-1", "Secret quote")
    await notify_tasks(world)
    await run_all(world)
    assert about(world) == [] and told(world) == []  # the connector's own write
    return seen


def in_todo(world: FakeWorld) -> FakeTask:
    [written] = world.todo.tasks_in("g1", "Tasks from the host")
    return written


def told(world: FakeWorld) -> list[dict[str, Any]]:
    return [c.data for c in changes(world, "task.changed_in_outlook")]


@pytest.mark.parametrize("privacy", [False, True])
async def test_under_host_wins_the_hosts_task_changed_in_to_do_is_written_again(
    world: FakeWorld, privacy: bool
) -> None:
    seen = await hosts_task_seen(world, ConflictPolicy.HOST_WINS, privacy=privacy)
    before = in_todo(world).version
    world.todo.put("g1", seen_list(world), edited(seen, status=TaskStatus.COMPLETED, title="Mine now"))
    await notify_tasks(world)
    await run_all(world)
    [data] = told(world)
    assert (data["task_id"], data["change"], data["resolution"]) == ("T-1", "updated", "reverted")
    assert data["task"]["status"] == "completed"
    if privacy:
        assert set(data["task"]) == {"id", "status", "due", "start", "completed_at"}
        assert "Mine now" not in str(data)
    assert about(world) == []  # no task.updated beside it
    assert in_todo(world).version > before and in_todo(world).draft.status == "notStarted"
    assert (await get_task(world.services, TID, "T-1")).state is TaskState.SYNCED


async def test_under_host_wins_the_hosts_task_deleted_in_to_do_is_made_again(world: FakeWorld) -> None:
    seen = await hosts_task_seen(world, ConflictPolicy.HOST_WINS)
    world.todo.remove("g1", seen_list(world), seen.id)  # the staff member deletes it
    await notify_tasks(world)
    await run_all(world)
    [data] = told(world)
    assert (data["change"], data["resolution"], data["task"]) == ("deleted", "recreated", None)
    remade = in_todo(world)
    assert remade.id != seen.id and remade.draft.title == "Secret quote"
    assert (await get_task(world.services, TID, "T-1")).graph_task_id == remade.id


async def test_under_outlook_wins_the_change_is_kept_and_the_host_told(world: FakeWorld) -> None:
    seen = await hosts_task_seen(world, ConflictPolicy.OUTLOOK_WINS)
    listed = seen_list(world)
    world.todo.put("g1", listed, edited(seen, status=TaskStatus.COMPLETED))
    world.todo.remove("g1", listed, seen.id, moved=True)
    await notify_tasks(world)
    await run_all(world)
    assert [(d["change"], d["resolution"]) for d in told(world)] == [("moved", "kept")]
    assert world.todo.tasks_in("g1", "Tasks from the host") == []  # nothing made again
    assert not [j for j in world.jobs.take() if isinstance(j, jobs.WriteTask)]


def seen_list(world: FakeWorld) -> str:
    [list_id] = [lst.id for lst in world.todo.mailbox("g1").values() if lst.tasks or lst.log]
    return list_id


def reasons(world: FakeWorld) -> dict[str, str]:
    return {c.data["task"]["id"]: c.data["reason"] for c in changes(world) if c.type == "task.deleted"}


async def test_a_list_renamed_for_the_staff_member_is_followed_at_once_and_their_tasks_left_moved(
    world: FakeWorld,
) -> None:
    old = await list_id(world)
    mine = world.todo.put("g1", old, task("S"))
    await migrate(world, "s1")
    people = {"g1": DirectoryUser("g1", "user1@contoso.example", "user1@contoso.example", (), True)}
    world.directory.add(FakeOrganisation(DIRECTORY, {TID}, people, consented=True))
    found = await user(world)
    staff, switches = parse_staff_put("s1", {"email": found.staff.email, "todo_list_name": "ERP+"})
    await put_staff(world.services, TID, staff, switches)
    await run_all(world)  # no notification, no nightly run: the rename's own job
    state = (await user(world)).task_sync
    new = await world.todo.connector_list("g1", "ERP+")
    assert state.list_id == new != old and world.todo.subscribed() == {("g1", new)}
    assert reasons(world) == {mine.id: "moved"}


async def test_a_list_renamed_for_the_tenant_is_followed_at_once(world: FakeWorld) -> None:
    old = await list_id(world, "g2")
    mine = world.todo.put("g2", old, task("S2"))
    await migrate(world, "s1", "s2")
    await update_settings(world.services, TID, {"todo_list_name": "From the ERP"})
    await run_all(world)
    new = await world.todo.connector_list("g2", "From the ERP")
    assert (await user(world, "s2")).task_sync.list_id == new != old
    assert ("g2", new) in world.todo.subscribed() and ("g2", old) not in world.todo.subscribed()
    assert reasons(world) == {mine.id: "moved"}


@pytest.mark.parametrize("policy", [ConflictPolicy.HOST_WINS, ConflictPolicy.OUTLOOK_WINS])
async def test_the_hosts_task_completed_in_to_do_reaches_the_host_and_stays_completed(
    world: FakeWorld, policy: ConflictPolicy
) -> None:
    seen = await hosts_task_seen(world, policy)
    before = in_todo(world).version
    done_at = datetime(2026, 12, 4, 16, 30, tzinfo=UTC)
    world.todo.put("g1", seen_list(world), edited(seen, status=TaskStatus.COMPLETED, completed_at=done_at))
    await notify_tasks(world)
    await run_all(world)
    assert told(world) == []  # staff's progress is no conflict, under either policy
    [updated] = [c.data for c in changes(world, "task.updated")]
    assert (updated["task_id"], updated["task"]["status"]) == ("T-1", "completed")
    # nothing written back: the staff member's edit is the last, and it stays completed
    assert (in_todo(world).version, in_todo(world).draft.status) == (before + 1, "completed")
    assert (await get_task(world.services, TID, "T-1")).state is TaskState.SYNCED


PRIVATE_TASK = {"id", "status", "due", "start", "completed_at"}


async def test_in_privacy_mode_task_changes_carry_ids_status_and_days_only(world: FakeWorld) -> None:
    tenant = await world.tenants.get(TID)
    assert tenant is not None
    await world.tenants.save(replace(tenant, settings=replace(tenant.settings, privacy_mode=True)))
    lst = await list_id(world)
    secret = task("A", title="Salary review", body="Confidential", due=date(2026, 12, 7))
    world.todo.put("g1", lst, secret)
    await migrate(world, "s1")
    world.todo.put("g1", lst, task("A", title="Salary review: Ann", status=TaskStatus.COMPLETED))
    await notify_tasks(world)
    await run_all(world)
    told_of = [(c.type, c.data["task_id"], c.data["task"]) for c in changes(world)]
    assert [(kind, task_id, set(shown)) for kind, task_id, shown in told_of] == [
        ("task.created", None, PRIVATE_TASK),
        ("task.updated", None, PRIVATE_TASK),
    ]
    assert [shown["status"] for _, _, shown in told_of] == ["not_started", "completed"]
    assert told_of[0][2]["due"] == "2026-12-07"
    assert "Salary" not in str(told_of) and "Confidential" not in str(told_of)


async def test_in_privacy_mode_the_hosts_task_completed_in_to_do_carries_no_words(world: FakeWorld) -> None:
    seen = await hosts_task_seen(world, ConflictPolicy.OUTLOOK_WINS, privacy=True)
    world.todo.put("g1", seen_list(world), edited(seen, status=TaskStatus.COMPLETED))
    await notify_tasks(world)
    await run_all(world)
    [updated] = [c.data for c in changes(world, "task.updated")]
    assert updated["task_id"] == "T-1" and set(updated["task"]) == PRIVATE_TASK
    assert updated["task"]["status"] == "completed" and "Secret" not in str(updated)


async def test_a_migrating_list_is_found_and_subscribed_while_the_calendar_reads(world: FakeWorld) -> None:
    lst = await list_id(world)
    read_delta = world.mailboxes.read_delta
    reading, go_on = asyncio.Event(), asyncio.Event()

    async def slow_read(*args: Any, **kwargs: Any) -> Any:
        reading.set()
        await go_on.wait()  # Graph's latency on the window's pages
        return await read_delta(*args, **kwargs)

    world.mailboxes.read_delta = slow_read  # type: ignore[method-assign]
    migration = asyncio.ensure_future(migrate(world, "s1"))
    await asyncio.wait_for(reading.wait(), 5)
    for _ in range(100):
        if ("g1", lst) in world.todo.subscribed():
            break
        await asyncio.sleep(0)
    subscribed_while_reading = ("g1", lst) in world.todo.subscribed()
    go_on.set()
    await asyncio.wait_for(migration, 5)
    assert subscribed_while_reading
    assert (await user(world)).task_sync.list_id == lst
