"""The message monitor against fakes: what each direction records, the listing's filters and bad input,
retrying a failed message, hold and release of deliveries, and pruning by age."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shared.domain.tasks import TaskState
from shared.domain.tenants import TenantSettings, TenantState
from shared.domain.users import DirectoryUser
from shared.service import jobs
from shared.service.appointment_api import put_appointment
from shared.service.commands import parse_settings
from shared.service.deliveries import deliver_changes, hold_delivery, hold_state, release_delivery
from shared.service.delivery_policy import DeliveryPolicy
from shared.service.errors import Conflict, DeliveryFailed, InvalidInput, NotFound
from shared.service.job_handlers import run_job
from shared.service.jobs import Deliver, Job, TaskMode
from shared.service.keys import HOST_WEBHOOK_SECRET
from shared.service.messages import fan_out_pruning, list_messages, parse_message_query, retry_message
from shared.service.monitor import Direction, MessageQuery, MessageStatus, MonitoredMessage
from shared.service.records import Change
from shared.service.task_api import get_task, put_task
from shared.service.task_bodies import parse_task
from shared.service.user_detail import delete_user_subscription, rematch_user, user_detail
from shared.service.users import delete_staff
from tests.fakes.calendar import throttled
from tests.fakes.directory import FakeOrganisation
from tests.fakes.events import event
from tests.fakes.outlook_tasks import task
from tests.fakes.services import FakeWorld, add_tenant, fake_world
from tests.unit.service.test_appointments import intake

pytestmark = pytest.mark.unit

TID = "contoso.example"
POLICY = DeliveryPolicy(max_attempts=2, max_batch=100)


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, matched=2)
    w.secrets.values[HOST_WEBHOOK_SECRET] = "whsec-monitor"
    return w


async def run_all(world: FakeWorld, *, deliver: bool = True) -> list[Job]:
    """Every queued job, and what they queue, until the queues are quiet (delivery jobs too, unless not)."""
    ran: list[Job] = []
    for _ in range(100):
        batch = [j for j in world.jobs.take() if deliver or not isinstance(j, Deliver)]
        if not batch:
            return ran
        for job in batch:
            world.clock.advance(seconds=job.delay_seconds + 1)
            ran.append(job)
            if isinstance(job, Deliver):
                await deliver_changes(world.services, job, POLICY)
            else:
                await run_job(world.services, job)
    raise AssertionError("the queues never went quiet")


def monitored(world: FakeWorld, direction: Direction | None = None) -> list[MonitoredMessage]:
    return [m for m in world.messages.of(TID) if direction is None or m.direction is direction]


async def append(world: FakeWorld, count: int) -> list[Change]:
    now = world.clock.now()
    changes = [
        Change(
            "event.deleted",
            TID,
            {"event": {"id": f"e{i}"}, "appointment_id": None, "reason": "deleted"},
            now,
            staff_id="s1",
        )
        for i in range(count)
    ]
    numbered = await world.feed.append(TID, changes)
    first, last = numbered[0].sequence, numbered[-1].sequence
    assert first is not None and last is not None
    await world.jobs.enqueue([jobs.deliver(TID, first, last)])
    return numbered


def delivered_sequences(world: FakeWorld) -> list[int]:
    import json

    return [c["sequence"] for d in world.webhook.received for c in json.loads(d.body)["changes"]]


# --- what is recorded --------------------------------------------------------------------------------


async def test_an_appointment_write_is_a_push_per_staff_member_with_graph_ids(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake("s1", "s2"))
    await run_all(world, deliver=False)
    pushes = monitored(world, Direction.PUSH)
    assert sorted((m.staff_id, m.key, m.kind, m.status) for m in pushes) == [
        ("s1", "a-1", "appointment", MessageStatus.OK),
        ("s2", "a-1", "appointment", MessageStatus.OK),
    ]
    events = {m.staff_id: m.detail["event_id"] for m in pushes}
    assert events["s1"] in world.mailboxes.mailbox("g1").events
    assert events["s2"] in world.mailboxes.mailbox("g2").events
    assert all(m.detail["revision"] == 1 and m.attempts == 1 for m in pushes)


async def test_an_outlook_change_is_a_pull_with_what_it_found_and_its_sequences(
    world: FakeWorld,
) -> None:
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    await run_all(world, deliver=False)
    world.clock.advance(seconds=5)
    world.mailboxes.put("g1", event("A"))
    await world.jobs.enqueue([jobs.sync_user(TID, "s1")])  # as a notification queues it
    await run_all(world, deliver=False)
    user = await world.users.get(TID, "s1")
    assert user is not None and user.subscription_id
    pull = monitored(world, Direction.PULL)[-1]
    assert (pull.kind, pull.status, pull.key, pull.staff_id) == (
        "notification",
        MessageStatus.OK,
        user.subscription_id,
        "s1",
    )
    created = [c for c in world.feed.entries[TID] if c.type == "event.created"]
    assert pull.detail["found"] == 1 and pull.detail["read"] == "delta"
    assert pull.detail["sequences"] == [c.sequence for c in created]
    assert pull.detail["types"] == ["event.created"]
    calendar = [m for m in monitored(world, Direction.PULL) if not m.kind.startswith("tasks")]
    assert calendar[0].kind == "migrate"


async def test_a_task_write_is_a_push_with_its_to_do_ids(world: FakeWorld) -> None:
    await put_task(world.services, TID, parse_task("t-1", {"staff_id": "s1", "title": "Call back"}))
    await run_all(world, deliver=False)
    [push] = monitored(world, Direction.PUSH)
    assert (push.kind, push.key, push.staff_id, push.status) == ("task", "t-1", "s1", MessageStatus.OK)
    record = await get_task(world.services, TID, "t-1")
    assert record.graph_task_id is not None
    assert (push.detail["graph_task_id"], push.detail["list_id"], push.detail["state"]) == (
        record.graph_task_id,
        record.list_id,
        "synced",
    )
    [made] = world.todo.tasks_in("g1", "Tasks from the host")
    assert made.id == push.detail["graph_task_id"]


async def test_a_failed_task_write_is_visible_and_its_retry_writes_it(world: FakeWorld) -> None:
    world.todo.fail("create_list", "refused")
    await put_task(world.services, TID, parse_task("t-1", {"staff_id": "s1", "title": "Call back"}))
    await run_all(world, deliver=False)
    [failed] = monitored(world, Direction.PUSH)
    assert (failed.kind, failed.status, failed.key) == ("task", MessageStatus.FAILED, "t-1")
    assert "Tasks from the host" in failed.detail["error"]
    assert await retry_message(world.services, TID, failed.message_id) == "write"
    await run_all(world, deliver=False)
    assert (await get_task(world.services, TID, "t-1")).state is TaskState.SYNCED
    assert [m.status for m in monitored(world, Direction.PUSH)][-1] is MessageStatus.OK
    assert len(world.todo.tasks_in("g1", "Tasks from the host")) == 1


async def test_a_to_do_change_is_a_tasks_pull_keyed_by_the_lists_subscription(world: FakeWorld) -> None:
    user = await world.users.get(TID, "s1")
    assert user is not None
    switches = user.staff.switches.changed({"tasks_from_outlook": True})
    await world.users.save(replace(user, staff=replace(user.staff, switches=switches)))
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    await run_all(world, deliver=False)
    listed = await world.todo.connector_list("g1", "Tasks from the host")
    world.todo.put("g1", listed, task("A", title="Staff's own"))
    await world.jobs.enqueue([jobs.SyncTasks(TID, "s1", TaskMode.SYNC)])  # as a notification queues it
    await run_all(world, deliver=False)
    synced = await world.users.get(TID, "s1")
    assert synced is not None and synced.task_sync.subscription_id
    pulls = [m for m in monitored(world, Direction.PULL) if m.kind.startswith("tasks")]
    assert [m.kind for m in pulls] == ["tasks_migrate", "tasks_notification"]
    last = pulls[-1]
    assert (last.status, last.key, last.staff_id) == (
        MessageStatus.OK,
        synced.task_sync.subscription_id,
        "s1",
    )
    created = [c for c in world.feed.entries[TID] if c.type == "task.created"]
    assert last.detail["sequences"] == [c.sequence for c in created] and last.detail["read"] == "delta"
    assert last.detail["types"] == ["task.created"]


async def test_a_delivery_records_its_range_status_code_and_latency(world: FakeWorld) -> None:
    await append(world, 3)
    await run_all(world)
    [delivery] = monitored(world, Direction.DELIVERY)
    assert (delivery.key, delivery.status, delivery.attempts) == (f"{TID}:1-3", MessageStatus.OK, 1)
    assert delivery.detail["status_code"] == 204
    assert (delivery.detail["first_sequence"], delivery.detail["last_sequence"]) == (1, 3)
    assert delivery.detail["latency_ms"] >= 0


async def test_a_failed_delivery_is_visible_and_its_retry_delivers_the_dead_letter(
    world: FakeWorld,
) -> None:
    world.webhook.failures.extend(
        [DeliveryFailed("HTTP 503", status=503), DeliveryFailed("HTTP 503", status=503)]
    )
    await append(world, 3)
    await run_all(world)
    statuses = [(m.status, m.detail.get("status_code")) for m in monitored(world, Direction.DELIVERY)]
    assert statuses == [(MessageStatus.RETRYING, 503), (MessageStatus.FAILED, 503)]
    assert list(world.dead_letters.rows)  # kept as a dead letter
    failed = monitored(world, Direction.DELIVERY)[-1]
    assert await retry_message(world.services, TID, failed.message_id) == "delivery"
    assert not world.dead_letters.rows  # the letter is the retry now
    await run_all(world)
    assert delivered_sequences(world) == [1, 2, 3]
    assert monitored(world, Direction.DELIVERY)[-1].status is MessageStatus.OK


async def test_only_a_failed_message_is_retried(world: FakeWorld) -> None:
    await append(world, 1)
    await run_all(world)
    [ok] = monitored(world, Direction.DELIVERY)
    with pytest.raises(Conflict) as refused:
        await retry_message(world.services, TID, ok.message_id)
    assert refused.value.field == "monitor_id"


# --- the listing ---------------------------------------------------------------------------------------


async def test_the_listing_is_newest_first_filtered_and_paged(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake("s1", "s2"))
    await run_all(world)
    now = world.clock.now()
    everything = (await list_messages(world.services, TID, parse_message_query({}, now))).messages
    assert [m.at for m in everything] == sorted((m.at for m in everything), reverse=True)
    only = parse_message_query({"staff_id": "s2", "direction": "push", "status": "ok"}, now)
    assert [(m.staff_id, m.direction) for m in (await list_messages(world.services, TID, only)).messages] == [
        ("s2", Direction.PUSH)
    ]
    pages: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = await list_messages(world.services, TID, parse_message_query(params, now))
        pages += [m.message_id for m in page.messages]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == [m.message_id for m in everything]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"direction": "sideways"}, "direction"),
        ({"status": "lost"}, "status"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"since": "yesterday"}, "since"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_unknown_filter_values_and_a_bad_cursor_are_refused_naming_the_parameter(
    params: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_message_query(params, fake_world().clock.now())
    assert refused.value.field == field


@pytest.mark.parametrize("days", [0, 91, "14"])
def test_a_retention_outside_1_to_90_days_is_refused_naming_the_setting(days: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_settings({"monitor_retention_days": days}, TenantSettings())
    assert refused.value.field == "settings.monitor_retention_days"
    assert parse_settings({"monitor_retention_days": 90}).monitor_retention_days == 90
    assert TenantSettings().monitor_retention_days == 14


# --- hold and release ------------------------------------------------------------------------------------


async def test_hold_keeps_every_change_and_the_release_delivers_them_once_in_order(world: FakeWorld) -> None:
    await append(world, 2)
    await run_all(world)
    await hold_delivery(world.services, TID)
    for _ in range(3):
        await append(world, 2)
        await run_all(world)
    assert delivered_sequences(world) == [1, 2]  # nothing posted while held
    tenant = await world.tenants.get(TID)
    assert tenant is not None
    state = await hold_state(world.services, tenant)
    assert (state.held, state.backlog, state.from_sequence) == (True, 6, 3)
    held = [m for m in monitored(world, Direction.DELIVERY) if m.status is MessageStatus.HELD]
    assert [m.key for m in held] == [f"{TID}:3-4", f"{TID}:5-6", f"{TID}:7-8"]
    _, queued = await release_delivery(world.services, TID)
    assert queued == 6
    await run_all(world)
    assert delivered_sequences(world) == list(range(1, 9))
    tenant = await world.tenants.get(TID)
    assert tenant is not None and (await hold_state(world.services, tenant)).held is False


async def test_a_delivery_queued_before_the_release_leaves_its_changes_to_the_releases_one(
    world: FakeWorld,
) -> None:
    await append(world, 1)
    await run_all(world)
    await hold_delivery(world.services, TID)
    await append(world, 2)
    await run_all(world)  # held back: 2-3 left for the release
    await append(world, 1)
    stale = world.jobs.take()  # 4's delivery, still queued when the hold is lifted
    assert [(j.first, j.last) for j in stale if isinstance(j, Deliver)] == [(4, 4)]
    _, queued = await release_delivery(world.services, TID)
    assert queued == 3
    for job in stale:  # it runs first, and leaves 4 to the release's delivery
        assert isinstance(job, Deliver)
        await deliver_changes(world.services, job, POLICY)
    await run_all(world)
    assert delivered_sequences(world) == [1, 2, 3, 4]  # each once, in order
    tenant = await world.tenants.get(TID)
    assert tenant is not None and tenant.released is None  # later deliveries go as usual
    await append(world, 1)
    await run_all(world)
    assert delivered_sequences(world) == [1, 2, 3, 4, 5]


async def test_hold_on_a_tenant_not_connected_is_refused_naming_it() -> None:
    w = fake_world()
    await add_tenant(w, TID, TenantState.CONSENT_REVOKED)
    with pytest.raises(Conflict) as refused:
        await hold_delivery(w.services, TID)
    assert refused.value.field == "tenant_id"
    tenant = await w.tenants.get(TID)
    assert tenant is not None and tenant.delivery_hold is None


# --- pruning and the user's page ----------------------------------------------------------------------


async def test_pruning_removes_what_is_older_than_the_tenants_retention(world: FakeWorld) -> None:
    await append(world, 1)
    await run_all(world)
    world.clock.advance(days=10)
    await append(world, 1)
    await run_all(world)
    world.clock.advance(days=5)  # the first is 15 days old, the second 5
    await fan_out_pruning(world.services)
    await run_all(world)
    assert [m.key for m in monitored(world)] == [f"{TID}:2-2"]
    since = world.clock.now() - timedelta(days=30)
    listed = await list_messages(world.services, TID, MessageQuery(since, until=world.clock.now()))
    assert [m.key for m in listed.messages] == [f"{TID}:2-2"]


async def test_a_users_page_shows_subscription_delta_link_and_each_direction(
    world: FakeWorld,
) -> None:
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    await run_all(world)
    world.clock.advance(minutes=1)
    await put_appointment(world.services, TID, intake("s1"))
    await run_all(world)
    detail = await user_detail(world.services, TID, "s1")
    assert detail.user.subscription_id and detail.user.delta_link and detail.user.delta_since
    assert detail.pull.last is not None and detail.pull.last.status is MessageStatus.OK
    assert detail.push.last is not None and detail.push.last.key == "a-1"
    assert detail.push.last_failed is None


async def test_deleting_a_users_subscription_removes_it_in_graph_the_index_and_the_row(
    world: FakeWorld,
) -> None:
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    await run_all(world)
    user = await world.users.get(TID, "s1")
    assert user is not None and user.subscription_id in world.mailboxes.subscriptions
    world.leases.rows[f"{TID}/s1"] = ("a sync run", world.clock.now() + timedelta(minutes=1), False)
    with pytest.raises(Conflict) as busy:  # a run under way would save the old id back
        await delete_user_subscription(world.services, TID, "s1")
    assert busy.value.field == "staff_id"
    world.clock.advance(minutes=5)  # that run's lease lapsed
    cleared = await delete_user_subscription(world.services, TID, "s1")
    assert cleared.subscription_id is None and cleared.subscription_expires_at is None
    assert user.subscription_id not in world.mailboxes.subscriptions
    assert await world.subscription_index.get(user.subscription_id) is None
    stored = await world.users.get(TID, "s1")
    assert stored is not None and stored.subscription_id is None


async def test_rematching_one_user_matches_them_as_stored(world: FakeWorld) -> None:
    org = world.directory.add(FakeOrganisation("dir-1", {"contoso.example"}, consented=True))
    moved = DirectoryUser("g2-moved", "user2@contoso.example", "user2@contoso.example", (), True)
    org.users[moved.id] = moved  # the mailbox moved to another directory user
    rematched = await rematch_user(world.services, TID, "s2")
    assert (rematched.staff_id, rematched.graph_user_id) == ("s2", "g2-moved")
    assert jobs.migrate_user(TID, "s2") in world.jobs.take()  # the new mailbox migrates
    with pytest.raises(NotFound):
        await rematch_user(world.services, TID, "nobody")


async def test_a_throttled_write_is_retrying_then_ok_with_its_attempts(world: FakeWorld) -> None:
    world.mailboxes.mailbox("g1").faults.append(throttled(3))
    await put_appointment(world.services, TID, intake("s1"))
    await run_all(world, deliver=False)
    pushes = monitored(world, Direction.PUSH)
    assert [(m.status, m.attempts) for m in pushes] == [(MessageStatus.RETRYING, 1), (MessageStatus.OK, 2)]
    assert pushes[0].detail["state"] == "pending" and "event_id" not in pushes[0].detail
    assert pushes[1].detail["event_id"] in world.mailboxes.mailbox("g1").events


async def test_a_staff_deletion_removes_their_messages_and_keeps_the_others(world: FakeWorld) -> None:
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1"), jobs.migrate_user(TID, "s2")])
    await run_all(world, deliver=False)
    assert {m.staff_id for m in monitored(world, Direction.PULL)} == {"s1", "s2"}
    await delete_staff(world.services, TID, "s1")
    await run_all(world, deliver=False)  # the queued clean-up
    assert {m.staff_id for m in monitored(world)} == {"s2"}


def test_the_monitor_setting_is_on_by_default_off_when_asked_and_refuses_anything_else() -> None:
    from shared import settings
    from tests.unit.service.test_deliveries import minimal_environ

    assert settings.Settings.from_environ(minimal_environ()).message_monitor is True
    assert settings.Settings.from_environ(minimal_environ(MESSAGE_MONITOR="Off")).message_monitor is False
    with pytest.raises(settings.SettingsError, match="MESSAGE_MONITOR"):
        settings.Settings.from_environ(minimal_environ(MESSAGE_MONITOR="sometimes"))


async def test_switched_off_nothing_is_recorded_or_listed() -> None:
    from shared.adapters.tables.messages import UnrecordedMessages

    off = UnrecordedMessages()
    now = fake_world().clock.now()
    entry = MonitoredMessage(
        TID, Direction.PULL, "sync", MessageStatus.OK, "sub", now, now, message_id="1" * 19
    )
    await off.record([entry])
    assert (await off.list(TID, MessageQuery(now - timedelta(days=1), until=now))).messages == []
    assert await off.get(TID, entry.message_id) is None


async def test_a_delivery_without_the_signing_secret_is_a_failed_message_naming_why(world: FakeWorld) -> None:
    del world.secrets.values[HOST_WEBHOOK_SECRET]
    await append(world, 2)
    await run_all(world)
    [failed] = monitored(world, Direction.DELIVERY)
    assert (failed.status, failed.key) == (MessageStatus.FAILED, f"{TID}:1-2")
    assert "host-webhook-secret" in failed.detail["error"]
