"""The Outlook-to-host executor on fakes: migration, delta, faults, leases, lifecycle, schedules."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.domain.signing import client_state
from shared.domain.sync_window import reconciliation_night
from shared.domain.tenants import CustomerApp, TenantState
from shared.domain.users import DirectoryUser, LegacyLink, SyncState
from shared.service import jobs
from shared.service.jobs import Job, SyncMode, SyncUser
from shared.service.keys import NOTIFICATION_KEY
from shared.service.notifications import receive_changes, receive_lifecycle
from shared.service.records import LeaseOutcome
from shared.service.schedules import fan_out
from shared.service.subscriptions import LIFETIME
from shared.service.sync import request_tenant_resync, run_sync_job
from shared.service.tenant_disconnect import begin_disconnect
from tests.fakes.calendar import throttled
from tests.fakes.directory import FakeOrganisation
from tests.fakes.events import event
from tests.fakes.services import FakeWorld, add_tenant, fake_world, run_queued

pytestmark = pytest.mark.unit

TID = "contoso.example"
DIRECTORY = "9188040d-6c67-4c5b-b112-36a304b66dad"


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.MIGRATING, directory_id=DIRECTORY, matched=2)
    return w


async def run_all(world: FakeWorld) -> list[Job]:
    """Run every queued sync/tenant job (and what they queue) until the queues are quiet."""
    return await run_queued(world)


def feed(world: FakeWorld, staff_id: str | None = None) -> list[str]:
    return [c.type for c in world.feed.entries.get(TID, []) if staff_id is None or c.staff_id == staff_id]


async def migrate(world: FakeWorld, *staff: str) -> None:
    await world.jobs.enqueue([jobs.migrate_user(TID, s) for s in staff])
    await run_all(world)


async def test_migration_subscribes_reads_the_window_and_reaches_100_percent(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("A"))
    world.mailboxes.put("g1", event("B"))
    world.mailboxes.put("g2", event("C"))
    await migrate(world, "s1", "s2")
    assert feed(world, "s1") == ["event.created", "event.created", "user.migrated"]
    assert world.mailboxes.subscribed_users() == {"g1", "g2"}
    users = {u.staff_id: u for u in await world.users.list_all(TID)}
    assert all(
        u.sync_state is SyncState.SYNCED and u.delta_link and u.subscription_id for u in users.values()
    )
    assert world.tenants.rows[TID].state is TenantState.ACTIVE
    assert feed(world)[-1] == "tenant.migrated"
    assert set(world.item_statuses.rows[(TID, "s1")]) == {"A", "B"}


async def test_a_second_migrate_job_for_a_migrated_user_only_catches_up(world: FakeWorld) -> None:
    # The staff PUT and the tenant's discovery may both queue one; the second must not announce again.
    world.mailboxes.put("g1", event("A"))
    await migrate(world, "s1")
    world.mailboxes.put("g1", event("B"))
    await migrate(world, "s1")
    assert feed(world, "s1") == ["event.created", "user.migrated", "event.created"]


async def test_migration_links_the_hosts_appointments_instead_of_announcing_them(world: FakeWorld) -> None:
    box = world.mailboxes.mailbox("g1")
    world.mailboxes.put("g1", event("A"))
    world.mailboxes.put("g1", event("B", ical_uid="ews-era-uid"))
    world.mailboxes.put("g1", event("C"))
    world.mailboxes.put("g1", event("D"))
    box.ews_ids["EWS-A"] = "A"
    box.appointment_ids["C"] = "appt-C"
    user = await world.users.get(TID, "s1")
    assert user is not None
    links = (LegacyLink("appt-A", ews_id="EWS-A"), LegacyLink("appt-B", ical_uid="ews-era-uid"))
    await world.users.save(replace(user, staff=replace(user.staff, legacy_ids=links)))
    await migrate(world, "s1")
    created = [c for c in world.feed.entries[TID] if c.type == "event.created"]
    assert [c.data["event"]["id"] for c in created] == ["D"]
    statuses = world.item_statuses.rows[(TID, "s1")]
    assert {g: s.appointment_id for g, s in statuses.items()} == {
        "A": "appt-A",
        "B": "appt-B",
        "C": "appt-C",
        "D": None,
    }
    migrated = next(c for c in world.feed.entries[TID] if c.type == "user.migrated")
    assert migrated.data == {"events": 4, "linked": 3, "tasks": 0, "tasks_linked": 0}  # an empty list


async def test_a_notification_catches_up_through_delta(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("A"))
    await migrate(world, "s1")
    edited = world.mailboxes.put("g1", replace(event("A"), subject="Edited"))
    world.mailboxes.put("g1", event("B"))
    await notify(world, "g1", "A", "B")
    await run_all(world)
    changes = [c for c in world.feed.entries[TID] if c.staff_id == "s1"][-2:]
    assert [(c.type, c.data["event"]["id"]) for c in changes] == [
        ("event.updated", "A"),
        ("event.created", "B"),
    ]
    assert changes[0].data["event"]["subject"] == edited.subject


async def notify(world: FakeWorld, graph_user_id: str, *event_ids: str, forged: bool = False) -> None:
    key = await world.services.keys.signing(NOTIFICATION_KEY)
    user = next(u for u in await world.users.list_all(TID) if u.graph_user_id == graph_user_id)
    state = "v1.forged" if forged else client_state(key.secret, key.version, DIRECTORY, graph_user_id)
    body = {
        "value": [
            {
                "subscriptionId": user.subscription_id,
                "tenantId": DIRECTORY,
                "clientState": state,
                "changeType": "updated",
                "resource": f"Users/{graph_user_id}/Events/{e}",
            }
            for e in event_ids
        ]
    }
    received = await receive_changes(world.services, json.dumps(body).encode())
    await world.jobs.enqueue(received.jobs)


async def test_duplicate_notifications_collapse_and_forged_ones_are_dropped(world: FakeWorld) -> None:
    await migrate(world, "s1")
    before = len(world.feed.entries[TID])
    await notify(world, "g1", "X", "X", "X")
    assert len(world.jobs.queued) == 1
    world.jobs.take()
    await notify(world, "g1", "X", forged=True)
    assert world.jobs.queued == []
    world.mailboxes.put("g1", event("X"))
    await notify(world, "g1", "X")
    await notify(world, "g1", "X")  # late duplicate
    await run_all(world)
    assert feed(world)[before:] == ["event.created"]


async def test_an_expired_delta_link_falls_back_to_a_full_read_without_duplicates(world: FakeWorld) -> None:
    for name in "ABC":
        world.mailboxes.put("g1", event(name))
    await migrate(world, "s1")
    world.mailboxes.remove("g1", "B")
    world.mailboxes.put("g1", event("D"))
    world.mailboxes.expire_tokens("g1")
    await world.jobs.enqueue([jobs.sync_user(TID, "s1")])
    await run_all(world)
    events = [c for c in world.feed.entries[TID] if c.type.startswith("event.")]
    tail = [(c.type, c.data["event"]["id"]) for c in events][-2:]
    assert sorted(tail) == [("event.created", "D"), ("event.deleted", "B")]
    assert set(world.item_statuses.rows[(TID, "s1")]) == {"A", "C", "D"}


async def test_throttling_is_retried_later_with_the_retry_after(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("A"))
    await migrate(world, "s1")
    world.mailboxes.put("g1", event("B"))
    world.mailboxes.mailbox("g1").faults.append(throttled(30))
    await world.jobs.enqueue([jobs.sync_user(TID, "s1")])
    job = world.jobs.take()[0]
    await run_sync_job(world.services, job)
    retry = world.jobs.take()
    assert [(j.kind, j.attempt) for j in retry] == [("sync", 1)]
    assert retry[0].delay_seconds >= 30
    await run_sync_job(world.services, retry[0])
    assert feed(world, "s1")[-1] == "event.created"


async def test_an_unavailable_mailbox_is_an_error_a_person_can_act_on(world: FakeWorld) -> None:
    world.mailboxes.mailbox("g2").unavailable = "the user has no Exchange Online mailbox"
    await migrate(world, "s1", "s2")
    failed = await world.users.get(TID, "s2")
    assert failed is not None and failed.sync_state is SyncState.ERROR
    assert failed.last_error == "the user has no Exchange Online mailbox"
    assert world.tenants.rows[TID].state is TenantState.DEGRADED
    world.mailboxes.mailbox("g2").unavailable = None
    assert await request_tenant_resync(world.services, TID, only_failed=True) == 1
    await run_all(world)
    healed = await world.users.get(TID, "s2")
    assert healed is not None and healed.sync_state is SyncState.SYNCED and healed.last_error is None


async def test_revoked_consent_stops_the_tenant_without_a_retry_storm(world: FakeWorld) -> None:
    await migrate(world, "s1", "s2")
    world.mailboxes.revoked_tenants.add(DIRECTORY)
    await world.jobs.enqueue([jobs.sync_user(TID, "s1"), jobs.sync_user(TID, "s2")])
    await run_all(world)
    assert world.tenants.rows[TID].state is TenantState.CONSENT_REVOKED
    assert feed(world).count("tenant.consent_revoked") == 1
    requests = world.mailboxes.requests
    await world.jobs.enqueue([jobs.sync_user(TID, "s1")])
    await run_all(world)
    assert world.mailboxes.requests == requests


async def test_work_asked_for_while_another_worker_holds_the_lease_is_run_by_that_worker(
    world: FakeWorld,
) -> None:
    world.mailboxes.put("g1", event("A"))
    await migrate(world, "s1")
    now = world.clock.now()
    held = await world.leases.acquire(f"{TID}/s1", "other-worker", timedelta(minutes=5), now)
    assert held is LeaseOutcome.ACQUIRED
    world.mailboxes.put("g1", event("B"))
    await run_sync_job(world.services, jobs.sync_user(TID, "s1"))
    assert feed(world, "s1")[-1] == "user.migrated"  # deferred: nothing read yet
    assert await world.leases.release(f"{TID}/s1", "other-worker") is True  # asked to run again


async def test_a_worker_killed_while_holding_the_lease_does_not_strand_the_user(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("A"))
    await migrate(world, "s1")
    await world.leases.acquire(f"{TID}/s1", "killed-worker", timedelta(minutes=2), world.clock.now())
    world.mailboxes.put("g1", event("B"))
    await run_sync_job(world.services, jobs.sync_user(TID, "s1"))  # the redelivered message: deferred
    [check] = world.jobs.take()
    assert check.delay_seconds > 120
    world.clock.advance(seconds=check.delay_seconds)  # the dead worker's lease lapsed meanwhile
    await run_sync_job(world.services, check)
    assert feed(world, "s1")[-1] == "event.created"


async def test_a_job_redelivered_after_a_crash_announces_nothing_twice(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("A"))
    await migrate(world, "s1")
    world.mailboxes.put("g1", event("B"))
    job = jobs.sync_user(TID, "s1")
    await run_sync_job(world.services, job)
    user = await world.users.get(TID, "s1")
    assert user is not None
    # The worker died before it stored the delta link: the redelivered job reads from the old one.
    first_link = world.mailboxes.mailbox("g1")
    await world.users.save(
        replace(user, delta_link=user.delta_link.replace(f"|{len(first_link.log)}|", "|1|"))
    )
    await run_sync_job(world.services, job)
    assert feed(world, "s1").count("event.created") == 2  # A at migration, B once


async def test_lifecycle_events_renew_recreate_and_catch_up(world: FakeWorld) -> None:
    await migrate(world, "s1")
    user = await world.users.get(TID, "s1")
    assert user is not None and user.subscription_id
    key = await world.services.keys.signing(NOTIFICATION_KEY)
    state = client_state(key.secret, key.version, DIRECTORY, "g1")
    world.mailboxes.subscriptions.pop(user.subscription_id)  # Graph removed it
    body = {
        "value": [
            {
                "subscriptionId": user.subscription_id,
                "clientState": state,
                "lifecycleEvent": "subscriptionRemoved",
            }
        ]
    }
    received = await receive_lifecycle(world.services, json.dumps(body).encode())
    assert [j.kind for j in received.jobs] == ["resubscribe"]
    await world.jobs.enqueue(received.jobs)
    await run_all(world)
    renewed = await world.users.get(TID, "s1")
    assert renewed is not None and renewed.subscription_id not in (None, user.subscription_id)
    assert renewed.subscription_id in world.mailboxes.subscriptions
    forged = {
        "value": [
            {"subscriptionId": renewed.subscription_id, "clientState": "v1.x", "lifecycleEvent": "missed"}
        ]
    }
    assert (await receive_lifecycle(world.services, json.dumps(forged).encode())).jobs == []


async def test_the_renewal_timer_renews_what_expires_soon(world: FakeWorld) -> None:
    await migrate(world, "s1", "s2")
    before = {u.staff_id: u.subscription_expires_at for u in await world.users.list_all(TID)}
    world.clock.advance(hours=LIFETIME.total_seconds() / 3600 - 20)  # within a day of the calendar's expiry
    await fan_out(world.services, jobs.renew_tenant)
    ran = await run_all(world)
    kinds = sorted(j.kind for j in ran if j.queue == jobs.SYNC_QUEUE)
    assert kinds == ["renew", "renew", "tasks_renew", "tasks_renew"]  # each calendar and To Do list
    after = {u.staff_id: u.subscription_expires_at for u in await world.users.list_all(TID)}
    assert all(after[s] > before[s] for s in before)  # type: ignore[operator]


async def test_the_nightly_run_catches_every_user_up_and_warns_of_an_expiring_secret(
    world: FakeWorld,
) -> None:
    await migrate(world, "s1", "s2")
    tenant = world.tenants.rows[TID]
    expiring = CustomerApp("app", secret_expires_at=world.clock.now() + timedelta(days=10))
    world.tenants.rows[TID] = replace(tenant, customer_app=expiring)
    await fan_out(world.services, jobs.nightly)
    ran = await run_all(world)
    kinds = sorted(j.kind for j in ran if j.queue == jobs.SYNC_QUEUE)
    # Each calendar and To Do list: read whole on the user's reconciliation night, as these two's is tonight
    # (tests/unit/service/test_idle_nightly.py has the other nights).
    assert all(reconciliation_night(TID, s, world.clock.now(), 7) for s in ("s1", "s2"))
    assert kinds == ["resync", "resync", "tasks_resync", "tasks_resync"]
    assert feed(world).count("tenant.credential_expiring") == 1
    await fan_out(world.services, jobs.nightly)
    await run_all(world)
    assert feed(world).count("tenant.credential_expiring") == 1  # weekly, not nightly


async def test_disconnect_deletes_every_subscription_and_the_sync_state(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("A"))
    await migrate(world, "s1", "s2")
    await begin_disconnect(world.services, TID)
    await run_all(world)
    assert world.mailboxes.subscriptions == {}
    assert world.item_statuses.rows == {}
    assert world.subscription_index.rows == {}
    assert world.tenants.rows[TID].state is TenantState.DISCONNECTED
    await world.jobs.enqueue([jobs.sync_user(TID, "s1")])
    await run_all(world)
    assert world.mailboxes.subscriptions == {}


async def test_the_mass_deletion_guard_records_an_error_and_force_applies(world: FakeWorld) -> None:
    for i in range(15):
        world.mailboxes.put("g1", event(f"E{i}"))
    await migrate(world, "s1")
    for i in range(15):
        world.mailboxes.remove("g1", f"E{i}")
    await world.jobs.enqueue([SyncUser(TID, "s1", SyncMode.RESYNC)])
    await run_all(world)
    user = await world.users.get(TID, "s1")
    assert user is not None and user.sync_state is SyncState.ERROR and "15" in (user.last_error or "")
    assert feed(world, "s1").count("event.deleted") == 0
    await world.jobs.enqueue([SyncUser(TID, "s1", SyncMode.RESYNC, force=True)])
    await run_all(world)
    assert feed(world, "s1").count("event.deleted") == 15


async def test_a_delta_page_full_of_removals_is_held_until_a_forced_resync(world: FakeWorld) -> None:
    for i in range(15):
        world.mailboxes.put("g1", event(f"E{i}"))
    await migrate(world, "s1")
    for i in range(15):
        world.mailboxes.remove("g1", f"E{i}")
    await world.jobs.enqueue([jobs.sync_user(TID, "s1", "notified")])  # a delta read, not a resync
    await run_all(world)
    user = await world.users.get(TID, "s1")
    assert user is not None and user.sync_state is SyncState.ERROR and "15" in (user.last_error or "")
    assert feed(world, "s1").count("event.deleted") == 0
    assert len(world.item_statuses.rows[(TID, "s1")]) == 15  # nothing forgotten either
    await world.jobs.enqueue([jobs.sync_user(TID, "s1", "notified")])  # still held: a full read now
    await run_all(world)
    assert feed(world, "s1").count("event.deleted") == 0
    await world.jobs.enqueue([SyncUser(TID, "s1", SyncMode.RESYNC, force=True)])
    await run_all(world)
    assert feed(world, "s1").count("event.deleted") == 15


async def test_a_deliverable_change_queues_its_delivery(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("A"))
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    job = world.jobs.take()[0]
    await run_sync_job(world.services, job)
    deliveries = [j for j in world.jobs.take() if j.queue == jobs.DELIVERY_QUEUE]
    assert deliveries and deliveries[0].first == 1


async def test_users_migrated_before_discovery_finished_still_complete_the_tenant(world: FakeWorld) -> None:
    """Regression: staff matched at once by PUT migrated while the tenant was still `connecting`; when
    discovery then moved it to `migrating`, nothing was left to finish it, and it stayed at 100 %."""
    tenant = world.tenants.rows[TID]
    world.tenants.rows[TID] = replace(tenant, state=TenantState.CONNECTING)
    org = world.directory.add(FakeOrganisation(DIRECTORY, {TID}, consented=True))
    for n in (1, 2):
        org.users[f"g{n}"] = DirectoryUser(
            f"g{n}", f"user{n}@contoso.example", f"user{n}@contoso.example", (), True
        )
    await migrate(world, "s1", "s2")
    assert world.tenants.rows[TID].state is TenantState.CONNECTING
    await world.jobs.enqueue([jobs.discover(TID)])
    await run_all(world)
    assert world.tenants.rows[TID].state is TenantState.ACTIVE
