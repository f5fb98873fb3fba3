"""The nightly run of an idle mailbox on fakes: it follows the stored delta links, reads each user whole on
the user's own reconciliation night (`ConnectorConfig.reconciliation_days`), steps the window when its far
edge passes the margin (announcing what entered from there once), and still catches what a lost
notification left, with the mass-deletion guard and the silent-subscription check."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.sync_window import WINDOW_MARGIN, reconciliation_night
from shared.domain.tenants import TenantState
from shared.domain.users import SyncState, UserRecord
from shared.service import jobs
from shared.service.context import Services
from shared.service.jobs import Job, SyncTasks, SyncUser
from shared.service.schedules import fan_out
from shared.service.subscriptions import LIFETIME
from shared.service.sync import request_user_resync
from shared.service.tenant_settings import update_settings
from tests.fakes.events import event
from tests.fakes.services import FakeWorld, add_tenant, fake_world, run_queued

pytestmark = pytest.mark.unit

TID = "contoso.example"
DIRECTORY = "9188040d-6c67-4c5b-b112-36a304b66dad"


async def world_of(
    users: int, reconciliation_days: int, start: datetime | None = None
) -> tuple[FakeWorld, Services]:
    world = fake_world()
    if start is not None:
        world.clock.current = start
    await add_tenant(world, TID, TenantState.MIGRATING, directory_id=DIRECTORY, matched=users)
    config = replace(world.services.config, reconciliation_days=reconciliation_days)
    return world, replace(world.services, config=config)


async def run_all(world: FakeWorld, services: Services) -> list[Job]:
    return await run_queued(world, services)


async def migrate(world: FakeWorld, services: Services, *staff: str) -> None:
    await world.jobs.enqueue([jobs.migrate_user(TID, s) for s in staff])
    await run_all(world, services)


async def night(world: FakeWorld, services: Services) -> list[Job]:
    """The clock moved to the next 02:00 UTC, the nightly timer's fan-out and everything it queued run."""
    now = world.clock.now()
    next_night = now.replace(hour=2, minute=0, second=0, microsecond=0)
    if next_night <= now:
        next_night += timedelta(days=1)
    world.clock.current = next_night
    await fan_out(services, jobs.nightly)
    return await run_all(world, services)


def created(world: FakeWorld, subject: str) -> int:
    return sum(
        1
        for c in world.feed.entries.get(TID, [])
        if c.type == "event.created" and c.data["event"].get("subject") == subject
    )


async def user(world: FakeWorld, staff_id: str = "s1") -> UserRecord:
    found = await world.users.get(TID, staff_id)
    assert found is not None
    return found


def quiet_start(staff_id: str, every_days: int, nights: int) -> datetime:
    """A 09:00 UTC from which the user's reconciliation night does not come for `nights` nights."""
    day = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    while any(
        reconciliation_night(TID, staff_id, day + timedelta(days=n), every_days) for n in range(nights + 1)
    ):
        day += timedelta(days=1)
    return day


async def test_an_idle_user_is_caught_up_through_delta_and_read_whole_on_one_night_a_week() -> None:
    world, services = await world_of(users=2, reconciliation_days=7)
    world.mailboxes.put("g1", event("A"))
    await migrate(world, services, "s1", "s2")
    reads_before = world.mailboxes.requests
    calendar: dict[str, list[str]] = {"s1": [], "s2": []}
    tasks: dict[str, list[str]] = {"s1": [], "s2": []}
    for _ in range(7):
        for job in await night(world, services):
            if isinstance(job, SyncUser):
                calendar[job.staff_id].append(job.kind.value)
            elif isinstance(job, SyncTasks):
                tasks[job.staff_id].append(job.kind.value)
    for staff_id in ("s1", "s2"):
        assert sorted(calendar[staff_id]) == ["resync"] + ["silent"] * 6  # idle: Graph says nothing
        assert sorted(tasks[staff_id]) == ["tasks_resync"] + ["tasks_sync"] * 6
    # Each night one calendar read per user; the week's reconciliation adds the subscription and the hours.
    assert world.mailboxes.requests - reads_before == 2 * (7 + 2)
    assert [c.type for c in world.feed.entries[TID]].count("event.created") == 1  # nothing new announced
    assert all(u.sync_state is SyncState.SYNCED for u in await world.users.list_all(TID))


async def test_one_night_in_one_reads_every_user_whole_every_night() -> None:
    world, services = await world_of(users=2, reconciliation_days=1)
    await migrate(world, services, "s1", "s2")
    for _ in range(2):
        kinds = sorted(
            j.kind.value for j in await night(world, services) if isinstance(j, SyncUser | SyncTasks)
        )
        assert kinds == ["resync", "resync", "tasks_resync", "tasks_resync"]


async def test_the_window_steps_past_the_margin_and_announces_what_entered_from_the_far_edge_once() -> None:
    start = quiet_start("s1", 28, nights=11)
    world, services = await world_of(users=1, reconciliation_days=28, start=start)
    await migrate(world, services, "s1")
    migrated = await user(world)
    assert migrated.delta_window is not None
    day = start.replace(hour=0)
    configured_end = day + timedelta(days=181)
    assert migrated.delta_window[1] == configured_end + WINDOW_MARGIN  # read a little wider
    # An event one day past what the link reads: the link's rounds never report it.
    beyond = world.mailboxes.put(
        "g1", event("FAR", start=migrated.delta_window[1] + timedelta(days=1, hours=10), subject="Far")
    )
    await world.jobs.enqueue([jobs.sync_user(TID, "s1")])  # its notification
    await run_all(world, services)
    assert created(world, "Far") == 0
    for number in range(1, 12):
        await night(world, services)
        after = await user(world)
        if number < 8:  # the configured far edge is still inside what the link reads: delta only
            assert after.delta_since == migrated.delta_since and after.delta_window == migrated.delta_window
            assert created(world, "Far") == 0
        elif number == 8:  # the edge passed the margin: read whole over the next window
            assert after.delta_since == world.clock.now()
            assert after.delta_window is not None and after.delta_window[1] > beyond.ends_at()
            assert created(world, "Far") == 1
    assert created(world, "Far") == 1  # once, whatever the nights after read


async def test_a_change_made_while_idle_arrives_at_night_and_renews_a_silent_subscription() -> None:
    start = quiet_start("s1", 7, nights=2)
    world, services = await world_of(users=1, reconciliation_days=7, start=start)
    await migrate(world, services, "s1")
    before = (await user(world)).subscription_id
    world.mailboxes.put("g1", event("LATE", subject="Never notified"))  # Graph delivered nothing
    await night(world, services)
    assert created(world, "Never notified") == 1
    after = await user(world)
    assert after.subscription_id not in (None, before)  # silent though Outlook changed: made anew
    await night(world, services)
    assert created(world, "Never notified") == 1


async def test_a_nightly_delta_full_of_removals_is_held_by_the_mass_deletion_guard() -> None:
    start = quiet_start("s1", 7, nights=2)
    world, services = await world_of(users=1, reconciliation_days=7, start=start)
    ids = [f"E{n}" for n in range(30)]
    for event_id in ids:
        world.mailboxes.put("g1", event(event_id))
    await migrate(world, services, "s1")
    for event_id in ids[:20]:
        world.mailboxes.remove("g1", event_id)  # no notification reached the connector
    await night(world, services)
    held = await user(world)
    assert held.sync_state is SyncState.ERROR and "20" in (held.last_error or "")
    assert [c.type for c in world.feed.entries[TID]].count("event.deleted") == 0


async def test_the_renewal_timer_does_not_check_again_what_the_night_checked() -> None:
    start = quiet_start("s1", 7, nights=3)
    world, services = await world_of(users=1, reconciliation_days=7, start=start)
    await migrate(world, services, "s1")
    await night(world, services)
    for hours in (4, 6, 6, 6):  # the renewal rounds of the day after the night
        world.clock.advance(hours=hours)
        await fan_out(services, jobs.renew_tenant)
        ran = await run_all(world, services)
        assert [j for j in ran if isinstance(j, SyncUser | SyncTasks) and j.reason == "silent"] == []


async def test_the_renewal_timer_renews_in_place_without_reading_and_a_lost_one_still_catches_up() -> None:
    world, services = await world_of(users=2, reconciliation_days=7)
    await migrate(world, services, "s1", "s2")
    world.clock.advance(hours=LIFETIME.total_seconds() / 3600 - 20)  # within a day of expiry
    before = {s: await user(world, s) for s in ("s1", "s2")}
    lost = before["s2"].subscription_id
    assert lost is not None
    world.mailboxes.subscriptions.pop(lost)  # Graph dropped s2's without a word
    world.mailboxes.put("g2", event("GONE", subject="Made while unsubscribed"))
    await fan_out(services, jobs.renew_tenant)
    await run_all(world, services)
    renewed, recreated = await user(world, "s1"), await user(world, "s2")
    assert renewed.subscription_id == before["s1"].subscription_id
    assert renewed.subscription_expires_at > before["s1"].subscription_expires_at  # type: ignore[operator]
    assert renewed.task_sync.subscription_expires_at > before["s1"].task_sync.subscription_expires_at  # type: ignore[operator]
    assert renewed.last_sync_at == before["s1"].last_sync_at  # renewed in place: nothing read
    assert renewed.task_sync.last_sync_at == before["s1"].task_sync.last_sync_at
    assert recreated.subscription_id not in (None, lost) and recreated.last_sync_at == world.clock.now()
    assert created(world, "Made while unsubscribed") == 1  # the new one's gap was caught up


async def test_a_change_of_recurring_events_reads_every_user_whole_at_once() -> None:
    world, services = await world_of(users=3, reconciliation_days=7)
    await migrate(world, services, "s1", "s2", "s3")
    await update_settings(services, TID, {"recurring_events": "occurrences"})
    ran = await run_all(world, services)
    kinds = sorted((j.staff_id, j.kind.value) for j in ran if isinstance(j, SyncUser | SyncTasks))
    assert kinds == [(s, k) for s in ("s1", "s2", "s3") for k in ("resync", "tasks_resync")]


async def test_the_reconciliation_night_leaves_a_subscription_far_from_expiry_and_a_resync_renews_it() -> (
    None
):
    start = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    while not reconciliation_night(TID, "s1", start + timedelta(days=1), 7):
        start += timedelta(days=1)
    world, services = await world_of(users=1, reconciliation_days=7, start=start)
    await migrate(world, services, "s1")
    before = await user(world)
    ran = await night(world, services)
    assert [j.kind.value for j in ran if isinstance(j, SyncUser)] == ["resync"]
    after = await user(world)
    assert after.delta_since == world.clock.now()  # read whole
    assert after.subscription_expires_at == before.subscription_expires_at  # the timer's to renew
    assert after.task_sync.subscription_expires_at == before.task_sync.subscription_expires_at
    await request_user_resync(services, TID, "s1")  # on demand: renewed as ever
    await run_all(world, services)
    renewed = await user(world)
    assert renewed.subscription_expires_at > before.subscription_expires_at  # type: ignore[operator]
    assert renewed.task_sync.subscription_expires_at > before.task_sync.subscription_expires_at  # type: ignore[operator]
