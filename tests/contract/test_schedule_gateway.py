"""`ScheduleGateway` (Graph's getSchedule) against the in-memory fake and the real adapter on the emulator,
through the SDK: the same assertions for both, so the fake the availability tests rely on keeps Graph's
contract (items not clipped, statuses, all-day events as midnights, an unknown address failing alone,
the 100-address and 62-day limits met by splitting the question)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

import pytest

from shared.adapters.graph.schedules import GraphSchedules
from shared.domain.calendar import EventKind, OutlookEvent
from shared.domain.tenants import Tenant
from shared.service.errors import TenantAccessError
from shared.service.ports.graph import ScheduleGateway
from shared.service.records import ScheduleItem, WorkingHours
from tests.fakes.calendar import FakeMailboxes, FakeSchedules
from tests.integration.graph.harness import EmulatorGraph, open_emulator_graph, tenant_named

pytestmark = pytest.mark.contract

START, END = datetime(2030, 3, 4, tzinfo=UTC), datetime(2030, 3, 9, tzinfo=UTC)


def at(day: int, hour: float, month: int = 3) -> datetime:
    return datetime(2030, month, day, tzinfo=UTC) + timedelta(hours=hour)


class Driver(Protocol):
    schedules: ScheduleGateway
    tenant: Tenant

    async def new_mailbox(self) -> tuple[str, str]:
        """A mailbox: its Graph user id and its address."""
        ...

    async def put(
        self, user: str, start: datetime | date, end: datetime | date, show_as: str = "busy"
    ) -> None: ...
    async def set_hours(self, user: str, days: list[str], start: time, end: time) -> None: ...
    async def revoke_consent(self) -> None: ...


class FakeDriver:
    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.mailboxes = FakeMailboxes()
        self.fake = FakeSchedules(self.mailboxes)
        self.schedules: ScheduleGateway = self.fake
        self.tenant = tenant_named("3f1d6a52-0000-4000-8000-000000000001", "contoso.example")

    async def new_mailbox(self) -> tuple[str, str]:
        n = next(self._ids)
        self.mailboxes.mailbox(f"user-{n}")
        self.fake.know(f"user{n}@contoso.example", f"user-{n}")
        return f"user-{n}", f"user{n}@contoso.example"

    async def put(
        self, user: str, start: datetime | date, end: datetime | date, show_as: str = "busy"
    ) -> None:
        self.mailboxes.put(
            user,
            OutlookEvent(
                id=f"AAMkFake{next(self._ids)}=",
                change_key=None,
                ical_uid=None,
                kind=EventKind.SINGLE,
                series_master_id=None,
                subject="Private",
                body="",
                body_type="text",
                location="",
                start=start,
                end=end,
                all_day=not isinstance(start, datetime),
                show_as=show_as,
                sensitivity="normal",
                categories=(),
                cancelled=False,
                organizer=None,
                attendees=(),
                join_url=None,
                original_time_zone="UTC",
                last_modified=None,
            ),
        )

    async def set_hours(self, user: str, days: list[str], start: time, end: time) -> None:
        self.mailboxes.mailbox(user).working_hours = WorkingHours(tuple(days), start, end, "UTC")

    async def revoke_consent(self) -> None:
        self.mailboxes.revoked_tenants.add(self.tenant.directory_id)


class GraphDriver:
    def __init__(self, graph: EmulatorGraph) -> None:
        self.graph = graph
        self.schedules: ScheduleGateway = GraphSchedules(graph.clients, graph.key_for)
        self.tenant = graph.tenant

    async def new_mailbox(self) -> tuple[str, str]:
        user = await self.graph.new_mailbox()
        found = await self.graph.control.get_user(self.tenant.directory_id, user)
        return user, str(found.get("userPrincipalName") or found.get("upn"))

    async def put(
        self, user: str, start: datetime | date, end: datetime | date, show_as: str = "busy"
    ) -> None:
        payload: dict[str, Any] = {
            "subject": "Private",
            "isAllDay": not isinstance(start, datetime),
            "start": _graph_time(start),
            "end": _graph_time(end),
            "showAs": show_as,
        }
        await self.graph.seed(user, payload)

    async def set_hours(self, user: str, days: list[str], start: time, end: time) -> None:
        hours = {
            "daysOfWeek": days,
            "startTime": start.strftime("%H:%M:%S.0000000"),
            "endTime": end.strftime("%H:%M:%S.0000000"),
            "timeZone": {"name": "UTC"},
        }
        await self.graph.control.set_working_hours(self.tenant.directory_id, user, hours)

    async def revoke_consent(self) -> None:
        await self.graph.revoke_consent()


def _graph_time(value: datetime | date) -> dict[str, str]:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(), tzinfo=UTC)
    return {"dateTime": value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


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


async def test_items_overlapping_the_window_come_with_their_status_and_unclipped(driver: Driver) -> None:
    user, address = await driver.new_mailbox()
    await driver.put(user, at(4, -0.5), at(4, 0.5))  # over the window's start
    await driver.put(user, at(5, 9), at(5, 10), "tentative")
    await driver.put(user, at(6, 9), at(6, 10), "free")
    await driver.put(user, at(7, 9), at(7, 10), "workingElsewhere")
    await driver.put(user, at(20, 9), at(20, 10))  # outside
    found = await driver.schedules.schedules(driver.tenant, user, [address], START, END)
    schedule = found[address]
    assert schedule.error is None
    assert schedule.items == (
        ScheduleItem(at(4, -0.5), at(4, 0.5), "busy"),
        ScheduleItem(at(5, 9), at(5, 10), "tentative"),
        ScheduleItem(at(6, 9), at(6, 10), "free"),
        ScheduleItem(at(7, 9), at(7, 10), "workingElsewhere"),
    )


async def test_an_all_day_event_is_its_zones_midnights(driver: Driver) -> None:
    user, address = await driver.new_mailbox()
    await driver.put(user, date(2030, 3, 5), date(2030, 3, 7), "oof")
    found = await driver.schedules.schedules(driver.tenant, user, [address], START, END)
    assert found[address].items == (ScheduleItem(at(5, 0), at(7, 0), "oof"),)


async def test_working_hours_come_with_the_schedule(driver: Driver) -> None:
    user, address = await driver.new_mailbox()
    await driver.set_hours(user, ["monday", "wednesday"], time(9), time(15, 30))
    found = await driver.schedules.schedules(driver.tenant, user, [address], START, END)
    hours = found[address].working_hours
    assert hours is not None
    assert (hours.days, hours.start, hours.end, hours.zone) == (
        ("monday", "wednesday"),
        time(9),
        time(15, 30),
        "UTC",
    )


async def test_an_unknown_address_fails_alone(driver: Driver) -> None:
    user, address = await driver.new_mailbox()
    await driver.put(user, at(5, 9), at(5, 10))
    stranger = "nobody@unknown-domain.example"
    found = await driver.schedules.schedules(driver.tenant, user, [stranger, address], START, END)
    assert found[stranger].error is not None and found[stranger].items == ()
    assert found[address].error is None and len(found[address].items) == 1


async def test_more_addresses_and_days_than_one_request_takes_are_split(driver: Driver) -> None:
    user, address = await driver.new_mailbox()
    await driver.put(user, at(1, 23), at(2, 1, month=5))  # a long event across the 62-day cut
    await driver.put(user, at(5, 9, month=5), at(5, 10, month=5))  # in the second span only
    strangers = [f"nobody{n}@unknown-domain.example" for n in range(120)]
    start, end = datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 5, 10, tzinfo=UTC)  # 70 days
    found = await driver.schedules.schedules(driver.tenant, user, [*strangers, address], start, end)
    assert len(found) == 121
    assert all(found[s].error is not None for s in strangers)
    assert found[address].items == (
        ScheduleItem(at(1, 23), at(2, 1, month=5), "busy"),  # once, though both requests report it
        ScheduleItem(at(5, 9, month=5), at(5, 10, month=5), "busy"),
    )


async def test_a_revoked_consent_is_the_tenants_refusal(driver: Driver) -> None:
    user, address = await driver.new_mailbox()
    await driver.revoke_consent()
    with pytest.raises(TenantAccessError):
        await driver.schedules.schedules(driver.tenant, user, [address], START, END)
