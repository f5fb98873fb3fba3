"""The availability use case on fakes: which source answers for each staff member, the host's holds on top
of it, per-staff errors, and the tenant's blocking settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.domain.appointments import Appointment, Override, Recurrence
from shared.domain.availability import Group, Period, Question
from shared.domain.tenants import TenantState
from shared.domain.users import MatchStatus, SyncState
from shared.service.appointment_api import delete_appointment, put_appointment
from shared.service.availability import Answer, Source, answer, busy_times
from shared.service.context import Services
from shared.service.errors import Conflict, DependencyUnavailable, NotFound, RateLimited
from shared.service.recent import RecentRows
from shared.service.records import BusyInstance, SyncedBusy, WorkingHours, WorkingHoursRecord
from tests.fakes.events import event
from tests.fakes.services import FakeWorld, add_tenant, fake_world

pytestmark = pytest.mark.unit

TID = "contoso.example"
AMS = ZoneInfo("Europe/Amsterdam")
DAY = datetime(2026, 12, 1, tzinfo=UTC)  # a Tuesday, within the fake clock's window
SYNCED_AT = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, matched=3)
    for n in (1, 2, 3):
        w.schedules.know(f"user{n}@contoso.example", f"g{n}")
    return w


def at(hour: float, day: datetime = DAY) -> datetime:
    return day + timedelta(hours=hour)


def instance(
    key: str, start: float, end: float, show_as: str = "busy", appointment: str | None = None
) -> BusyInstance:
    return BusyInstance(key, at(start), at(end), show_as, appointment_id=appointment)


async def synced(world: FakeWorld, staff_id: str, *instances: BusyInstance, complete: bool = True) -> None:
    user = await world.users.get(TID, staff_id)
    assert user is not None
    await world.users.save(replace(user, sync_state=SyncState.SYNCED, last_sync_at=SYNCED_AT))
    start, end = DAY - timedelta(days=30), DAY + timedelta(days=180)
    await world.busy.write_index(TID, staff_id, SyncedBusy(tuple(instances), start, end, SYNCED_AT, complete))


def question(
    *groups: Group, start: float = 9, end: float = 12, minutes: int = 60, **changes: object
) -> Question:
    base = Question(
        groups=groups,
        periods=(Period(at(start), at(end)),),
        duration=timedelta(minutes=minutes),
        interval=timedelta(minutes=60),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def starts(found: Answer) -> list[float]:
    return [(s.start - DAY).total_seconds() / 3600 for s in found.slots or ()]


def appointment(hour: int, *staff: str, appointment_id: str = "a-1", **changes: object) -> Appointment:
    base = Appointment(
        appointment_id=appointment_id,
        subject="Intake",
        start=at(hour).astimezone(AMS),
        end=at(hour + 1).astimezone(AMS),
        time_zone="Europe/Amsterdam",
        all_day=False,
        staff_ids=staff or ("s1",),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_a_synced_user_is_answered_from_its_index(world: FakeWorld) -> None:
    await synced(world, "s1", instance("k1", 10, 11))
    found = await answer(world.services, TID, question(Group(("s1",))), periods=False)
    assert starts(found) == [9, 11]
    (staff,) = found.staff
    assert (staff.source, staff.as_of, staff.error) == (Source.SYNCED, SYNCED_AT, None)
    assert world.schedules.requests == 0  # Graph was not asked


async def test_busy_times_never_carry_details_and_all_day_ones_are_dates(world: FakeWorld) -> None:
    all_day = BusyInstance("k2", date(2026, 12, 2), date(2026, 12, 3), "oof", all_day=True)
    await synced(world, "s1", instance("k1", 10, 11, "tentative"), all_day, instance("k3", 30, 31, "free"))
    found = await busy_times(world.services, TID, "s1", at(0), at(72))
    assert [(e.start, e.end, e.show_as.value, e.all_day) for e in found.busy] == [
        (at(10), at(11), "tentative", False),
        (date(2026, 12, 2), date(2026, 12, 3), "oof", True),
        (at(30), at(31), "free", False),
    ]


async def test_a_put_blocks_its_slot_before_outlook_has_it(world: FakeWorld) -> None:
    await synced(world, "s1")
    await put_appointment(world.services, TID, appointment(10))
    found = await answer(world.services, TID, question(Group(("s1",))), periods=False)
    assert starts(found) == [9, 11]
    assert world.writer.writes == 0


async def test_a_moved_appointment_frees_its_old_time_at_once(world: FakeWorld) -> None:
    await synced(world, "s1", instance("copy", 10, 11, appointment="a-1"))  # Outlook's copy, at 10
    await put_appointment(world.services, TID, appointment(10))
    await put_appointment(world.services, TID, appointment(9))  # moved; Outlook still says 10
    found = await answer(world.services, TID, question(Group(("s1",))), periods=False)
    assert starts(found) == [10, 11]


async def test_a_deleted_appointment_frees_its_time_before_outlook_hears_of_it(world: FakeWorld) -> None:
    await synced(world, "s1", instance("copy", 10, 11, appointment="a-1"))
    await put_appointment(world.services, TID, appointment(10))
    await delete_appointment(world.services, TID, "a-1")
    found = await answer(world.services, TID, question(Group(("s1",))), periods=False)
    assert starts(found) == [9, 10, 11]


async def test_a_held_series_skips_its_cancelled_date_and_moves_its_exception(world: FakeWorld) -> None:
    await synced(world, "s1")
    first = datetime(2026, 12, 1, 11, tzinfo=AMS)  # 10:00 UTC
    series = appointment(
        10,
        start=first,
        end=first + timedelta(hours=1),
        recurrence=Recurrence(
            "FREQ=DAILY;COUNT=5",
            exdates=(date(2026, 12, 2),),
            overrides=(
                Override(
                    date(2026, 12, 3),
                    datetime(2026, 12, 3, 14, tzinfo=AMS),
                    datetime(2026, 12, 3, 15, tzinfo=AMS),
                ),
            ),
        ),
    )
    await put_appointment(world.services, TID, series)
    found = await busy_times(world.services, TID, "s1", at(0), at(24 * 6))
    assert [e.start for e in found.busy] == [
        at(10),
        at(10 + 24 * 2 + 3),  # 3 December, moved to 14:00 Amsterdam
        at(10 + 24 * 3),
        at(10 + 24 * 4),
    ]


async def test_an_all_day_hold_blocks_from_midnight_in_the_appointments_zone(world: FakeWorld) -> None:
    await synced(world, "s1")
    day = appointment(0, start=date(2026, 12, 1), end=date(2026, 12, 2), all_day=True)
    await put_appointment(world.services, TID, day)
    found = await answer(world.services, TID, question(Group(("s1",)), start=-3, end=26), periods=True)
    assert found.periods == [Period(at(-3), at(-1)), Period(at(23), at(26))]  # Amsterdam's day, in UTC


async def test_a_migrating_user_is_answered_through_getschedule(world: FakeWorld) -> None:
    await synced(world, "s1", instance("k1", 10, 11))
    user = await world.users.get(TID, "s2")
    assert user is not None
    await world.users.save(replace(user, sync_state=SyncState.MIGRATING))  # a first migration: no index
    world.mailboxes.put("g2", event("e1", start=at(9)))
    world.mailboxes.mailbox("g2").working_hours = WorkingHours(
        ("monday", "tuesday"), time(9), time(12), "W. Europe Standard Time"
    )
    found = await answer(world.services, TID, question(Group(("s1", "s2"))), periods=False)
    assert starts(found) == [11]  # s2 is busy at 9 (in Outlook), s1 at 10
    found = await answer(
        world.services, TID, question(Group(("s1", "s2"), required=1), working_hours=True), periods=False
    )
    assert starts(found) == [9, 10, 11]  # s2's hours are 09:00-12:00 Amsterdam, 08:00-11:00 UTC
    assert [s.free for s in found.slots or ()] == [(("s1",),), (("s2",),), (("s1",),)]
    s1, s2 = found.staff
    assert (s1.source, s2.source) == (Source.SYNCED, Source.GRAPH)
    assert s2.as_of == world.clock.now() and s2.hours is not None
    assert world.schedules.requests == 2  # one per question: s1 never went to Graph


async def test_an_index_that_does_not_cover_the_span_falls_back_to_graph(world: FakeWorld) -> None:
    await synced(world, "s1", instance("k1", 10, 11))
    far = DAY + timedelta(days=400)
    found = await busy_times(world.services, TID, "s1", far, far + timedelta(hours=2))
    assert found.source is Source.GRAPH


async def test_an_incomplete_index_falls_back_to_graph(world: FakeWorld) -> None:
    await synced(world, "s1", instance("k1", 10, 11), complete=False)
    found = await busy_times(world.services, TID, "s1", at(0), at(24))
    assert found.source is Source.GRAPH and found.busy == ()


async def test_getschedule_is_asked_within_graphs_limits_for_a_long_span(world: FakeWorld) -> None:
    found = await busy_times(world.services, TID, "s1", at(0), at(24 * 70))  # a pending user, 70 days
    assert found.source is Source.GRAPH
    assert world.schedules.requests == 2  # 62 days, then 8


async def test_unknown_and_unmatched_staff_are_per_staff_errors(world: FakeWorld) -> None:
    await synced(world, "s1")
    user = await world.users.get(TID, "s2")
    assert user is not None
    await world.users.save(replace(user, match=MatchStatus.UNMATCHED, sync_state=SyncState.DISABLED))
    found = await answer(
        world.services, TID, question(Group(("s1", "s2", "nobody"), required=1)), periods=False
    )
    assert starts(found) == [9, 10, 11]
    assert {s.free for s in found.slots or ()} == {(("s1",),)}
    errors = {s.staff_id: s.error for s in found.staff}
    assert errors["s1"] is None
    assert errors["s2"] is not None and "not matched" in errors["s2"]
    assert errors["nobody"] == "no such staff member"
    with pytest.raises(NotFound) as unknown:
        await answer(world.services, TID, question(Group(("nobody",))), periods=False)
    assert unknown.value.field == "staff_id"
    with pytest.raises(Conflict):
        await busy_times(world.services, TID, "s2", at(0), at(24))


async def test_a_graph_failure_is_the_graph_staffs_error_not_the_questions(world: FakeWorld) -> None:
    await synced(world, "s1")
    world.schedules.faults.append(RateLimited(5, "429 ApplicationThrottled"))
    found = await answer(world.services, TID, question(Group(("s1", "s2"), required=1)), periods=False)
    assert starts(found) == [9, 10, 11]
    assert found.staff[1].error is not None and "getSchedule" in found.staff[1].error
    world.schedules.faults.append(RateLimited(5, "429 ApplicationThrottled"))
    with pytest.raises(DependencyUnavailable):
        await busy_times(world.services, TID, "s2", at(0), at(24))


async def test_tentative_and_working_elsewhere_block_as_the_tenant_says(world: FakeWorld) -> None:
    await synced(world, "s1", instance("k1", 9, 10, "tentative"), instance("k2", 10, 11, "workingElsewhere"))
    found = await answer(world.services, TID, question(Group(("s1",))), periods=False)
    assert starts(found) == [10, 11]  # by default tentative blocks, working elsewhere does not
    tenant = await world.tenants.get(TID)
    assert tenant is not None
    settings = replace(tenant.settings, tentative_blocks=False, working_elsewhere_blocks=True)
    await world.tenants.save(replace(tenant, settings=settings))
    found = await answer(world.services, TID, question(Group(("s1",))), periods=False)
    assert starts(found) == [9, 11]


async def test_working_hours_come_from_the_stored_mailbox_settings(world: FakeWorld) -> None:
    await synced(world, "s1")
    hours = WorkingHours(("tuesday",), time(11), time(13), "W. Europe Standard Time")
    await world.busy.write_hours(TID, "s1", WorkingHoursRecord(hours, "Europe/Amsterdam", SYNCED_AT))
    found = await answer(world.services, TID, question(Group(("s1",)), working_hours=True), periods=False)
    assert starts(found) == [10, 11]  # 11:00-13:00 Amsterdam is 10:00-12:00 UTC


async def test_a_tenant_not_connected_is_refused(world: FakeWorld) -> None:
    await add_tenant(world, "other.example", TenantState.PENDING_CONSENT, directory_id="dir-2")
    with pytest.raises(Conflict):
        await busy_times(world.services, "other.example", "s1", at(0), at(1))
    with pytest.raises(NotFound):
        await busy_times(world.services, "nobody.example", "s1", at(0), at(1))


async def test_a_hold_and_its_copy_reported_by_getschedule_are_one_busy_time(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, appointment(10, "s2"))  # s2 is pending: getSchedule answers
    world.mailboxes.put("g2", event("copy", start=at(10)))  # its copy, written to Outlook
    found = await busy_times(world.services, TID, "s2", at(0), at(24))
    assert found.source is Source.GRAPH
    assert [(e.start, e.end) for e in found.busy] == [(at(10), at(11))]


async def test_a_mailbox_graph_cannot_resolve_is_a_conflict_not_an_outage(world: FakeWorld) -> None:
    user = await world.users.get(TID, "s2")
    assert user is not None
    await world.users.save(replace(user, sync_state=SyncState.MIGRATING))  # answered through getSchedule
    del world.schedules.addresses["user2@contoso.example"]  # Graph's 5009 for this address alone
    with pytest.raises(Conflict) as refused:
        await busy_times(world.services, TID, "s2", at(0), at(24))
    assert "resolve" in refused.value.reason


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def remembering(world: FakeWorld, ticks: Ticks, seconds: float = 5) -> Services:
    return replace(world.services, recent=RecentRows(seconds, now=ticks))


async def test_rows_kept_for_seconds_never_offer_a_slot_booked_or_taken_in_outlook(world: FakeWorld) -> None:
    ticks = Ticks()
    services = remembering(world, ticks)
    await synced(world, "s1")
    assert starts(await answer(services, TID, question(Group(("s1",))), periods=False)) == [9, 10, 11]
    await put_appointment(world.services, TID, appointment(10))  # the hold: read fresh by the next question
    await synced(world, "s1", instance("k1", 11, 12))  # and an Outlook change the sync wrote to the index
    assert starts(await answer(services, TID, question(Group(("s1",))), periods=False)) == [9]


async def test_a_user_row_is_kept_for_seconds_then_read_again(world: FakeWorld) -> None:
    ticks = Ticks()
    services = remembering(world, ticks)
    await synced(world, "s1", instance("k1", 10, 11))
    assert (await busy_times(services, TID, "s1", at(0), at(24))).source is Source.SYNCED
    user = await world.users.get(TID, "s1")
    assert user is not None
    await world.users.save(replace(user, staff=replace(user.staff, enabled=False)))
    ticks.now += 4.9
    assert (await busy_times(services, TID, "s1", at(0), at(24))).source is Source.SYNCED  # the kept row
    ticks.now += 0.1
    with pytest.raises(Conflict):  # read again: disabled
        await busy_times(services, TID, "s1", at(0), at(24))


async def test_the_tenant_row_is_kept_for_seconds_then_read_again(world: FakeWorld) -> None:
    ticks = Ticks()
    services = remembering(world, ticks)
    await synced(world, "s1", instance("k1", 10, 11, "tentative"))
    assert starts(await answer(services, TID, question(Group(("s1",))), periods=False)) == [9, 11]
    tenant = await world.tenants.get(TID)
    assert tenant is not None
    world.tenants.rows[TID] = replace(tenant, settings=replace(tenant.settings, tentative_blocks=False))
    assert starts(await answer(services, TID, question(Group(("s1",))), periods=False)) == [9, 11]
    ticks.now += 5
    assert starts(await answer(services, TID, question(Group(("s1",))), periods=False)) == [9, 10, 11]


async def test_a_staff_member_not_found_is_not_kept(world: FakeWorld) -> None:
    services = remembering(world, Ticks())
    with pytest.raises(NotFound):
        await busy_times(services, TID, "s-new", at(0), at(24))
    user = await world.users.get(TID, "s1")
    assert user is not None
    await world.users.save(replace(user, staff=replace(user.staff, staff_id="s-new"), etag=None))
    await synced(world, "s-new", instance("k1", 10, 11))
    assert (await busy_times(services, TID, "s-new", at(0), at(24))).source is Source.SYNCED


async def test_kept_rows_are_bounded_the_oldest_dropped_first(world: FakeWorld) -> None:
    recent = RecentRows(5, limit=2, now=Ticks())
    assert [u.staff_id for u in await recent.users(world.users, TID, ["s1", "s2", "s3"]) if u] == [
        "s1",
        "s2",
        "s3",
    ]
    for staff_id in ("s1", "s2", "s3"):
        world.users.rows.pop((TID, staff_id))
    assert [u.staff_id if u else None for u in await recent.users(world.users, TID, ["s1", "s2", "s3"])] == [
        None,
        "s2",
        "s3",
    ]
