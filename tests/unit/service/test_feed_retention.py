"""The change feed's retention on fakes: the nightly run prunes what is older than the retention, the pull
feed says the retention and answers a cursor older than what is kept with a 410 naming `cursor`, and a
delivery of a range no longer kept posts what is left of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from shared.domain.tenants import TenantState
from shared.service import jobs
from shared.service.deliveries import deliver_changes
from shared.service.errors import Gone
from shared.service.feed_retention import read_changes
from shared.service.keys import HOST_WEBHOOK_SECRET
from shared.service.records import Change
from shared.service.schedules import nightly_tenant
from tests.fakes.services import FakeWorld, add_tenant, fake_world

pytestmark = pytest.mark.unit

TID = "contoso.example"


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, directory_id="9188040d-6c67-4c5b-b112-36a304b66dad")
    return w


async def publish(world: FakeWorld, count: int) -> None:
    change = Change("tenant.connected", TID, {"auth_mode": "admin_consent"}, world.clock.now())
    await world.feed.append(TID, [change] * count)


async def test_the_nightly_run_prunes_what_is_older_than_the_retention(world: FakeWorld) -> None:
    await publish(world, 5)
    world.clock.advance(days=20)
    await publish(world, 3)
    world.clock.advance(days=11)  # the first five are 31 days old, the others 11

    await nightly_tenant(world.services, TID)

    assert [c.sequence for c in world.feed.entries[TID]] == [6, 7, 8]
    page = await read_changes(world.services, TID, 5, 100)
    assert ([s for s, _ in page.changes], page.cursor, page.retention_days) == ([6, 7, 8], 8, 30)
    with pytest.raises(Gone) as gone:
        await read_changes(world.services, TID, 2, 100)
    assert gone.value.field == "cursor" and "30 days" in gone.value.reason and "cursor 5" in gone.value.reason


async def test_the_retention_is_a_setting(world: FakeWorld) -> None:
    services = replace(world.services, config=replace(world.services.config, feed_retention_days=7))
    await publish(world, 2)
    world.clock.advance(days=8)
    await publish(world, 1)
    await nightly_tenant(services, TID)
    assert [c.sequence for c in world.feed.entries[TID]] == [3]
    assert (await read_changes(services, TID, 2, 10)).retention_days == 7


async def test_a_delivery_of_a_range_no_longer_kept_posts_what_is_left(world: FakeWorld) -> None:
    world.secrets.values[HOST_WEBHOOK_SECRET] = "whsec-1"
    await publish(world, 4)
    world.clock.advance(days=31)
    await publish(world, 2)
    await world.feed.prune(TID, world.clock.now() - timedelta(days=30))

    await deliver_changes(world.services, jobs.deliver(TID, 1, 6))  # a dead letter redelivered late

    [delivery] = world.webhook.received
    assert b'"sequence":5' in delivery.body and b'"sequence":4' not in delivery.body
