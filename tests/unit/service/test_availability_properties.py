"""A property of the availability use case: for generated synced calendars, host holds and tombstones
(some on the appointments the synced instances are copies of) and buffers, the slots offered are exactly
the aligned starts whose window, buffers included, is free on a minute grid where a hold replaces its
appointment's Outlook copy and a tombstone removes it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.availability import Group, Period, Question
from shared.domain.tenants import TenantState
from shared.domain.users import SyncState
from shared.service.availability import answer
from shared.service.records import BusyInstance, HoldTimes, HostHold, SyncedBusy
from tests.fakes.services import add_tenant, fake_world

pytestmark = pytest.mark.unit

TID = "contoso.example"
DAY = datetime(2026, 12, 1, tzinfo=UTC)
OPEN, CLOSE = 8 * 60, 18 * 60  # the question's period, minutes of DAY
DURATION, STEP = 30, 15
BLOCKING = {"busy", "tentative", "oof"}  # the default policy, of the statuses generated
APPOINTMENTS = ("a0", "a1", "a2")


@dataclass(frozen=True)
class Case:
    instances: list[tuple[int, int, str, str | None]]  # start minute, length, show_as, linked appointment
    holds: dict[str, tuple[int, int] | None]  # appointment -> (start minute, length), or None: tombstone
    before: int
    after: int


minutes = st.integers(6 * 60, 20 * 60).map(lambda m: m - m % 5)
lengths = st.sampled_from([5, 15, 30, 45, 60, 120])
cases = st.builds(
    Case,
    instances=st.lists(
        st.tuples(
            minutes,
            lengths,
            st.sampled_from(["busy", "tentative", "free", "oof", "workingElsewhere"]),
            st.sampled_from([None, *APPOINTMENTS]),
        ),
        max_size=8,
    ),
    holds=st.dictionaries(
        st.sampled_from(APPOINTMENTS), st.one_of(st.none(), st.tuples(minutes, lengths)), max_size=3
    ),
    before=st.sampled_from([0, 10, 15]),
    after=st.sampled_from([0, 5, 30]),
)


def at(minute: int) -> datetime:
    return DAY + timedelta(minutes=minute)


def oracle(case: Case) -> list[int]:
    busy: set[int] = set()
    for start, length, show_as, linked in case.instances:
        if show_as in BLOCKING and linked not in case.holds:  # a hold or a tombstone replaces the copy
            busy.update(range(start, start + length))
    for held in case.holds.values():
        if held is not None:
            busy.update(range(held[0], held[0] + held[1]))
    return [
        s
        for s in range(OPEN, CLOSE - DURATION + 1, STEP)
        if not busy & set(range(s - case.before, s + DURATION + case.after))
    ]


async def offered(case: Case) -> list[int]:
    world = fake_world()
    await add_tenant(world, TID, TenantState.ACTIVE, matched=1)
    user = await world.users.get(TID, "s1")
    assert user is not None
    await world.users.save(replace(user, sync_state=SyncState.SYNCED, last_sync_at=DAY))
    instances = tuple(
        BusyInstance(f"k{n}", at(start), at(start + length), show_as, appointment_id=linked)
        for n, (start, length, show_as, linked) in enumerate(case.instances)
    )
    window = (DAY - timedelta(days=30), DAY + timedelta(days=180))
    await world.busy.write_index(TID, "s1", SyncedBusy(instances, *window, DAY, complete=True))
    for appointment_id, held in case.holds.items():
        times = None if held is None else HoldTimes(at(held[0]), at(held[0] + held[1]), False, "UTC", "busy")
        await world.busy.save_hold(TID, "s1", HostHold(appointment_id, 1, times))
    question = Question(
        groups=(Group(("s1",)),),
        periods=(Period(at(OPEN), at(CLOSE)),),
        duration=timedelta(minutes=DURATION),
        interval=timedelta(minutes=STEP),
        buffer_before=timedelta(minutes=case.before),
        buffer_after=timedelta(minutes=case.after),
    )
    found = await answer(world.services, TID, question, periods=False)
    return [int((slot.start - DAY).total_seconds()) // 60 for slot in found.slots or ()]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_slots_are_the_free_aligned_starts_with_holds_in_place_of_their_copies(case: Case) -> None:
    assert asyncio.run(offered(case)) == oracle(case)
