"""What the connector writes to Outlook expands like the host's RRULE.

For generated RRULEs (every FREQ, INTERVAL, BYDAY sets and ordinals, BYSETPOS, BYMONTHDAY incl. -1
and Outlook's "day n or the last day" form, COUNT/UNTIL/no end) in zones with DST changes, timed
and all-day: the event created in the emulator's store with `to_graph(...)` (start and end in the
Windows zone name) shows in a calendar view exactly the occurrences python-dateutil expands for the
RRULE (`expand`). Rules `to_graph` rejects are assumed away; a separate test checks that most
generated rules are accepted, so the property is not vacuous.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from m365emulator.calendar.model import MailboxOwner
from m365emulator.calendar.store import CalendarStore
from m365emulator.clock import Clock
from shared.domain.recurrence import RecurrenceError, expand, is_occurrence, occurrence_date, to_graph
from shared.domain.timezones import windows_zone

pytestmark = pytest.mark.contract

T = TypeVar("T")
ZONES = [
    "Europe/Amsterdam",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "UTC",
]
OWNER = MailboxOwner("tid", "uid", "alice@contoso.com", "alice@contoso.com", "Alice", "UTC")
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
LONGEST = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


@dataclass(frozen=True)
class Case:
    rrule: str
    start: datetime | date
    zone: str
    minutes: int  # duration (all-day: 24 * 60 per day)


class Draw:
    """Choices for `case`, made by hypothesis (shrinkable) or by a seeded `random.Random`."""

    def __init__(self, pick: Callable[[Sequence[Any]], Any], number: Callable[[int, int], int]) -> None:
        self.pick, self.number = pick, number

    def subset(self, items: Sequence[T], low: int, high: int) -> list[T]:
        chosen = {self.pick(items) for _ in range(self.number(low, high))}
        return [item for item in items if item in chosen]


def _day_of_month(draw: Draw, month: int | None) -> list[str]:
    """The BY* parts fixing the day within a month (or in one month of the year)."""
    longest = 31 if month is None else LONGEST[month - 1]
    kind = draw.pick(["none", "monthday", "last", "ordinal", "setpos", "setpos", "clamped"])
    if kind == "monthday":
        return [f"BYMONTHDAY={draw.number(1, longest)}"]
    if kind == "last":
        return ["BYMONTHDAY=-1"]
    if kind == "ordinal":
        return [f"BYDAY={draw.pick([1, 2, 3, 4, -1, -1, 5])}{draw.pick(DAYS)}"]
    if kind == "setpos":
        days = draw.subset(DAYS, 1, 7)
        return [f"BYDAY={','.join(days)}", f"BYSETPOS={draw.pick([1, 2, 3, 4, -1])}"]
    if kind == "clamped":
        top = draw.number(29, 31)
        return [f"BYMONTHDAY={','.join(str(d) for d in range(28, top + 1))}", "BYSETPOS=-1"]
    return []


def case(draw: Draw) -> Case:
    freq = draw.pick(["DAILY", "WEEKLY", "WEEKLY", "MONTHLY", "MONTHLY", "YEARLY", "YEARLY", "HOURLY"])
    parts = [f"FREQ={freq}"]
    interval = draw.pick([1, 1, 2, 2, 3])
    if interval != 1 or draw.pick([False, True]):
        parts.append(f"INTERVAL={interval}")
    if freq == "DAILY" and draw.pick([False, False, True]):
        parts.append("BYDAY=" + ",".join(draw.subset(DAYS, 1, 6)))
    if freq == "WEEKLY":
        if draw.pick([True, True, False]):
            parts.append("BYDAY=" + ",".join(draw.subset(DAYS, 1, 4)))
        if draw.pick([True, False]):
            parts.append(f"WKST={draw.pick(DAYS)}")
    if freq == "MONTHLY":
        parts += _day_of_month(draw, None)
    if freq == "YEARLY" and draw.pick([True, True, True, False]):
        month = draw.number(1, 12)
        parts += [f"BYMONTH={month}", *_day_of_month(draw, month)]

    zone = draw.pick(ZONES)
    day = date(2017, 1, 1) + timedelta(days=draw.number(0, 11 * 365))
    wall = time(draw.number(0, 23), draw.pick([0, 15, 30, 45]))
    rule = ";".join(parts)
    if draw.pick([True] * 6 + [False]):  # start on the rule's first day on/after the drawn one
        day = next(
            iter(rrulestr(rule, dtstart=datetime.combine(day, wall))), datetime.combine(day, wall)
        ).date()
    all_day = draw.pick([False, False, False, True])
    start: datetime | date = day if all_day else datetime.combine(day, wall, tzinfo=ZoneInfo(zone))

    end = draw.pick(["count", "until-date", "until-utc", "until-utc", "none"])
    if end == "count":
        parts.append(f"COUNT={draw.number(1, 40)}")
    if end.startswith("until"):  # near an occurrence, where an off-by-one-day would show
        near = list(islice(rrulestr(rule, dtstart=datetime.combine(day, wall)), draw.number(1, 12)))
        last = near[-1] if near else datetime.combine(day, wall)
        if end == "until-date":
            parts.append(f"UNTIL={last.date() + timedelta(days=draw.pick([-1, 0, 0, 1])):%Y%m%d}")
        else:
            moment = last.replace(tzinfo=ZoneInfo(zone)) + timedelta(minutes=draw.pick([-61, -1, 0, 1]))
            parts.append(f"UNTIL={moment.astimezone(UTC):%Y%m%dT%H%M%SZ}")
    minutes = 24 * 60 * draw.number(1, 3) if all_day else draw.pick([0, 30, 90, 24 * 60])
    return Case(";".join(parts), start, zone, minutes)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    return case(Draw(lambda items: draw(st.sampled_from(items)), lambda lo, hi: draw(st.integers(lo, hi))))


def _create(store: CalendarStore, c: Case, recurrence: dict[str, Any]) -> None:
    label = windows_zone(c.zone)
    if isinstance(c.start, datetime):
        wall = c.start.astimezone(UTC).astimezone(ZoneInfo(c.zone)).replace(tzinfo=None)
        times = {"start": wall, "end": wall + timedelta(minutes=c.minutes)}
    else:
        midnight = datetime.combine(c.start, time())
        times = {"start": midnight, "end": midnight + timedelta(minutes=c.minutes)}
    store.create(
        {
            "subject": "series",
            "isAllDay": not isinstance(c.start, datetime),
            **{key: {"dateTime": value.isoformat(), "timeZone": label} for key, value in times.items()},
            "recurrence": recurrence,
        }
    )


def _expected(c: Case, ws: datetime, we: datetime) -> list[datetime]:
    """dateutil's occurrences overlapping [ws, we), as a calendar view counts them, in UTC."""
    zone = ZoneInfo(c.zone)
    length = timedelta(minutes=c.minutes)
    found = []
    for occurrence in expand(c.rrule, c.start, c.zone, ws - length - timedelta(days=2), we):
        if isinstance(occurrence, datetime):
            assert isinstance(c.start, datetime)
            wall = datetime.combine(occurrence.date(), c.start.astimezone(UTC).astimezone(zone).time())
        else:
            wall = datetime.combine(occurrence, time())
        start = wall.replace(tzinfo=zone).astimezone(UTC)
        end = (wall + length).replace(tzinfo=zone).astimezone(UTC)
        if (ws <= start < we) if start == end else (start < we and end > ws):
            found.append(start)
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.sampled_from(["whole", "near", "far"]), st.integers(-10, 1200), st.integers(1, 400))
def test_outlook_expands_what_the_host_rrule_says(c, window, offset_days, window_days):
    try:
        recurrence = to_graph(c.rrule, c.start, c.zone)
    except RecurrenceError:
        assume(False)
    store = CalendarStore(OWNER, Clock(), lambda change: None)
    _create(store, c, recurrence)
    first = c.start.date() if isinstance(c.start, datetime) else c.start
    if window == "near":
        offset_days %= 60
    if window == "whole":
        offset_days, window_days = -2, 12 * 366
    ws = datetime.combine(first, time(), tzinfo=UTC) + timedelta(days=offset_days, hours=7)
    we = ws + timedelta(days=window_days)

    seen = store.view(ws, we)

    assert [i.start_utc for i in seen] == _expected(c, ws, we)
    for instance in seen[:5] + seen[-5:]:  # each check expands from the start: a sample will do
        assert instance.original_date is not None
        assert is_occurrence(c.rrule, c.start, c.zone, instance.original_date)
        if isinstance(c.start, datetime):
            assert occurrence_date(instance.start_utc, c.zone) == instance.original_date


def test_most_generated_rules_are_accepted():
    """The property above is not vacuous: most of what it draws reaches the emulator."""
    rng = random.Random(20250301)
    draw = Draw(rng.choice, rng.randint)
    outcomes = []
    for _ in range(600):
        c = case(draw)
        try:
            to_graph(c.rrule, c.start, c.zone)
        except RecurrenceError as exc:
            outcomes.append(exc.part)
        else:
            outcomes.append("accepted")
    assert outcomes.count("accepted") / len(outcomes) > 0.55
    assert {"FREQ", "DTSTART", "BYMONTHDAY", "BYDAY"} <= set(outcomes)  # the rejections are exercised too
