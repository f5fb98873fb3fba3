"""The host's holds: written by PUT and DELETE before they answer, ordered by revision, purged with the
user and the tenant."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.domain.appointments import Appointment, Override, Recurrence
from shared.domain.tenants import TenantState
from shared.service.appointment_api import delete_appointment, put_appointment
from shared.service.host_holds import hold_times, write_holds
from shared.service.records import HostHold
from shared.service.tenant_disconnect import purge_rows
from shared.service.users import delete_staff
from tests.fakes.services import FakeWorld, add_tenant, fake_world

pytestmark = pytest.mark.unit

TID = "contoso.example"
AMS = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, matched=3)
    return w


def intake(*staff: str, hour: int = 10, **changes: object) -> Appointment:
    base = Appointment(
        appointment_id="a-1",
        subject="Intake with a secret subject",
        start=datetime(2026, 12, 1, hour, tzinfo=AMS),
        end=datetime(2026, 12, 1, hour + 1, tzinfo=AMS),
        time_zone="Europe/Amsterdam",
        all_day=False,
        staff_ids=staff,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def hold(world: FakeWorld, staff_id: str) -> HostHold | None:
    return await world.busy.get_hold(TID, staff_id, "a-1")


async def test_a_put_holds_each_staff_members_time_before_it_answers(world: FakeWorld) -> None:
    record = await put_appointment(world.services, TID, intake("s1", "s2"))
    for staff_id in ("s1", "s2"):
        held = await hold(world, staff_id)
        assert held is not None and held.revision == record.revision
        assert held.times is not None
        assert (held.times.start, held.times.end) == (intake().start, intake().end)
    assert await hold(world, "s3") is None
    assert world.writer.writes == 0  # Outlook does not have it yet; the hold is there all the same


async def test_a_moved_appointment_moves_its_holds_and_a_dropped_staff_member_gets_a_tombstone(
    world: FakeWorld,
) -> None:
    await put_appointment(world.services, TID, intake("s1", "s2"))
    record = await put_appointment(world.services, TID, intake("s1", "s3", hour=14))
    s1, s2, s3 = [await hold(world, s) for s in ("s1", "s2", "s3")]
    assert s1 is not None and s1.times is not None and s1.times.start == intake(hour=14).start
    assert s3 is not None and s3.revision == record.revision and not s3.deleted
    assert s2 is not None and s2.deleted and s2.revision == record.revision
    busy = await world.busy.read(TID, "s2")
    assert busy.live_holds == ()


async def test_a_delete_tombstones_every_hold(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake("s1", "s2"))
    record = await delete_appointment(world.services, TID, "a-1")
    for staff_id in ("s1", "s2"):
        held = await hold(world, staff_id)
        assert held is not None and held.deleted and held.revision == record.revision


async def test_a_retried_put_writes_the_same_hold_again(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake("s1"))
    await world.busy.delete_user(TID, "s1")  # as if the first answer was lost before its hold was written
    record = await put_appointment(world.services, TID, intake("s1"))
    held = await hold(world, "s1")
    assert held is not None and held.revision == record.revision == 1 and not held.deleted


async def test_an_older_revision_never_replaces_a_newer_hold(world: FakeWorld) -> None:
    first = await put_appointment(world.services, TID, intake("s1", "s2"))
    second = await put_appointment(world.services, TID, intake("s1", hour=15))
    # The first PUT's hold writes arrive late (it lost the race to the second).
    await write_holds(world.busy, first)
    s1, s2 = await hold(world, "s1"), await hold(world, "s2")
    assert s1 is not None and s1.revision == second.revision
    assert s1.times is not None and s1.times.start == intake(hour=15).start
    assert s2 is not None and s2.deleted


def test_a_holds_times_keep_the_recurrence_but_no_text() -> None:
    moved = Override(
        date(2026, 12, 8),
        datetime(2026, 12, 9, 10, tzinfo=AMS),
        datetime(2026, 12, 9, 11, tzinfo=AMS),
        subject="Moved (private)",
        location="Room 2",
    )
    rule = Recurrence("FREQ=WEEKLY;COUNT=5", (date(2026, 12, 15),), (moved,))
    times = hold_times(intake("s1", recurrence=rule, show_as="tentative"))
    assert times.recurrence is not None
    assert times.recurrence.exdates == (date(2026, 12, 15),)
    assert times.recurrence.overrides == (replace(moved, subject=None, location=None),)
    assert times.show_as == "tentative" and times.time_zone == "Europe/Amsterdam"


async def test_deleting_a_staff_member_and_disconnecting_purge_the_busy_state(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake("s1", "s2", "s3"))
    await delete_staff(world.services, TID, "s1")
    assert (await world.busy.read(TID, "s1")).holds == ()
    assert (await world.busy.read(TID, "s2")).live_holds != ()
    await purge_rows(world.services, TID)
    for staff_id in ("s2", "s3"):
        assert (await world.busy.read(TID, staff_id)).holds == ()


def test_an_all_day_hold_keeps_its_dates() -> None:
    appointment = intake("s1", start=date(2026, 12, 24), end=date(2026, 12, 27), all_day=True)
    times = hold_times(appointment)
    assert (times.start, times.end, times.all_day) == (date(2026, 12, 24), date(2026, 12, 27), True)
