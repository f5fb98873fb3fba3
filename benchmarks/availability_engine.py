"""How long the pure availability engine takes to answer a slot question (no storage, no Graph).

    .venv/bin/python -m benchmarks.availability_engine [--staff 10] [--weeks 4] [--busy 300] [--rounds 200]

The case the API must answer from the synced state in a few milliseconds: `--staff` staff members, each
with `--busy` busy periods spread over `--weeks` weeks (meetings of 15 minutes to 2 hours in working hours,
some overlapping, some tentative, free or working elsewhere, a few all-day events), each with Outlook
working hours in one of three zones. Questions, each timed over `--rounds` runs:
1. slots for all of them ("all"), 30 minutes every 15, 10-minute buffers, working hours (so dense a
   calendar leaves ten people few common slots), and the same for a team of three;
2. the same staff as a round robin (`required: 1`, least booked first): every slot in 4 weeks, then the
   first 100 (`max_results`);
3. `required: 2` of them, as free periods.
And, apart from the engine, what a caller pays to make the `BusyPeriod`s from stored rows (ISO strings).

Prints p50/p95 per question; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from shared.domain.availability import (
    BusyPeriod,
    Group,
    Period,
    Question,
    Ranking,
    ShowAs,
    StaffCalendar,
    WorkingHours,
    find_slots,
    free_periods,
)

ZONES = ("Europe/Amsterdam", "Europe/London", "Europe/Helsinki")
SHOW_AS = (ShowAs.BUSY,) * 6 + (ShowAs.TENTATIVE, ShowAs.FREE, ShowAs.OOF, ShowAs.WORKING_ELSEWHERE)


def calendars(staff: int, weeks: int, busy: int, start: datetime, seed: int = 3) -> dict[str, StaffCalendar]:
    rng = random.Random(seed)
    out: dict[str, StaffCalendar] = {}
    for number in range(staff):
        zone = ZoneInfo(ZONES[number % len(ZONES)])
        periods: list[BusyPeriod] = []
        for _ in range(busy - 3):
            day = start.date() + timedelta(days=rng.randrange(weeks * 7))
            at = datetime.combine(day, clock(8 + rng.randrange(10), rng.choice((0, 15, 30, 45))), tzinfo=zone)
            length = timedelta(minutes=rng.choice((15, 30, 30, 45, 60, 60, 90, 120)))
            periods.append(BusyPeriod(at.astimezone(UTC), (at + length).astimezone(UTC), rng.choice(SHOW_AS)))
        for _ in range(3):
            day = start.date() + timedelta(days=rng.randrange(weeks * 7))
            periods.append(BusyPeriod.all_day(day, day + timedelta(days=1), zone))
        periods.sort(key=lambda period: period.start)
        hours = WorkingHours(frozenset(range(5)), clock(8, 30), clock(17, 30), zone)
        out[f"staff-{number}"] = StaffCalendar(periods, hours)
    return out


def timings(run: Callable[[], object], rounds: int) -> list[float]:
    figures = []
    for _ in range(rounds):
        began = time.perf_counter()
        run()
        figures.append(time.perf_counter() - began)
    return sorted(figures)


def percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--staff", type=int, default=10)
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--busy", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)

    start = datetime.combine(date(2026, 10, 12), clock(), tzinfo=UTC)  # a DST change inside
    known = calendars(args.staff, args.weeks, args.busy, start)
    staff = tuple(known)
    span = (Period(start, start + timedelta(weeks=args.weeks)),)
    common = {
        "periods": span,
        "duration": timedelta(minutes=30),
        "interval": timedelta(minutes=15),
        "buffer_before": timedelta(minutes=10),
        "buffer_after": timedelta(minutes=10),
        "working_hours": True,
        "zone": ZoneInfo("Europe/Amsterdam"),
    }
    questions: list[tuple[str, Callable[[], list[object]]]] = []
    everyone = Question(groups=(Group(staff),), **common)  # type: ignore[arg-type]
    questions.append(("all 10, slots", lambda: list(find_slots(everyone, known))))
    team = Question(groups=(Group(staff[:3]),), **common)  # type: ignore[arg-type]
    questions.append(("all 3, slots", lambda: list(find_slots(team, known))))
    robin = Question(groups=(Group(staff, 1, Ranking.LEAST_BOOKED),), **common)  # type: ignore[arg-type]
    questions.append(("round robin, slots", lambda: list(find_slots(robin, known))))
    first = Question(groups=robin.groups, max_results=100, **common)  # type: ignore[arg-type]
    questions.append(("round robin, 100", lambda: list(find_slots(first, known))))
    two = Question(groups=(Group(staff, 2),), **common)  # type: ignore[arg-type]
    questions.append(("2 of them, periods", lambda: list(free_periods(two, known))))

    print(
        f"availability engine: {args.staff} staff x {args.busy} busy periods over {args.weeks} weeks, "
        f"{args.rounds} rounds"
    )
    for name, run in questions:
        answers = len(run())
        figures = timings(run, args.rounds)
        p50, p95 = percentile(figures, 0.5) * 1000, percentile(figures, 0.95) * 1000
        print(f"  {name:<20} {answers:5d} answers   p50 {p50:6.2f} ms   p95 {p95:6.2f} ms")

    rows = [(p.start.isoformat(), p.end.isoformat(), p.show_as.value) for c in known.values() for p in c.busy]

    def parse() -> list[BusyPeriod]:
        parsed = datetime.fromisoformat
        return [BusyPeriod(parsed(a), parsed(b), ShowAs(show)) for a, b, show in rows]

    figures = timings(parse, args.rounds)
    p50, p95 = percentile(figures, 0.5) * 1000, percentile(figures, 0.95) * 1000
    print(f"  {'rows to periods':<20} {len(rows):5d} periods   p50 {p50:6.2f} ms   p95 {p95:6.2f} ms")


if __name__ == "__main__":
    main()
