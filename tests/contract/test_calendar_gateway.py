"""One suite of `CalendarGateway` and `SubscriptionGateway` behaviours, run against the in-memory fake
(`tests/fakes/calendar.py`) and the real Graph adapters on the emulator, so the fake the service tests
rely on keeps the real contract.

Each implementation comes with a small driver that does what a person does in Outlook (put, rename,
reschedule, delete an event), what an administrator does (take a mailbox's licence, revoke consent), and
what Graph does on its own (forget delta tokens); the assertions are the same for both.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

import pytest

from shared.adapters.graph.calendar import GraphCalendar, GraphSubscriptions
from shared.domain.calendar import APPOINTMENT_PROPERTY_ID, EventKind, OutlookEvent, RemovedEvent
from shared.domain.tenants import Tenant
from shared.service.errors import DeltaTokenRejected, MailboxUnavailable, SubscriptionGone, TenantAccessError
from shared.service.ports.graph import CalendarGateway, SubscriptionGateway
from shared.service.records import DeltaRead
from tests.fakes.calendar import FakeMailboxes
from tests.integration.graph.harness import EmulatorGraph, open_emulator_graph, tenant_named

pytestmark = pytest.mark.contract

WINDOW = (datetime(2030, 3, 1, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC))


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2030, month, day, hour, tzinfo=UTC)


@dataclass(frozen=True)
class Spec:
    """An event as a person enters it: times in UTC, or dates for an all-day event."""

    subject: str
    start: datetime | date
    end: datetime | date
    location: str = ""

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, datetime)


class Driver(Protocol):
    calendar: CalendarGateway
    subscriptions: SubscriptionGateway
    tenant: Tenant

    async def new_mailbox(self) -> str: ...
    async def put(
        self, user: str, spec: Spec, *, ews_id: str | None = None, appointment_id: str | None = None
    ) -> str: ...
    async def rename(self, user: str, event_id: str, subject: str) -> None: ...
    async def reschedule(self, user: str, event_id: str, start: datetime, end: datetime) -> None: ...
    async def delete(self, user: str, event_id: str) -> None: ...
    async def expire_tokens(self, user: str) -> None: ...
    async def take_mailbox_away(self, user: str) -> None: ...
    async def revoke_consent(self) -> None: ...
    async def graph_removes_subscription(self, subscription_id: str) -> None: ...
    async def other_organisation(self) -> tuple[Tenant, str]: ...


class FakeDriver:
    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.fake = FakeMailboxes()
        self.calendar: CalendarGateway = self.fake
        self.subscriptions: SubscriptionGateway = self.fake
        self.tenant = tenant_named("3f1d6a52-0000-4000-8000-000000000001", "contoso.example")

    async def new_mailbox(self) -> str:
        user = f"user-{next(self._ids)}"
        self.fake.mailbox(user)
        return user

    async def put(
        self, user: str, spec: Spec, *, ews_id: str | None = None, appointment_id: str | None = None
    ) -> str:
        event_id = f"AAMkFake{next(self._ids)}="
        self.fake.put(
            user,
            OutlookEvent(
                id=event_id,
                change_key=None,
                ical_uid=f"uid-{event_id}",
                kind=EventKind.SINGLE,
                series_master_id=None,
                subject=spec.subject,
                body="",
                body_type="text",
                location=spec.location,
                start=spec.start,
                end=spec.end,
                all_day=spec.all_day,
                show_as="busy",
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
        box = self.fake.mailbox(user)
        if ews_id:
            box.ews_ids[ews_id] = event_id
        if appointment_id:
            box.appointment_ids[event_id] = appointment_id
        return event_id

    async def rename(self, user: str, event_id: str, subject: str) -> None:
        self.fake.put(user, replace(self.fake.mailbox(user).events[event_id], subject=subject))

    async def reschedule(self, user: str, event_id: str, start: datetime, end: datetime) -> None:
        self.fake.put(user, replace(self.fake.mailbox(user).events[event_id], start=start, end=end))

    async def delete(self, user: str, event_id: str) -> None:
        self.fake.remove(user, event_id)

    async def expire_tokens(self, user: str) -> None:
        self.fake.expire_tokens(user)

    async def take_mailbox_away(self, user: str) -> None:
        self.fake.mailbox(user).unavailable = "the user has no Exchange Online mailbox"

    async def revoke_consent(self) -> None:
        self.fake.revoked_tenants.add(self.tenant.directory_id)

    async def graph_removes_subscription(self, subscription_id: str) -> None:
        self.fake.subscriptions.pop(subscription_id)

    async def other_organisation(self) -> tuple[Tenant, str]:
        return tenant_named(
            "3f1d6a52-0000-4000-8000-000000000002", "fabrikam.example"
        ), await self.new_mailbox()


class GraphDriver:
    def __init__(self, graph: EmulatorGraph) -> None:
        self.graph = graph
        self.calendar: GraphCalendar = graph.calendar()
        self.subscriptions: GraphSubscriptions = graph.subscriptions()
        self.tenant = graph.tenant

    async def new_mailbox(self) -> str:
        return await self.graph.new_mailbox()

    async def put(
        self, user: str, spec: Spec, *, ews_id: str | None = None, appointment_id: str | None = None
    ) -> str:
        payload: dict[str, Any] = {
            "subject": spec.subject,
            "isAllDay": spec.all_day,
            "start": _graph_time(spec.start),
            "end": _graph_time(spec.end),
        }
        if spec.location:
            payload["location"] = {"displayName": spec.location}
        if appointment_id:
            payload["singleValueExtendedProperties"] = [
                {"id": APPOINTMENT_PROPERTY_ID, "value": appointment_id}
            ]
        return str((await self.graph.seed(user, payload, ews_id=ews_id))["id"])

    async def rename(self, user: str, event_id: str, subject: str) -> None:
        await (await self.graph.graph()).request_json(
            "PATCH", f"/users/{user}/events/{event_id}", {"subject": subject}
        )

    async def reschedule(self, user: str, event_id: str, start: datetime, end: datetime) -> None:
        body = {"start": _graph_time(start), "end": _graph_time(end)}
        await (await self.graph.graph()).request_json("PATCH", f"/users/{user}/events/{event_id}", body)

    async def delete(self, user: str, event_id: str) -> None:
        await (await self.graph.graph()).request_json("DELETE", f"/users/{user}/events/{event_id}")

    async def expire_tokens(self, user: str) -> None:
        await self.graph.control.expire_delta_tokens(tenant_id=self.tenant.directory_id, user=user)

    async def take_mailbox_away(self, user: str) -> None:
        await self.graph.control.update_user(self.tenant.directory_id, user, mailbox_enabled=False)

    async def revoke_consent(self) -> None:
        await self.graph.revoke_consent()

    async def graph_removes_subscription(self, subscription_id: str) -> None:
        await self.graph.control.remove_subscription(subscription_id)

    async def other_organisation(self) -> tuple[Tenant, str]:
        other = await self.graph.new_organisation("other")
        return other, await self.graph.new_mailbox(other)


def _graph_time(value: datetime | date) -> dict[str, str]:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
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


def events(read: DeltaRead) -> dict[str, OutlookEvent]:
    return {i.id: i for i in read.items if isinstance(i, OutlookEvent)}


def removed(read: DeltaRead) -> set[str]:
    return {i.id for i in read.items if isinstance(i, RemovedEvent)}


# --- delta reads -----------------------------------------------------------------------------------


async def test_a_first_read_returns_the_windows_events_and_a_link(driver: Driver):
    user = await driver.new_mailbox()
    meeting = await driver.put(user, Spec("Inside", at(10, 9), at(10, 10), location="Room 1"))
    holiday = await driver.put(user, Spec("Holiday", date(2030, 3, 15), date(2030, 3, 16)))
    await driver.put(user, Spec("Outside", at(1, 9, month=5), at(1, 10, month=5)))

    read = await driver.calendar.read_delta(driver.tenant, user, None, WINDOW)

    found = events(read)
    assert set(found) == {meeting, holiday}
    assert removed(read) == set()
    assert (found[meeting].subject, found[meeting].location) == ("Inside", "Room 1")
    assert (found[meeting].start, found[meeting].end) == (at(10, 9), at(10, 10))
    assert (found[holiday].start, found[holiday].end, found[holiday].all_day) == (
        date(2030, 3, 15),
        date(2030, 3, 16),
        True,
    )
    assert read.delta_link
    assert read.requests >= 1


async def test_a_read_with_the_link_and_no_change_returns_nothing(driver: Driver):
    user = await driver.new_mailbox()
    await driver.put(user, Spec("Standing", at(10, 9), at(10, 10)))
    first = await driver.calendar.read_delta(driver.tenant, user, None, WINDOW)

    again = await driver.calendar.read_delta(driver.tenant, user, first.delta_link, WINDOW)

    assert again.items == []
    assert again.delta_link


async def test_a_change_then_a_read_with_the_link_returns_only_it(driver: Driver):
    user = await driver.new_mailbox()
    keep = await driver.put(user, Spec("Keep", at(10, 9), at(10, 10)))
    change = await driver.put(user, Spec("Change", at(11, 9), at(11, 10)))
    first = await driver.calendar.read_delta(driver.tenant, user, None, WINDOW)
    await driver.rename(user, change, "Changed")

    second = await driver.calendar.read_delta(driver.tenant, user, first.delta_link, WINDOW)

    assert set(events(second)) == {change}
    assert events(second)[change].subject == "Changed"
    assert keep not in events(second) and not removed(second)
    third = await driver.calendar.read_delta(driver.tenant, user, second.delta_link, WINDOW)
    assert third.items == []


async def test_an_event_created_after_a_read_comes_with_the_next_one(driver: Driver):
    user = await driver.new_mailbox()
    first = await driver.calendar.read_delta(driver.tenant, user, None, WINDOW)
    assert first.items == []
    added = await driver.put(user, Spec("Added", at(20, 14), at(20, 15)))

    second = await driver.calendar.read_delta(driver.tenant, user, first.delta_link, WINDOW)

    assert set(events(second)) == {added}


async def test_a_deleted_event_comes_back_as_removed(driver: Driver):
    user = await driver.new_mailbox()
    doomed = await driver.put(user, Spec("Doomed", at(12, 9), at(12, 10)))
    first = await driver.calendar.read_delta(driver.tenant, user, None, WINDOW)
    await driver.delete(user, doomed)

    second = await driver.calendar.read_delta(driver.tenant, user, first.delta_link, WINDOW)

    assert removed(second) == {doomed}
    assert events(second) == {}


async def test_an_event_moved_out_of_the_window_comes_back_as_removed(driver: Driver):
    user = await driver.new_mailbox()
    moved = await driver.put(user, Spec("Moved", at(12, 9), at(12, 10)))
    first = await driver.calendar.read_delta(driver.tenant, user, None, WINDOW)
    await driver.reschedule(user, moved, at(12, 9, month=6), at(12, 10, month=6))

    second = await driver.calendar.read_delta(driver.tenant, user, first.delta_link, WINDOW)

    assert removed(second) == {moved}


async def test_an_expired_link_is_rejected_and_a_new_round_starts_over(driver: Driver):
    user = await driver.new_mailbox()
    kept = await driver.put(user, Spec("Kept", at(12, 9), at(12, 10)))
    first = await driver.calendar.read_delta(driver.tenant, user, None, WINDOW)
    await driver.expire_tokens(user)

    with pytest.raises(DeltaTokenRejected):
        await driver.calendar.read_delta(driver.tenant, user, first.delta_link, WINDOW)

    fresh = await driver.calendar.read_delta(driver.tenant, user, None, WINDOW)
    assert set(events(fresh)) == {kept}


async def test_a_mailbox_without_exchange_is_unavailable(driver: Driver):
    user = await driver.new_mailbox()
    await driver.take_mailbox_away(user)

    with pytest.raises(MailboxUnavailable) as raised:
        await driver.calendar.read_delta(driver.tenant, user, None, WINDOW)
    assert "mailbox" in raised.value.reason


async def test_revoked_consent_is_a_tenant_access_error(driver: Driver):
    user = await driver.new_mailbox()
    await driver.revoke_consent()

    with pytest.raises(TenantAccessError):
        await driver.calendar.read_delta(driver.tenant, user, None, WINDOW)


# --- migration: EWS ids and the connector's own events -------------------------------------------


async def test_seeded_ews_ids_translate_to_the_ids_a_delta_read_returns(driver: Driver):
    user = await driver.new_mailbox()
    first = await driver.put(user, Spec("From EWS 1", at(5, 9), at(5, 10)), ews_id="AAMkADews-one")
    second = await driver.put(user, Spec("From EWS 2", at(6, 9), at(6, 10)), ews_id="AAMkADews-two")
    await driver.put(user, Spec("No EWS id", at(7, 9), at(7, 10)))

    translated = await driver.calendar.translate_ews_ids(
        driver.tenant, user, ["AAMkADews-one", "AAMkADews-two", "AAMkADews-unknown"]
    )

    assert translated == {"AAMkADews-one": first, "AAMkADews-two": second}
    read = await driver.calendar.read_delta(driver.tenant, user, None, WINDOW)
    assert set(translated.values()) <= set(events(read))


async def test_the_ews_id_of_a_deleted_event_is_left_out(driver: Driver):
    user = await driver.new_mailbox()
    gone = await driver.put(user, Spec("Gone", at(5, 9), at(5, 10)), ews_id="AAMkADews-gone")
    await driver.delete(user, gone)

    assert await driver.calendar.translate_ews_ids(driver.tenant, user, ["AAMkADews-gone"]) == {}
    assert await driver.calendar.translate_ews_ids(driver.tenant, user, []) == {}


async def test_connector_events_are_the_events_carrying_the_appointment_property(driver: Driver):
    user = await driver.new_mailbox()
    ours = await driver.put(user, Spec("Booked via host", at(8, 9), at(8, 10)), appointment_id="appt-42")
    late = await driver.put(
        user, Spec("Later", at(1, 9, month=9), at(1, 10, month=9)), appointment_id="appt-43"
    )
    await driver.put(user, Spec("Made in Outlook", at(8, 11), at(8, 12)))

    assert await driver.calendar.connector_events(driver.tenant, user) == {ours: "appt-42", late: "appt-43"}


async def test_stamped_reads_the_property_of_the_named_events_only(driver: Driver):
    user = await driver.new_mailbox()
    ours = await driver.put(user, Spec("Booked via host", at(8, 9), at(8, 10)), appointment_id="appt-44")
    theirs = await driver.put(user, Spec("Made in Outlook", at(8, 11), at(8, 12)))
    gone = await driver.put(user, Spec("Deleted", at(8, 13), at(8, 14)), appointment_id="appt-45")
    other = await driver.put(user, Spec("Not asked", at(8, 15), at(8, 16)), appointment_id="appt-46")
    await driver.delete(user, gone)

    found = await driver.calendar.stamped(driver.tenant, user, [ours, theirs, gone])
    assert found == {ours: "appt-44"}
    assert other not in found


# --- subscriptions ---------------------------------------------------------------------------------


def expiry(days: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


async def test_a_subscription_is_created_listed_renewed_and_deleted(driver: Driver):
    user = await driver.new_mailbox()
    subs = driver.subscriptions

    created = await subs.create(driver.tenant, user, "client-state-1", expiry(2))

    assert created.id
    assert abs(created.expires_at - expiry(2)) < timedelta(seconds=5)
    assert created.resource.strip("/").lower() == f"users/{user}/events".lower()
    assert [s.id for s in await subs.list(driver.tenant)] == [created.id]

    renewed = await subs.renew(driver.tenant, created.id, expiry(3))
    assert abs(renewed - expiry(3)) < timedelta(seconds=5)
    [listed] = await subs.list(driver.tenant)
    assert listed.expires_at == renewed

    await subs.delete(driver.tenant, created.id)
    assert await subs.list(driver.tenant) == []
    await subs.delete(driver.tenant, created.id)  # already gone: fine
    with pytest.raises(SubscriptionGone):
        await subs.renew(driver.tenant, created.id, expiry(3))


async def test_renewing_a_subscription_graph_removed_is_subscription_gone(driver: Driver):
    user = await driver.new_mailbox()
    kept = await driver.subscriptions.create(driver.tenant, user, "kept", expiry(2))
    other = await driver.new_mailbox()
    dropped = await driver.subscriptions.create(driver.tenant, other, "dropped", expiry(2))
    await driver.graph_removes_subscription(dropped.id)

    with pytest.raises(SubscriptionGone):
        await driver.subscriptions.renew(driver.tenant, dropped.id, expiry(3))
    assert [s.id for s in await driver.subscriptions.list(driver.tenant)] == [kept.id]
    await driver.subscriptions.delete(driver.tenant, dropped.id)


async def test_subscriptions_belong_to_their_organisation(driver: Driver):
    user = await driver.new_mailbox()
    other, their_user = await driver.other_organisation()
    ours = await driver.subscriptions.create(driver.tenant, user, "ours", expiry(2))
    theirs = await driver.subscriptions.create(other, their_user, "theirs", expiry(2))

    assert [s.id for s in await driver.subscriptions.list(driver.tenant)] == [ours.id]
    assert [s.id for s in await driver.subscriptions.list(other)] == [theirs.id]
    with pytest.raises(SubscriptionGone):
        await driver.subscriptions.renew(driver.tenant, theirs.id, expiry(3))
    await driver.subscriptions.delete(driver.tenant, theirs.id)  # not ours: nothing happens
    assert [s.id for s in await driver.subscriptions.list(other)] == [theirs.id]
