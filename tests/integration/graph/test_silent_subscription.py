"""A subscription Graph dropped without a lifecycle notification (the emulator deletes it silently): the
renewal timer's tenant job confirms every subscription with Graph's listing, recreates the missing one
and catches up, and the new subscription's notifications pass the webhook's clientState check (the
real adapters, msgraph-sdk against the emulator)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from shared.domain.tenants import Tenant, TenantState
from shared.domain.users import MatchStatus, StaffMember, UserRecord
from shared.service import jobs
from shared.service.job_handlers import run_job
from shared.service.keys import CURRENT_FOR, NOTIFICATION_KEY, KeyRing, new_key_value
from shared.service.notifications import receive_changes
from shared.service.schedules import renew_tenant_subscriptions
from tests.fakes.services import FakeWorld, add_tenant, fake_world
from tests.fixtures.emulator import EmulatorInfo
from tests.integration.graph.harness import EmulatorGraph, open_emulator_graph

pytestmark = pytest.mark.integration


@pytest.fixture
async def graph(emulator_reset: EmulatorInfo) -> AsyncIterator[EmulatorGraph]:
    async with open_emulator_graph(emulator_reset) as harness:
        yield harness


async def one_staff_member(graph: EmulatorGraph) -> tuple[FakeWorld, Tenant, str]:
    """A fake world on the emulator's clock with one connected tenant and staff member `s1` matched to a
    new emulator mailbox. The calendar's subscription only: the To Do list's would live in the fake world,
    which Graph's listing does not hold (tests/unit/service/test_task_sync.py covers its recreation)."""
    world = fake_world()
    world.clock.current = datetime.fromisoformat(await graph.control.clock())
    tenant = await add_tenant(
        world, graph.tenant.tenant_id, TenantState.ACTIVE, directory_id=graph.tenant.directory_id
    )
    mailbox = await graph.new_mailbox()
    staff = StaffMember("s1", f"s1@{tenant.tenant_id}", None, "Staff One")
    staff = replace(staff, switches=staff.switches.changed({"tasks_from_outlook": False}))
    await world.users.save(
        UserRecord(tenant.tenant_id, staff, MatchStatus.MATCHED, world.clock.now(), graph_user_id=mailbox)
    )
    return world, tenant, mailbox


async def test_a_subscription_deleted_without_notice_is_recreated_by_the_renewal_timer(graph: EmulatorGraph):
    world, tenant, mailbox = await one_staff_member(graph)
    services = replace(world.services, calendar=graph.calendar(), subscriptions=graph.subscriptions())
    await run_job(services, jobs.migrate_user(tenant.tenant_id, "s1"))
    migrated = await world.users.get(tenant.tenant_id, "s1")
    assert migrated is not None and migrated.subscription_id
    lost = migrated.subscription_id
    world.jobs.take()

    await graph.control.remove_subscription(lost, lifecycle=False)  # Graph drops it and tells nobody
    world.clock.advance(hours=2)  # far from expiry and not silent for a day: only Graph's word shows it
    await graph.control.advance_clock(hours=2)  # one clock with the emulator (a renewal asks for its maximum)
    assert await renew_tenant_subscriptions(services, tenant.tenant_id) == 1
    for job in world.jobs.take():
        await run_job(services, job)

    renewed = await world.users.get(tenant.tenant_id, "s1")
    assert renewed is not None and renewed.subscription_id not in (None, lost)
    held = {s["id"]: s for s in await graph.control.subscriptions()}
    assert renewed.subscription_id in held and lost not in held
    assert await world.subscription_index.get(lost) is None
    assert await world.subscription_index.get(renewed.subscription_id) is not None

    # A change in Outlook reaches the webhook through the new subscription, and its clientState passes.
    notified = await notifications_of_a_change(graph, mailbox, renewed.subscription_id)
    assert notified
    received = await receive_changes(services, json.dumps({"value": notified}).encode())
    assert received.accepted == len(notified) and received.forged == 0


async def test_a_rotated_notification_key_re_signs_the_subscription_graph_holds(graph: EmulatorGraph):
    """Graph refuses a second subscription on the same resource (409) and keeps a clientState through
    renewals: after a rotation the renewal timer's re-signing deletes the old one first, and the new
    one's notifications name the current key version."""
    world, tenant, mailbox = await one_staff_member(graph)
    elapsed = [0.0]
    keys = KeyRing(world.secrets, monotonic=lambda: elapsed[0])
    services = replace(
        world.services, calendar=graph.calendar(), subscriptions=graph.subscriptions(), keys=keys
    )
    await run_job(services, jobs.migrate_user(tenant.tenant_id, "s1"))
    migrated = await world.users.get(tenant.tenant_id, "s1")
    assert migrated is not None and migrated.subscription_id
    first = migrated.subscription_id
    world.jobs.take()

    rotated = await world.secrets.set(NOTIFICATION_KEY, new_key_value())  # the operator rotates the key
    elapsed[0] += CURRENT_FOR
    assert await renew_tenant_subscriptions(services, tenant.tenant_id) == 1
    for job in world.jobs.take():
        await run_job(services, job)

    renewed = await world.users.get(tenant.tenant_id, "s1")
    assert renewed is not None and renewed.subscription_id not in (None, first)
    mine = [s["id"] for s in await graph.control.subscriptions() if mailbox in s["resource"]]
    assert mine == [renewed.subscription_id]
    record = await world.subscription_index.get(renewed.subscription_id)
    assert record is not None and record.key_version == rotated

    notified = await notifications_of_a_change(graph, mailbox, renewed.subscription_id)
    assert notified and all(n["clientState"].split(".")[1] == rotated for n in notified)
    world.secrets.disabled.add(world.secrets.version_id(0))  # the first version disabled: nothing needs it
    elapsed[0] += CURRENT_FOR
    received = await receive_changes(services, json.dumps({"value": notified}).encode())
    assert received.accepted == len(notified) and received.forged == 0


async def notifications_of_a_change(
    graph: EmulatorGraph, mailbox: str, subscription_id: str | None
) -> list[dict[str, Any]]:
    """An event made in Outlook, and the notifications the webhook received for it on this subscription."""
    client = await graph.graph()
    start = {"dateTime": "2030-03-02T09:00:00", "timeZone": "UTC"}
    end = {"dateTime": "2030-03-02T10:00:00", "timeZone": "UTC"}
    await client.request_json(
        "POST", f"/users/{mailbox}/events", {"subject": "After", "start": start, "end": end}
    )
    for _ in range(100):
        if graph.webhook.received:
            break
        await asyncio.sleep(0.1)
    return [n for n in graph.webhook.received if n.get("subscriptionId") == subscription_id]
