"""One suite of `MeetingGateway` behaviours, run against the in-memory fake (`tests/fakes/meetings.py`)
and the Graph adapter on the emulator (contract §7), so the fake the service tests rely on keeps the real
contract: createOrGet idempotent on externalId, a move keeps the join URL, delete idempotent, and the
probe tells a user the access policy covers from one it does not, making nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest

from shared.adapters.graph.meetings import GraphMeetings
from shared.domain.teams import TeamsStatus
from shared.domain.tenants import Tenant
from shared.service.errors import TeamsRefused
from shared.service.ports.meetings import MeetingGateway
from tests.fakes.meetings import FakeMeetings
from tests.integration.graph.harness import EmulatorGraph, open_emulator_graph, tenant_named

pytestmark = pytest.mark.contract

START = datetime(2030, 3, 4, 9, tzinfo=UTC)


class Driver(Protocol):
    meetings: MeetingGateway
    tenant: Tenant

    async def new_user(self, *, covered: bool) -> str: ...
    async def count(self, user: str) -> int: ...


class FakeDriver:
    def __init__(self) -> None:
        self.fake = FakeMeetings()
        self.fake.global_policy = False
        self.meetings: MeetingGateway = self.fake
        self.tenant = tenant_named("3f1d6a52-0000-4000-8000-000000000001", "contoso.example")
        self._n = 0

    async def new_user(self, *, covered: bool) -> str:
        self._n += 1
        user = f"user-{self._n}"
        if covered:
            self.fake.allowed.add(user)
        return user

    async def count(self, user: str) -> int:
        return sum(1 for m in self.fake.meetings.values() if m.organizer_id == user)


class GraphDriver:
    def __init__(self, graph: EmulatorGraph) -> None:
        self.graph = graph
        self.meetings: MeetingGateway = GraphMeetings(graph.clients, graph.key_for)
        self.tenant = graph.tenant

    async def new_user(self, *, covered: bool) -> str:
        user = await self.graph.new_mailbox()
        if covered:
            await self.graph.control.add_access_policy(
                self.tenant.directory_id, self.graph.client_id, user_ids=[user]
            )
        return user

    async def count(self, user: str) -> int:
        held = await self.graph.control.meetings(self.tenant.directory_id)
        return sum(1 for m in held if m["organizer"] == user)


@pytest.fixture(params=["fake", "emulator"])
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[Driver]:
    if request.param == "fake":
        yield FakeDriver()
        return
    emulator = request.getfixturevalue("emulator")
    async with emulator.control as control:
        await control.reset()
    async with open_emulator_graph(emulator) as graph:
        yield GraphDriver(graph)


async def make(driver: Driver, user: str, external: str = "appt-1") -> object:
    return await driver.meetings.create_or_get(
        driver.tenant,
        user,
        external_id=external,
        subject="Consult",
        start=START,
        end=START + timedelta(hours=1),
    )


async def test_create_or_get_answers_the_same_meeting_for_the_same_external_id(driver: Driver) -> None:
    user = await driver.new_user(covered=True)
    first = await make(driver, user)
    again = await make(driver, user)
    other = await make(driver, user, "appt-2")
    assert first == again and first != other
    assert first.join_url.startswith("https://") and first.conference_id and first.toll_number  # type: ignore[attr-defined]
    assert await driver.count(user) == 2


async def test_a_moved_meeting_keeps_its_join_url_and_a_delete_is_idempotent(driver: Driver) -> None:
    user = await driver.new_user(covered=True)
    made = await make(driver, user)
    meeting_id = made.meeting_id  # type: ignore[attr-defined]
    await driver.meetings.move(
        driver.tenant, user, meeting_id, START + timedelta(days=1), START + timedelta(days=1, hours=1)
    )
    assert await make(driver, user) == made  # the same meeting, the same join URL
    await driver.meetings.delete(driver.tenant, user, meeting_id)
    await driver.meetings.delete(driver.tenant, user, meeting_id)  # gone already is fine
    assert await driver.count(user) == 0
    anew = await make(driver, user)
    assert anew.join_url != made.join_url  # type: ignore[attr-defined]


async def test_a_user_without_an_access_policy_is_refused_and_the_probe_says_so(driver: Driver) -> None:
    covered = await driver.new_user(covered=True)
    uncovered = await driver.new_user(covered=False)
    with pytest.raises(TeamsRefused) as refused:
        await make(driver, uncovered)
    assert "access policy" in refused.value.reason
    assert (await driver.meetings.probe(driver.tenant, covered)).status is TeamsStatus.MATCHED
    probed = await driver.meetings.probe(driver.tenant, uncovered)
    assert probed.status is TeamsStatus.FORBIDDEN and "access policy" in (probed.reason or "")
    assert await driver.count(covered) == 0 and await driver.count(uncovered) == 0  # probes made nothing
