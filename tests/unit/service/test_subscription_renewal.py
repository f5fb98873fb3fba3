"""Subscriptions confirmed with Graph: the renewal timer and the resyncs notice one that Graph lost without a
lifecycle notification, recreate it and catch up; and the one clock the local stack shares."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from m365emulator.clock import Clock as EmulatorClock
from shared import settings
from shared.adapters.local_clock import ClockedCredential, FileClock
from shared.bootstrap import SystemClock, clock_for
from shared.domain.tenants import TenantState
from shared.service import jobs
from shared.service.schedules import fan_out
from shared.service.sync import request_tenant_resync, request_user_resync
from tests.fakes.calendar import throttled
from tests.fakes.events import event
from tests.fakes.services import FakeWorld, add_tenant, fake_world
from tests.unit.service.test_sync import DIRECTORY, TID, feed, migrate, run_all

pytestmark = pytest.mark.unit


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.MIGRATING, directory_id=DIRECTORY, matched=2)
    return w


async def lose_subscription(world: FakeWorld, staff_id: str) -> str:
    """Graph drops the user's subscription and no lifecycle notification reaches the connector."""
    user = await world.users.get(TID, staff_id)
    assert user is not None and user.subscription_id in world.mailboxes.subscriptions
    world.mailboxes.subscriptions.pop(user.subscription_id)
    return user.subscription_id


async def assert_recreated_and_caught_up(world: FakeWorld, staff_id: str, lost: str, subject: str) -> None:
    user = await world.users.get(TID, staff_id)
    assert user is not None and user.subscription_id not in (None, lost)
    assert user.subscription_id in world.mailboxes.subscriptions  # Graph holds the new one
    expires = world.mailboxes.subscriptions[user.subscription_id][1].expires_at
    assert user.subscription_expires_at == expires > world.clock.now() + timedelta(hours=47)
    created = [c for c in world.feed.entries[TID] if c.type == "event.created" and c.staff_id == staff_id]
    assert subject in [c.data["event"]["subject"] for c in created]  # the change made meanwhile arrived


async def test_a_lost_subscription_is_recreated_by_the_renewal_timer(world: FakeWorld) -> None:
    await migrate(world, "s1", "s2")
    lost = await lose_subscription(world, "s1")
    world.clock.advance(hours=2)  # far from expiry, not silent for a day: only Graph knows it is gone
    world.mailboxes.put("g1", event(subject="Made while unsubscribed"))
    untouched = (await world.users.get(TID, "s2")).subscription_expires_at  # type: ignore[union-attr]
    await fan_out(world.services, jobs.renew_tenant)
    await run_all(world)
    await assert_recreated_and_caught_up(world, "s1", lost, "Made while unsubscribed")
    assert (await world.users.get(TID, "s2")).subscription_expires_at == untouched  # type: ignore[union-attr]


async def test_a_silent_subscription_graph_still_holds_is_recreated_when_changes_went_unnotified(
    world: FakeWorld,
) -> None:
    await migrate(world, "s1", "s2")
    before = {s: (await world.users.get(TID, s)).subscription_id for s in ("s1", "s2")}  # type: ignore[union-attr]
    world.clock.advance(hours=25)  # a day without a notification from either (far from expiry)
    world.mailboxes.put("g1", event(subject="Never notified"))  # Graph holds s1's, but it delivers nothing
    await fan_out(world.services, jobs.renew_tenant)
    await run_all(world)
    await assert_recreated_and_caught_up(world, "s1", before["s1"] or "", "Never notified")
    assert before["s1"] not in world.mailboxes.subscriptions  # the silent one is gone from Graph
    # s2 had nothing to tell: quiet, not broken; its subscription stays.
    assert (await world.users.get(TID, "s2")).subscription_id == before["s2"]  # type: ignore[union-attr]


async def test_a_lost_subscription_is_recreated_by_a_user_resync(world: FakeWorld) -> None:
    await migrate(world, "s1", "s2")
    lost = await lose_subscription(world, "s1")
    world.mailboxes.put("g1", event(subject="Made while unsubscribed"))
    await request_user_resync(world.services, TID, "s1")
    await run_all(world)
    await assert_recreated_and_caught_up(world, "s1", lost, "Made while unsubscribed")


async def test_a_lost_subscription_is_recreated_by_a_tenant_resync(world: FakeWorld) -> None:
    await migrate(world, "s1", "s2")
    lost = await lose_subscription(world, "s2")
    world.mailboxes.put("g2", event(subject="Made while unsubscribed"))
    assert await request_tenant_resync(world.services, TID) == 2
    await run_all(world)
    await assert_recreated_and_caught_up(world, "s2", lost, "Made while unsubscribed")


async def test_an_expired_subscription_is_recreated_by_the_renewal_timer(world: FakeWorld) -> None:
    await migrate(world, "s1", "s2")
    world.clock.advance(hours=50)  # past the 48 hours: Graph deleted both
    for staff_id in ("s1", "s2"):
        await lose_subscription(world, staff_id)
    world.mailboxes.put("g2", event(subject="Made after expiry"))
    await fan_out(world.services, jobs.renew_tenant)
    await run_all(world)
    assert world.mailboxes.subscribed_users() == {"g1", "g2"}
    created = [c.data["event"]["subject"] for c in world.feed.entries[TID] if c.type == "event.created"]
    assert "Made after expiry" in created


async def test_a_renewal_round_of_a_quiet_tenant_costs_one_graph_listing(world: FakeWorld) -> None:
    await add_tenant(world, "big.example", TenantState.MIGRATING, directory_id="d-big", matched=0)
    await migrate(world, "s1", "s2")
    world.clock.advance(hours=2)
    before = world.mailboxes.requests
    await fan_out(world.services, jobs.renew_tenant)
    await run_all(world)
    assert world.mailboxes.requests - before == 2  # one listing per tenant; nothing to renew, nothing lost


async def test_a_throttled_listing_still_renews_by_the_stored_expiry(world: FakeWorld) -> None:
    await migrate(world, "s1", "s2")
    world.clock.advance(hours=30)

    async def busy(tenant: object) -> list[object]:
        raise throttled(5)

    world.mailboxes.list = busy  # type: ignore[assignment,method-assign]
    await fan_out(world.services, jobs.renew_tenant)
    await run_all(world)
    users = await world.users.list_all(TID)
    assert all(u.subscription_expires_at > world.clock.now() + timedelta(hours=47) for u in users)  # type: ignore[operator]
    assert feed(world).count("tenant.consent_revoked") == 0


# --- one clock for the local stack ----------------------------------------------------------------------


def environ(**extra: str) -> dict[str, str]:
    env = {name: "x" for name in settings.REQUIRED}
    env["AzureWebJobsStorage"] = "UseDevelopmentStorage=true"
    return {**env, **extra}


def test_the_connector_keeps_the_emulators_time_on_the_local_host(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    emulator = EmulatorClock(path)
    parsed = settings.Settings.from_environ(
        environ(LOCAL_CLOCK_FILE=str(path), AZURE_FUNCTIONS_ENVIRONMENT="Development")
    )
    connector = clock_for(parsed)
    assert abs(connector.now() - emulator.now()) < timedelta(seconds=1)
    emulator.advance(timedelta(hours=47))
    assert abs(connector.now() - emulator.now()) < timedelta(seconds=1)
    assert connector.now() > datetime.now(UTC) + timedelta(hours=46)
    emulator.reset()
    assert abs(connector.now() - datetime.now(UTC)) < timedelta(seconds=1)


def test_the_shared_clock_is_refused_outside_the_local_host(tmp_path: Path) -> None:
    clock_file = str(tmp_path / "clock")
    for env in (
        environ(LOCAL_CLOCK_FILE=clock_file),  # no local environment declared: Azure's default, Production
        environ(LOCAL_CLOCK_FILE=clock_file, AZURE_FUNCTIONS_ENVIRONMENT="Production"),
        environ(  # an Azure instance, even one declaring Development
            LOCAL_CLOCK_FILE=clock_file, AZURE_FUNCTIONS_ENVIRONMENT="Development", WEBSITE_INSTANCE_ID="1a2b"
        ),
    ):
        with pytest.raises(settings.SettingsError, match="LOCAL_CLOCK_FILE"):
            settings.Settings.from_environ(env)
    assert isinstance(clock_for(settings.Settings.from_environ(environ())), SystemClock)


def test_a_clock_file_not_written_yet_is_real_time(tmp_path: Path) -> None:
    assert abs(FileClock(tmp_path / "none").now() - datetime.now(UTC)) < timedelta(seconds=1)


class Issuer:
    """An inner credential with azure-identity's cache: the same token until its expiry by real time."""

    issued = 0

    def __init__(self) -> None:
        self.token: AccessToken | None = None

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if self.token is None:
            Issuer.issued += 1
            self.token = AccessToken(f"token-{Issuer.issued}", int(time.time()) + 3599)
        return self.token

    async def close(self) -> None:
        pass


async def test_a_platform_token_expired_by_the_shared_clock_is_replaced(tmp_path: Path) -> None:
    emulator = EmulatorClock(tmp_path / "clock")
    credential = ClockedCredential(Issuer, FileClock(tmp_path / "clock"))
    first = await credential.get_token("https://vault.azure.net/.default")
    assert (await credential.get_token("https://vault.azure.net/.default")).token == first.token
    emulator.advance(timedelta(hours=47))  # the vault now refuses it; the SDK's cache would keep sending it
    fresh = await credential.get_token("https://vault.azure.net/.default")
    assert fresh.token != first.token
    assert (await credential.get_token("https://vault.azure.net/.default")).token == fresh.token
