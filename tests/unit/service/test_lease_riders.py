"""A run that takes a second key's lease with its own (a migration, the user's To Do list's): both held
through the first pass, let go together, the rider's deferred work caught up before it goes, and each
taken alone when either is not free."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from shared.service.leasing import Rider, holds, run_leased
from shared.service.records import LeaseOutcome
from tests.fakes.storage import FakeClock, FakeLeases

pytestmark = pytest.mark.unit

CALENDAR, LIST = "t/s1", "t/s1/tasks"
TTL = timedelta(minutes=2)


class Run:
    """A leased run with the list as its rider, recording what each pass and catch-up saw: whether the
    rider's lease was held (`holds`), and which leases had rows."""

    def __init__(self, during: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.leases, self.clock = FakeLeases(), FakeClock()
        self.during = during
        self.seen: list[tuple[str, bool, list[str]]] = []

    async def run_pass(self, number: int) -> None:
        self.seen.append((f"pass {number}", holds(LIST), sorted(self.leases.rows)))
        if self.during is not None:
            await self.during(number)

    async def catch_up(self) -> None:
        self.seen.append(("catch-up", holds(LIST), sorted(self.leases.rows)))

    async def __call__(self) -> bool:
        rider = Rider(LIST, self.catch_up)
        return await run_leased(self.leases, self.clock, CALENDAR, TTL, self.run_pass, rider=rider)

    async def another_job(self, key: str) -> LeaseOutcome:
        return await self.leases.acquire(key, "another job", TTL, self.clock.now())


async def test_both_leases_are_held_through_the_first_pass_and_let_go_together() -> None:
    run = Run()

    assert await run()

    assert run.seen == [("pass 0", True, [CALENDAR, LIST])]
    assert run.leases.rows == {}


async def test_a_job_for_the_rider_deferred_meanwhile_is_caught_up_before_its_lease_goes() -> None:
    run = Run()
    deferred: list[LeaseOutcome] = []

    async def notified(number: int) -> None:
        deferred.append(await run.another_job(LIST))

    run.during = notified
    assert await run()

    assert deferred == [LeaseOutcome.DEFERRED]
    assert run.seen == [("pass 0", True, [CALENDAR, LIST]), ("catch-up", False, [CALENDAR, LIST])]
    assert run.leases.rows == {}


async def test_a_job_for_the_run_deferred_meanwhile_gets_a_pass_without_the_rider() -> None:
    run = Run()

    async def notified(number: int) -> None:
        if number == 0:
            await run.another_job(CALENDAR)

    run.during = notified
    assert await run()

    assert run.seen == [("pass 0", True, [CALENDAR, LIST]), ("pass 1", False, [CALENDAR])]
    assert run.leases.rows == {}


async def test_a_rider_held_elsewhere_is_left_to_its_work_and_the_run_goes_alone() -> None:
    run = Run()
    assert await run.another_job(LIST) is LeaseOutcome.ACQUIRED  # a list run, under way

    assert await run()

    assert run.seen == [("pass 0", False, [CALENDAR, LIST])]  # the list's work takes its own lease
    assert list(run.leases.rows) == [LIST]
    assert run.leases.rows[LIST][0] == "another job"


async def test_a_run_held_elsewhere_takes_neither_lease() -> None:
    run = Run()
    assert await run.another_job(CALENDAR) is LeaseOutcome.ACQUIRED

    assert not await run()

    assert run.seen == []
    assert list(run.leases.rows) == [CALENDAR]


async def test_a_failing_pass_lets_go_of_both_even_when_more_was_asked_of_either() -> None:
    run = Run()

    async def failing(number: int) -> None:
        await run.another_job(LIST)
        await run.another_job(CALENDAR)
        raise ConnectionError("the calendar's read failed")

    run.during = failing
    with pytest.raises(ConnectionError):
        await run()

    assert run.leases.rows == {}  # the queue retries the job; the deferred jobs check back
    assert [s for s, *_ in run.seen] == ["pass 0"]
