"""The emulator's recurrence expansion equals python-dateutil's RRULE expansion.

For generated Graph patterns (every pattern type, intervals, daysOfWeek, index incl. last, month,
numbered/endDate/noEnd ranges) in zones with DST changes (given as Windows and as IANA names), the
calendar view of a window holds exactly the occurrences whose start instants dateutil yields for
the equivalent RRULE (see `recurrence.to_rrule`), expanded at the event's wall-clock time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from m365emulator.calendar.model import MailboxOwner
from m365emulator.calendar.recurrence import DAY_NAMES, parse_recurrence, to_rrule
from m365emulator.calendar.store import CalendarStore
from m365emulator.clock import Clock

pytestmark = pytest.mark.contract

ZONES = [
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Europe/Amsterdam", "Europe/Amsterdam"),
    ("Eastern Standard Time", "America/New_York"),
    ("America/New_York", "America/New_York"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("Australia/Sydney", "Australia/Sydney"),
    ("India Standard Time", "Asia/Kolkata"),
    ("Asia/Kolkata", "Asia/Kolkata"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("America/Sao_Paulo", "America/Sao_Paulo"),
    ("UTC", "UTC"),
]
OWNER = MailboxOwner("tid", "uid", "alice@contoso.com", "alice@contoso.com", "Alice", "UTC")
INDEXES = ["first", "second", "third", "fourth", "last"]


@st.composite
def patterns(draw: st.DrawFn) -> dict:
    kind = draw(
        st.sampled_from(
            ["daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"]
        )
    )
    pattern: dict = {
        "type": kind,
        "interval": draw(st.integers(1, 4) if kind != "daily" else st.integers(1, 10)),
    }
    days = draw(st.lists(st.sampled_from(DAY_NAMES), min_size=1, max_size=3, unique=True))
    if kind == "weekly":
        pattern["daysOfWeek"] = days
        pattern["firstDayOfWeek"] = draw(st.sampled_from(DAY_NAMES))
    if kind in ("relativeMonthly", "relativeYearly"):
        pattern["daysOfWeek"] = days
        pattern["index"] = draw(st.sampled_from(INDEXES))
    if kind in ("absoluteYearly", "relativeYearly"):
        pattern["month"] = draw(st.integers(1, 12))
    if kind == "absoluteMonthly":
        pattern["dayOfMonth"] = draw(st.integers(1, 31))
    if kind == "absoluteYearly":
        limit = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][pattern["month"] - 1]
        pattern["dayOfMonth"] = draw(st.integers(1, limit))
    return pattern


@st.composite
def series(draw: st.DrawFn) -> tuple[dict, str, str, time, int]:
    pattern = draw(patterns())
    start = draw(st.dates(date(2017, 1, 1), date(2027, 12, 31)))
    range_kind = draw(st.sampled_from(["numbered", "endDate", "noEnd"]))
    rng: dict = {"type": range_kind, "startDate": start.isoformat()}
    if range_kind == "numbered":
        rng["numberOfOccurrences"] = draw(st.integers(1, 40))
    if range_kind == "endDate":
        rng["endDate"] = (start + timedelta(days=draw(st.integers(0, 900)))).isoformat()
    label, iana = draw(st.sampled_from(ZONES))
    at = draw(st.times().map(lambda t: t.replace(second=0, microsecond=0)))
    minutes = draw(st.sampled_from([0, 30, 90, 24 * 60]))
    return {"pattern": pattern, "range": rng}, label, iana, at, minutes


def expected(
    recurrence: dict, iana: str, at: time, minutes: int, ws: datetime, we: datetime
) -> list[datetime]:
    rec = parse_recurrence(recurrence)
    assert rec is not None
    zone = ZoneInfo(iana)
    dtstart = datetime.combine(rec.range.start_date, at)
    rule = rrulestr(to_rrule(rec), dtstart=dtstart)
    out = []
    for wall in rule:
        if rec.range.end_date is not None and wall.date() > rec.range.end_date:
            break
        start = wall.replace(tzinfo=zone).astimezone(UTC)
        if start - timedelta(days=2) > we:
            break
        end = (wall + timedelta(minutes=minutes)).replace(tzinfo=zone).astimezone(UTC)
        overlaps = (ws <= start < we) if start == end else (start < we and end > ws)
        if overlaps:
            out.append(start)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series(), st.one_of(st.integers(-40, 60), st.integers(-40, 1200)), st.integers(1, 400))
def test_calendar_view_matches_dateutil_rrule(spec, window_offset_days, window_days):
    recurrence, label, iana, at, minutes = spec
    rec = parse_recurrence(recurrence)
    assert rec is not None
    first = next(iter(rrulestr(to_rrule(rec), dtstart=datetime.combine(rec.range.start_date, at))), None)
    assume(first is not None)
    assume(rec.range.end_date is None or first.date() <= rec.range.end_date)
    store = CalendarStore(OWNER, Clock(), lambda change: None)
    start_wall = datetime.combine(rec.range.start_date, at)
    end_wall = start_wall + timedelta(minutes=minutes)
    store.create(
        {
            "subject": "series",
            "start": {"dateTime": start_wall.isoformat(), "timeZone": label},
            "end": {"dateTime": end_wall.isoformat(), "timeZone": label},
            "recurrence": recurrence,
        }
    )
    ws = datetime.combine(rec.range.start_date, time(), tzinfo=UTC) + timedelta(
        days=window_offset_days, hours=7
    )
    we = ws + timedelta(days=window_days)

    got = [i.start_utc for i in store.view(ws, we)]

    assert got == expected(recurrence, iana, at, minutes, ws, we)


def test_monthly_day_31_falls_on_the_last_day_of_shorter_months():
    store = CalendarStore(OWNER, Clock(), lambda change: None)
    store.create(
        {
            "subject": "month end",
            "start": {"dateTime": "2025-01-31T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2025-01-31T10:00:00", "timeZone": "UTC"},
            "recurrence": {
                "pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
                "range": {"type": "numbered", "startDate": "2025-01-31", "numberOfOccurrences": 4},
            },
        }
    )
    got = [
        i.start_utc.date()
        for i in store.view(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    ]
    assert got == [date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31), date(2025, 4, 30)]


def test_no_end_series_expands_only_the_requested_window():
    store = CalendarStore(OWNER, Clock(), lambda change: None)
    store.create(
        {
            "subject": "forever",
            "start": {"dateTime": "2010-01-01T09:00:00", "timeZone": "Europe/Amsterdam"},
            "end": {"dateTime": "2010-01-01T09:30:00", "timeZone": "Europe/Amsterdam"},
            "recurrence": {
                "pattern": {"type": "daily", "interval": 1},
                "range": {"type": "noEnd", "startDate": "2010-01-01"},
            },
        }
    )
    got = store.view(datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
    assert [i.start_utc.hour for i in got] == [8, 7, 7]  # CET then CEST: 09:00 wall clock each day
