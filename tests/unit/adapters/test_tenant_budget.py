"""A tenant's request budget in one worker: unthrottled it never waits; a 429 halves its rate, a
tenant-wide one pauses every request for Retry-After; bulk work waits for tokens while interactive work
goes first; the rate climbs back while Graph stays quiet; nothing ever fails."""

from __future__ import annotations

import asyncio

import pytest

from shared.adapters.graph.tenant_budget import TenantBudget, tenant_wide
from shared.service.work_priority import Priority


class Time:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def budget(time: Time, ceiling: float = 10) -> TenantBudget:
    return TenantBudget(ceiling, clock=time.clock, sleep=time.sleep, recovery=0.1, calm=1.0)


async def test_an_unthrottled_tenant_never_waits_within_its_ceiling() -> None:
    time = Time()
    tenant = budget(time)
    for _ in range(10):
        await tenant.take(Priority.BULK)
    assert time.now == 0 and tenant.waited == 0


async def sent(tenant: TenantBudget, time: Time, requests: int, seconds: float) -> None:
    """`requests` spread over `seconds`."""
    for _ in range(requests):
        await tenant.take(Priority.INTERACTIVE)
        time.now += seconds / requests


async def test_a_429_halves_what_the_tenant_sent_and_bulk_work_slows_to_it() -> None:
    time = Time()
    tenant = budget(time, ceiling=100)
    await sent(tenant, time, 40, 4)  # 10 a second, well under the ceiling
    tenant.throttled(0, whole_tenant=False)
    tenant.throttled(0, whole_tenant=False)  # the same burst: one signal
    assert tenant.rate == pytest.approx(5)  # half of the 10 a second sent
    tenant.throttled(0, whole_tenant=False)
    time.now += 1.5
    tenant.throttled(0, whole_tenant=False)
    assert tenant.rate == pytest.approx(3.25)  # half of 6.5 (5 and 1.5 s of climbing; under the 7.3 sent)
    begun = time.now
    for _ in range(15):
        await tenant.take(Priority.BULK)
    assert 3 < time.now - begun < 6  # 3.25 a second and more (the rate climbing back meanwhile)


async def test_a_429_before_enough_was_sent_to_measure_still_leaves_a_useful_rate() -> None:
    time = Time()
    tenant = budget(time, ceiling=100)
    tenant.throttled(0, whole_tenant=False)
    assert tenant.rate == 12.5


async def test_a_tenant_wide_429_pauses_every_request_for_retry_after() -> None:
    time = Time()
    tenant = budget(time)
    tenant.throttled(7, whole_tenant=True)
    await tenant.take(Priority.INTERACTIVE)
    assert time.now >= 7


async def test_a_mailbox_429_pauses_nobody() -> None:
    time = Time()
    tenant = budget(time)
    tenant.throttled(30, whole_tenant=False)
    await tenant.take(Priority.INTERACTIVE)
    await tenant.take(Priority.BULK)
    assert time.now < 1


async def test_interactive_work_goes_first_and_bulk_work_pays_for_it() -> None:
    time = Time()
    tenant = budget(time)
    await sent(tenant, time, 20, 2)
    tenant.throttled(0, whole_tenant=False)  # 5 a second
    begun = time.now
    for _ in range(20):
        await tenant.take(Priority.INTERACTIVE)
    assert time.now == begun  # never waited
    begun = time.now
    await tenant.take(Priority.BULK)
    assert time.now - begun >= 2  # waited for the debt to be paid


async def test_the_rate_climbs_back_to_the_ceiling_while_graph_is_quiet() -> None:
    time = Time()
    tenant = budget(time)
    await sent(tenant, time, 20, 2)
    tenant.throttled(0, whole_tenant=False)
    assert tenant.rate == pytest.approx(5)
    time.now += 10  # 1 / recovery: back where it fell from
    await tenant.take(Priority.BULK)
    assert tenant.rate == pytest.approx(10)
    for _ in range(5):
        tenant.throttled(0, whole_tenant=False)
        time.now += 1.5
    assert tenant.rate < 2
    time.now += 300
    await tenant.take(Priority.BULK)
    assert tenant.rate == 10


async def test_the_rate_never_falls_below_its_floor() -> None:
    time = Time()
    tenant = TenantBudget(10, clock=time.clock, sleep=time.sleep, recovery=0, calm=1.0)
    for _ in range(40):
        tenant.throttled(0, whole_tenant=False)
        time.now += 1.1
    assert tenant.rate == tenant.floor


def test_graph_names_tenant_wide_scopes() -> None:
    assert tenant_wide("Tenant_Application/ReadWrite/9a3d526c/0785ef7c")
    assert tenant_wide("Tenant/Write/9a3d526c/0785ef7c")
    assert not tenant_wide("Application/ReadWrite/9a3d526c/0785ef7c")
    assert not tenant_wide(None)
