"""The change feed's retention on fakes: the nightly run prunes what is older than the retention, the pull
feed says the retention and answers a cursor older than what is kept with a 410 naming `cursor`, and a
delivery of a range no longer kept posts what is left of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from shared.adapters.tables.tenants import settings_from_json, settings_to_json
from shared.domain.tenants import TenantSettings, TenantState
from shared.service import jobs
from shared.service.change_json import change_json
from shared.service.change_types import Change as ChangeModel
from shared.service.deliveries import deliver_changes
from shared.service.errors import Gone, InvalidInput
from shared.service.feed_retention import read_changes
from shared.service.keys import HOST_WEBHOOK_SECRET
from shared.service.records import Change
from shared.service.schedules import nightly_tenant
from shared.service.tenant_settings import update_settings
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


async def test_the_retention_is_a_tenant_setting_the_nightly_run_honours(
    world: FakeWorld,
) -> None:
    other = "fabrikam.example"
    await add_tenant(world, other, TenantState.ACTIVE, directory_id="5db8d39a-0000-4c5b-b112-36a304b66dad")
    await update_settings(world.services, TID, {"feed_retention_days": 7})
    for tenant_id in (TID, other):
        change = Change("tenant.connected", tenant_id, {"auth_mode": "admin_consent"}, world.clock.now())
        await world.feed.append(tenant_id, [change] * 2)
    world.clock.advance(days=8)
    await publish(world, 1)

    await nightly_tenant(world.services, TID)
    await nightly_tenant(world.services, other)

    assert [c.sequence for c in world.feed.entries[TID]] == [4]  # the change of retention (1) went too
    assert [c.sequence for c in world.feed.entries[other]] == [1, 2]  # the other tenant keeps 30 days
    assert (await read_changes(world.services, TID, 3, 10)).retention_days == 7
    assert (await read_changes(world.services, other, 0, 10)).retention_days == 30
    with pytest.raises(Gone) as gone:
        await read_changes(world.services, TID, 1, 10)
    assert "7 days" in gone.value.reason


async def test_a_new_retention_is_told_to_the_host_on_the_feed(world: FakeWorld) -> None:
    await update_settings(world.services, TID, {"feed_retention_days": 60})
    await update_settings(world.services, TID, {"feed_retention_days": 60, "privacy_mode": True})  # the same

    told = [c for c in world.feed.entries[TID] if c.type == "tenant.feed_retention_changed"]
    assert [c.data for c in told] == [{"previous_days": 30, "days": 60}]
    assert ChangeModel.model_validate(change_json(told[0])).root.type == "tenant.feed_retention_changed"


@pytest.mark.parametrize("days", [0, 366, "7", 7.5])
async def test_a_retention_out_of_bounds_is_refused_naming_the_field(world: FakeWorld, days: object) -> None:
    before = await world.tenants.get(TID)
    with pytest.raises(InvalidInput) as refused:
        await update_settings(world.services, TID, {"feed_retention_days": days})
    assert refused.value.field == "settings.feed_retention_days"
    assert await world.tenants.get(TID) == before
    assert not world.feed.entries.get(TID)


def test_the_retention_is_kept_on_the_tenant_row_and_defaults_for_older_rows() -> None:
    settings = replace(TenantSettings(), feed_retention_days=90)
    assert settings_from_json(settings_to_json(settings)).feed_retention_days == 90
    assert settings_from_json('{"window_days_back": 30}').feed_retention_days == 30


async def test_a_delivery_of_a_range_no_longer_kept_posts_what_is_left(world: FakeWorld) -> None:
    world.secrets.values[HOST_WEBHOOK_SECRET] = "whsec-1"
    await publish(world, 4)
    world.clock.advance(days=31)
    await publish(world, 2)
    await world.feed.prune(TID, world.clock.now() - timedelta(days=30))

    await deliver_changes(world.services, jobs.deliver(TID, 1, 6))  # a dead letter redelivered late

    [delivery] = world.webhook.received
    assert b'"sequence":5' in delivery.body and b'"sequence":4' not in delivery.body
