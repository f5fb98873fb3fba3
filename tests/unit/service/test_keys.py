"""The connector's signing keys by Key Vault version: two workers racing the first key, a rotation seen
by one worker before the other, a disabled version, forged versions, clientStates made before versions."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.domain.signing import client_state
from shared.domain.tenants import TenantState
from shared.service import console
from shared.service.context import Services
from shared.service.errors import ConsoleAccessDenied, DependencyUnavailable
from shared.service.keys import (
    CONSOLE_KEY,
    CURRENT_FOR,
    LOOKUPS_PER_MINUTE,
    NOTIFICATION_KEY,
    KeyRing,
    new_key_value,
)
from shared.service.notifications import receive_changes
from shared.service.subscriptions import ensure_subscription
from tests.fakes.keys import WorkerVault, race_first_reads
from tests.fakes.services import FakeWorld, add_tenant, fake_world
from tests.fakes.storage import FakeSecrets

pytestmark = pytest.mark.unit

TID = "contoso.example"
DIRECTORY = "9188040d-6c67-4c5b-b112-36a304b66dad"


class Worker:
    """One worker: its own KeyRing and monotonic clock over the shared fake vault."""

    def __init__(self, world: FakeWorld, vault: FakeSecrets, *, write_delay: float = 0.0) -> None:
        self.time = 0.0
        self.vault = WorkerVault(vault, write_delay=write_delay)
        self.keys = KeyRing(self.vault, monotonic=lambda: self.time)
        self.services: Services = replace(world.services, keys=self.keys)


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, directory_id=DIRECTORY, matched=2)
    return w


async def racing_workers(world: FakeWorld) -> tuple[Worker, Worker]:
    """Two workers that both find no key and each write one: each signs with its own version."""
    a, b = Worker(world, world.secrets), Worker(world, world.secrets, write_delay=0.01)
    race_first_reads(a.vault, b.vault)
    key_a, key_b = await asyncio.gather(a.keys.signing(NOTIFICATION_KEY), b.keys.signing(NOTIFICATION_KEY))
    assert len(world.secrets.versions[NOTIFICATION_KEY]) == 2  # the race happened: two versions
    assert key_a.version != key_b.version
    return a, b


async def subscribe(worker: Worker, staff_id: str) -> str:
    """The clientState Graph holds for the subscription this worker made for the user."""
    user = await worker.services.users.get(TID, staff_id)
    tenant = await worker.services.tenants.get(TID)
    assert user is not None and tenant is not None
    made = await ensure_subscription(worker.services, tenant, user, force_new=True)
    assert made.subscription_id is not None
    subscriptions = worker.services.subscriptions.subscriptions  # type: ignore[attr-defined]
    _, _, state = subscriptions[made.subscription_id]
    return str(state)


async def accepted(worker: Worker, graph_user_id: str, state: str) -> bool:
    item = {
        "subscriptionId": "sub-x",
        "tenantId": DIRECTORY,
        "clientState": state,
        "changeType": "updated",
        "resource": f"Users/{graph_user_id}/Events/E1",
    }
    received = await receive_changes(worker.services, json.dumps({"value": [item]}).encode())
    return received.accepted == 1


async def test_two_workers_racing_the_first_key_verify_each_others_subscriptions(world: FakeWorld) -> None:
    a, b = await racing_workers(world)
    by_a, by_b = await subscribe(a, "s1"), await subscribe(b, "s2")
    assert by_a != by_b
    assert await accepted(b, "g1", by_a)  # made by one worker, its notification taken by the other
    assert await accepted(a, "g2", by_b)
    assert await accepted(a, "g1", by_a) and await accepted(b, "g2", by_b)
    assert not await accepted(b, "g2", by_a)  # still bound to its user


async def test_a_rotation_seen_by_one_worker_strands_nothing_on_the_other(world: FakeWorld) -> None:
    a, b = Worker(world, world.secrets), Worker(world, world.secrets)
    old = await subscribe(a, "s1")
    link_old = await console.issue_link(b.services, TID, console.timedelta(hours=1))
    await world.secrets.set(NOTIFICATION_KEY, new_key_value())  # the operator rotates both keys
    await world.secrets.set(CONSOLE_KEY, new_key_value())
    a.time += CURRENT_FOR  # a reads the current version again; b still signs with the old one
    new = await subscribe(a, "s2")
    link_new = await console.issue_link(a.services, TID, console.timedelta(hours=1))
    assert old.split(".")[1] != new.split(".")[1]
    for worker in (a, b):
        assert await accepted(worker, "g1", old) and await accepted(worker, "g2", new)
        for link in (link_old, link_new):
            grant = await console.authorize(worker.services, token_of(link.url), TID)
            assert grant.tenant_id == TID


async def test_a_disabled_version_is_refused_once_each_worker_reads_it_again(world: FakeWorld) -> None:
    a, b = Worker(world, world.secrets), Worker(world, world.secrets)
    old = await subscribe(a, "s1")
    await world.secrets.set(NOTIFICATION_KEY, new_key_value())
    b.time += CURRENT_FOR
    assert await accepted(b, "g1", old)
    world.secrets.disabled.add(old.split(".")[1])  # the operator revokes the old version
    b.time += CURRENT_FOR
    assert not await accepted(b, "g1", old)


async def test_forged_versions_cost_the_vault_a_bounded_number_of_reads(world: FakeWorld) -> None:
    a = Worker(world, world.secrets)
    genuine = await subscribe(a, "s1")
    mac = genuine.split(".")[2]
    for n in range(100):
        assert not await accepted(a, "g1", f"v2.{n + 10**6:032x}.{mac}")
        assert not await accepted(a, "g1", f"v2.{n + 10**6:032x}.{mac}")  # the same one again: remembered
    assert a.vault.reads <= LOOKUPS_PER_MINUTE
    assert not await accepted(a, "g1", f"v2.../..{mac}") and not await accepted(a, "g1", "v3.x.y")
    assert await accepted(a, "g1", genuine)


async def test_a_client_state_made_before_versions_is_still_accepted(world: FakeWorld) -> None:
    a = Worker(world, world.secrets)
    key = await a.keys.signing(NOTIFICATION_KEY)
    legacy = "v1." + client_state(key.secret, key.version, DIRECTORY, "g1").split(".")[2]
    assert await accepted(a, "g1", legacy)
    assert not await accepted(a, "g2", legacy)


async def test_a_console_token_naming_an_unknown_version_is_refused(world: FakeWorld) -> None:
    a = Worker(world, world.secrets)
    key = await a.keys.signing(CONSOLE_KEY)
    expires = world.clock.now() + console.timedelta(hours=1)
    forged = console.sign_token(key.secret, TID, expires, key_version="0" * 32)
    with pytest.raises(ConsoleAccessDenied):
        await console.authorize(a.services, forged, TID)


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


async def test_key_vault_down_at_a_refresh_keeps_the_current_version(world: FakeWorld) -> None:
    a = Worker(world, world.secrets)
    signed = await subscribe(a, "s1")
    a.time += CURRENT_FOR

    async def unavailable(name: str) -> None:
        raise DependencyUnavailable("key_vault", "503")

    a.vault.current = unavailable  # type: ignore[assignment,method-assign]
    assert await accepted(a, "g1", signed)  # verified, and signing goes on, with the cached version
    assert (await a.keys.signing(NOTIFICATION_KEY)).version == signed.split(".")[1]
