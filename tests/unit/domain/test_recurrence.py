"""The host's RRULEs as Outlook's patternedRecurrence: every pattern, every refusal, and back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from shared.domain.recurrence import (
    RecurrenceError,
    expand,
    from_graph,
    is_occurrence,
    occurrence_date,
    to_graph,
)
from shared.domain.timezones import UnknownZone

pytestmark = pytest.mark.unit

AMS = "Europe/Amsterdam"
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday"]
ALL_DAYS = ["sunday", *WEEKDAYS, "saturday"]


def at(text: str, zone: str = AMS) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


MAPPINGS = [
    # (rrule, start, pattern)
    ("FREQ=DAILY", at("2025-03-03T09:00"), {"type": "daily", "interval": 1}),
    ("FREQ=DAILY;INTERVAL=3", at("2025-03-03T09:00"), {"type": "daily", "interval": 3}),
    (
        "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR",
        at("2025-03-03T09:00"),
        {"type": "weekly", "interval": 1, "daysOfWeek": WEEKDAYS, "firstDayOfWeek": "monday"},
    ),
    (
        "FREQ=WEEKLY",
        at("2025-03-05T09:00"),
        {"type": "weekly", "interval": 1, "daysOfWeek": ["wednesday"], "firstDayOfWeek": "monday"},
    ),
    (
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU,TU,TH;WKST=SU",
        at("2025-03-04T09:00"),
        {
            "type": "weekly",
            "interval": 2,
            "daysOfWeek": ["sunday", "tuesday", "thursday"],
            "firstDayOfWeek": "sunday",
        },
    ),
    ("FREQ=MONTHLY", at("2025-03-15T09:00"), {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 15}),
    (
        "FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=28",
        at("2025-02-28T09:00"),
        {"type": "absoluteMonthly", "interval": 2, "dayOfMonth": 28},
    ),
    (
        "FREQ=MONTHLY;BYDAY=2TU",
        at("2025-03-11T09:00"),
        {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"], "index": "second"},
    ),
    (
        "FREQ=MONTHLY;BYDAY=TU;BYSETPOS=2",
        at("2025-03-11T09:00"),
        {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"], "index": "second"},
    ),
    (
        "FREQ=MONTHLY;BYDAY=+4TH",
        at("2025-03-27T09:00"),
        {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["thursday"], "index": "fourth"},
    ),
    (
        "FREQ=MONTHLY;BYDAY=-1FR",
        at("2025-03-28T09:00"),
        {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
    ),
    (
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        at("2025-03-31T09:00"),
        {"type": "relativeMonthly", "interval": 1, "daysOfWeek": WEEKDAYS, "index": "last"},
    ),
    (
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        at("2025-02-28T09:00"),
        {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ALL_DAYS, "index": "last"},
    ),
    (
        "FREQ=MONTHLY;BYMONTHDAY=28,29,30,31;BYSETPOS=-1",
        at("2025-01-31T09:00"),
        {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
    ),
    (
        "FREQ=YEARLY",
        at("2025-03-15T09:00"),
        {"type": "absoluteYearly", "interval": 1, "month": 3, "dayOfMonth": 15},
    ),
    (
        "FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=31",
        at("2025-01-31T09:00"),
        {"type": "absoluteYearly", "interval": 1, "month": 1, "dayOfMonth": 31},
    ),
    (
        "FREQ=YEARLY;INTERVAL=2;BYMONTH=3;BYDAY=-1SU",
        at("2025-03-30T09:00"),
        {"type": "relativeYearly", "interval": 2, "month": 3, "daysOfWeek": ["sunday"], "index": "last"},
    ),
    (
        "FREQ=YEARLY;BYMONTH=11;BYDAY=TH;BYSETPOS=4",
        at("2025-11-27T09:00"),
        {"type": "relativeYearly", "interval": 1, "month": 11, "daysOfWeek": ["thursday"], "index": "fourth"},
    ),
    (
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1",
        at("2025-02-28T09:00"),
        {"type": "relativeYearly", "interval": 1, "month": 2, "daysOfWeek": ALL_DAYS, "index": "last"},
    ),
    (
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=28,29;BYSETPOS=-1",
        at("2024-02-29T09:00"),
        {"type": "absoluteYearly", "interval": 1, "month": 2, "dayOfMonth": 29},
    ),
    (
        "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=28,29,30,31;BYSETPOS=-1",
        at("2025-04-30T09:00"),
        {"type": "absoluteYearly", "interval": 1, "month": 4, "dayOfMonth": 30},
    ),
]


@pytest.mark.parametrize(("rrule", "start", "pattern"), MAPPINGS)
def test_each_rule_becomes_its_outlook_pattern(rrule, start, pattern):
    recurrence = to_graph(rrule, start, AMS)

    assert recurrence["pattern"] == pattern
    assert recurrence["range"] == {
        "type": "noEnd",
        "startDate": start.date().isoformat(),
        "recurrenceTimeZone": "W. Europe Standard Time",
    }


@pytest.mark.parametrize(("rrule", "start", "pattern"), MAPPINGS)
def test_reading_outlook_back_gives_a_rule_that_maps_to_the_same_pattern(rrule, start, pattern):
    for end in ("", ";COUNT=7", ";UNTIL=20300101T000000Z"):
        written = to_graph(rrule + end, start, AMS)

        assert to_graph(from_graph(written), start, AMS) == written
        all_day = to_graph(rrule + end, start.date(), AMS)
        assert to_graph(from_graph(all_day, all_day=True), start.date(), AMS) == all_day


@pytest.mark.parametrize(("rrule", "start", "pattern"), MAPPINGS)
def test_outlook_and_the_rule_agree_on_the_first_year(rrule, start, pattern):
    written = to_graph(rrule, start, AMS)
    window_end = start + timedelta(days=400)

    read_back = expand(from_graph(written), start, AMS, start, window_end)

    assert read_back == expand(rrule, start, AMS, start, window_end)
    assert read_back[0] == start


def test_the_rrule_prefix_and_lower_case_are_accepted():
    assert to_graph("rrule:freq=weekly;byday=mo", at("2025-03-03T09:00"), AMS)["pattern"]["daysOfWeek"] == [
        "monday"
    ]


# ------------------------------------------------------------------------------------------ ranges


def test_count_becomes_a_numbered_range():
    assert to_graph("FREQ=DAILY;COUNT=10", at("2025-03-03T09:00"), AMS)["range"] == {
        "type": "numbered",
        "startDate": "2025-03-03",
        "numberOfOccurrences": 10,
        "recurrenceTimeZone": "W. Europe Standard Time",
    }


@pytest.mark.parametrize(
    ("until", "end_date"),
    [
        ("20250310", "2025-03-10"),  # a date: that local day, inclusive
        ("20250310T080000Z", "2025-03-10"),  # 09:00 CET exactly: the 09:00 occurrence is in
        ("20250310T075959Z", "2025-03-09"),  # a second before it: that day's occurrence is out
        ("20250310T233000Z", "2025-03-10"),  # 00:30 on 11 March in Amsterdam: before that 09:00
    ],
)
def test_until_becomes_the_last_local_date_an_occurrence_falls_on(until, end_date):
    start = at("2025-03-03T09:00")

    recurrence = to_graph(f"FREQ=DAILY;UNTIL={until}", start, AMS)

    assert recurrence["range"]["type"] == "endDate"
    assert recurrence["range"]["endDate"] == end_date
    last = expand(f"FREQ=DAILY;UNTIL={until}", start, AMS, start, start + timedelta(days=30))[-1]
    assert last.date().isoformat() == end_date


def test_until_in_utc_is_read_in_the_series_zone():
    start = at("2025-03-03T09:00", "Australia/Sydney")

    recurrence = to_graph("FREQ=DAILY;UNTIL=20250309T220000Z", start, "Australia/Sydney")

    assert recurrence["range"]["endDate"] == "2025-03-10"  # 09:00 on 10 March in Sydney
    assert recurrence["range"]["recurrenceTimeZone"] == "AUS Eastern Standard Time"


def test_an_all_day_series_takes_until_as_a_date_or_as_the_local_date_of_an_instant():
    start = date(2025, 3, 3)

    assert to_graph("FREQ=DAILY;UNTIL=20250310", start, AMS)["range"]["endDate"] == "2025-03-10"
    assert to_graph("FREQ=DAILY;UNTIL=20250310T230000Z", start, AMS)["range"]["endDate"] == "2025-03-11"


def test_the_start_date_is_the_local_date_of_the_start_instant():
    monday_in_amsterdam = datetime(2025, 3, 2, 23, 30, tzinfo=UTC)

    recurrence = to_graph("FREQ=WEEKLY", monday_in_amsterdam, AMS)

    assert recurrence["range"]["startDate"] == "2025-03-03"
    assert recurrence["pattern"]["daysOfWeek"] == ["monday"]


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", AMS, "UTC"])
def test_all_day_dates_never_shift(zone):
    start = date(2025, 3, 3)

    recurrence = to_graph("FREQ=WEEKLY;BYDAY=MO,FR;COUNT=4", start, zone)
    days = expand(
        "FREQ=WEEKLY;BYDAY=MO,FR;COUNT=4",
        start,
        zone,
        datetime(2025, 3, 1, tzinfo=UTC),
        datetime(2025, 4, 1, tzinfo=UTC),
    )

    assert recurrence["range"]["startDate"] == "2025-03-03"
    assert days == [date(2025, 3, 3), date(2025, 3, 7), date(2025, 3, 10), date(2025, 3, 14)]
    assert [occurrence_date(day, zone) for day in days] == days


# ------------------------------------------------------------------------------------------ refusals

START = at("2025-03-03T09:00")  # a Monday, the 3rd

REFUSALS = [
    # (rrule, start, part, words in the reason)
    ("FREQ=HOURLY", START, "FREQ", "more often than daily (FREQ=HOURLY)"),
    ("FREQ=MINUTELY", START, "FREQ", "more often than daily"),
    ("FREQ=SECONDLY", START, "FREQ", "more often than daily"),
    ("FREQ=DAILY;BYHOUR=9,17", START, "BYHOUR", "once a day"),
    ("FREQ=DAILY;BYMINUTE=0,30", START, "BYMINUTE", "once a day"),
    ("FREQ=DAILY;BYSECOND=0", START, "BYSECOND", "once a day"),
    ("FREQ=YEARLY;BYYEARDAY=62", START, "BYYEARDAY", "day-of-the-year"),
    ("FREQ=YEARLY;BYWEEKNO=10;BYDAY=MO", START, "BYWEEKNO", "week-number"),
    ("FREQ=YEARLY;BYEASTER=0", START, "BYEASTER", "BYEASTER"),
    ("FREQ=DAILY;INTERVAL=1000", START, "INTERVAL", "every 999"),
    ("FREQ=DAILY;COUNT=1000", START, "COUNT", "at most 999 occurrences"),
    ("FREQ=DAILY;INTERVAL=2;BYDAY=MO,WE", START, "INTERVAL", "FREQ=WEEKLY"),
    ("FREQ=DAILY;BYMONTH=3", START, "BYMONTH", "daily pattern"),
    ("FREQ=DAILY;BYMONTHDAY=3", START, "BYMONTHDAY", "daily pattern"),
    ("FREQ=WEEKLY;BYDAY=1MO", START, "BYDAY", "ordinals"),
    ("FREQ=WEEKLY;BYMONTH=3", START, "BYMONTH", "weekly pattern"),
    ("FREQ=WEEKLY;BYSETPOS=1", START, "BYSETPOS", "weekly pattern"),
    ("FREQ=MONTHLY;BYMONTH=3,6;BYMONTHDAY=3", START, "BYMONTH", "cannot skip months"),
    ("FREQ=MONTHLY;BYMONTHDAY=3,17", START, "BYMONTHDAY", "one day of the month"),
    ("FREQ=MONTHLY;BYMONTHDAY=-2", START, "BYMONTHDAY", "last day (-1)"),
    ("FREQ=MONTHLY;BYMONTHDAY=31", at("2025-01-31T09:00"), "BYMONTHDAY", "BYMONTHDAY=-1"),
    ("FREQ=MONTHLY;BYMONTHDAY=29", at("2025-01-29T09:00"), "BYMONTHDAY", "a day up to 28"),
    ("FREQ=MONTHLY", at("2025-01-30T09:00"), "BYMONTHDAY", "the start's day"),
    ("FREQ=MONTHLY;BYMONTHDAY=28,29,30;BYSETPOS=1", START, "BYSETPOS", "28,29,30,31;BYSETPOS=-1"),
    ("FREQ=MONTHLY;BYSETPOS=1", START, "BYSETPOS", "needs BYDAY"),
    ("FREQ=MONTHLY;BYDAY=1MO,3WE", START, "BYDAY", "several days a month"),
    ("FREQ=MONTHLY;BYDAY=1MO,1WE", START, "BYDAY", "several days a month"),
    ("FREQ=MONTHLY;BYDAY=1MO,WE", START, "BYDAY", "several days a month"),
    ("FREQ=MONTHLY;BYDAY=5MO", START, "BYDAY", "first to fourth and the last"),
    ("FREQ=MONTHLY;BYDAY=-2MO", START, "BYDAY", "not -2"),
    ("FREQ=MONTHLY;BYDAY=MO", START, "BYDAY", "every such weekday"),
    ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=1,3", START, "BYSETPOS", "one position"),
    ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=5", START, "BYSETPOS", "not 5"),
    ("FREQ=MONTHLY;BYDAY=1MO;BYSETPOS=1", START, "BYSETPOS", "ordinal weekday"),
    ("FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", START, "BYDAY", "Friday the 13th"),
    ("FREQ=YEARLY;BYMONTH=3,9", START, "BYMONTH", "one month"),
    ("FREQ=YEARLY;BYMONTHDAY=3", START, "BYMONTH", "every month"),
    ("FREQ=YEARLY;BYDAY=10MO", START, "BYMONTH", "through the year"),
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", at("2024-02-29T09:00"), "BYMONTHDAY", "29 February"),
    ("FREQ=YEARLY", at("2024-02-29T09:00"), "BYMONTHDAY", "the start's day"),
    ("FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31", START, "BYMONTHDAY", "never has day 31"),
    ("FREQ=WEEKLY;BYDAY=TU", START, "DTSTART", "first day after it is 2025-03-04"),
    ("FREQ=MONTHLY;BYDAY=-1FR", START, "DTSTART", "2025-03-28"),
    ("FREQ=DAILY;UNTIL=20250302", START, "UNTIL", "before the start"),
    ("FREQ=DAILY;COUNT=3;UNTIL=20250310", START, "UNTIL", "COUNT and UNTIL"),
    ("FREQ=DAILY;UNTIL=20250310T090000", START, "UNTIL", "UTC date-time"),
    ("FREQ=DAILY;INTERVAL=0", START, "INTERVAL", "1 or more"),
    ("FREQ=DAILY;COUNT=0", START, "COUNT", "1 or more"),
    ("FREQ=MONTHLY;BYMONTH=13", START, "BYMONTH", "1 to 12"),
    ("FREQ=WEEKLY;BYDAY=MO(+1)", START, "BYDAY", "RFC 5545 way"),
    ("FREQ=DAILY;FREQ=WEEKLY", START, "FREQ", "given twice"),
    ("INTERVAL=2", START, "FREQ", "FREQ is required"),
    ("FREQ=DAILY", datetime(2025, 3, 3, 9), "DTSTART", "timezone-aware"),
]


@pytest.mark.parametrize(("rrule", "start", "part", "words"), REFUSALS)
def test_what_outlook_cannot_hold_is_refused_naming_the_part(rrule, start, part, words):
    with pytest.raises(RecurrenceError) as caught:
        to_graph(rrule, start, AMS)

    assert isinstance(caught.value, ValueError)
    assert (caught.value.part, words in caught.value.reason) == (part, True), caught.value.reason


@pytest.mark.parametrize(
    "rrule",
    [
        "",
        "RRULE:",
        "FREQ=DAILY;",
        "FREQ=DAILY;;COUNT=2",
        "FREQ=FORTNIGHTLY",
        "FREQ=DAILY;COUNT=two",
        "FREQ=DAILY;X-NAME=1",
        "FREQ=WEEKLY;BYDAY=0MO",
        "FREQ=WEEKLY;BYDAY=XX",
        "FREQ=DAILY;UNTIL=soon",
        "FREQ=DAILY;BYSETPOS=0",
        "FREQ=DAILY=1",
    ],
)
def test_what_dateutil_rejects_is_rejected(rrule):
    with pytest.raises(ValueError):
        rrulestr(rrule, dtstart=datetime(2025, 3, 3, 9))

    with pytest.raises(RecurrenceError) as caught:
        to_graph(rrule, START, AMS)
    assert caught.value.part == "rrule"


@pytest.mark.parametrize(
    "rrule",
    [
        "DTSTART:20250303T090000Z\nRRULE:FREQ=DAILY",
        "FREQ=DAILY\nEXDATE:20250304T090000Z",
        "FREQ=DAILY FREQ=WEEKLY",
    ],
)
def test_one_rrule_value_is_expected_not_an_icalendar_block(rrule):
    with pytest.raises(RecurrenceError) as caught:
        to_graph(rrule, START, AMS)
    assert caught.value.part == "rrule"


def test_an_unknown_zone_is_refused():
    with pytest.raises(UnknownZone):
        to_graph("FREQ=DAILY", START, "W. Europe Standard Time")


# ---------------------------------------------------------------------------------------- from Graph


def test_graph_echoes_every_property_and_only_the_pattern_type_counts():
    reported = {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "month": 0,
            "dayOfMonth": 0,
            "daysOfWeek": ["friday", "monday"],
            "firstDayOfWeek": "sunday",
            "index": "first",
        },
        "range": {
            "type": "noEnd",
            "startDate": "2025-03-03",
            "endDate": "0001-01-01",
            "recurrenceTimeZone": "W. Europe Standard Time",
            "numberOfOccurrences": 0,
        },
    }

    assert from_graph(reported) == "FREQ=WEEKLY;BYDAY=MO,FR;WKST=SU"


@pytest.mark.parametrize(
    ("pattern", "rrule"),
    [
        (
            {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
            "FREQ=MONTHLY;BYMONTHDAY=28,29,30,31;BYSETPOS=-1",
        ),
        (
            {"type": "absoluteYearly", "interval": 1, "month": 2, "dayOfMonth": 29},
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=28,29;BYSETPOS=-1",
        ),
        (
            {"type": "relativeMonthly", "interval": 3, "daysOfWeek": ALL_DAYS, "index": "last"},
            "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=-1",
        ),
        (
            {
                "type": "relativeMonthly",
                "interval": 1,
                "daysOfWeek": ["saturday", "sunday"],
                "index": "first",
            },
            "FREQ=MONTHLY;BYDAY=SA,SU;BYSETPOS=1",
        ),
        (
            {"type": "relativeYearly", "interval": 1, "month": 5, "daysOfWeek": ["monday"], "index": "last"},
            "FREQ=YEARLY;BYMONTH=5;BYDAY=-1MO",
        ),
    ],
)
def test_outlook_patterns_read_as_rrules(pattern, rrule):
    assert from_graph({"pattern": pattern, "range": {"type": "noEnd", "startDate": "2025-01-31"}}) == rrule


def test_an_outlook_end_date_reads_as_the_end_of_that_day_in_the_series_zone():
    recurrence = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "endDate", "startDate": "2025-03-03", "endDate": "2025-03-10"},
    }
    in_zone = {
        **recurrence,
        "range": {**recurrence["range"], "recurrenceTimeZone": "W. Europe Standard Time"},
    }

    assert from_graph(in_zone) == "FREQ=DAILY;UNTIL=20250310T225959Z"
    assert from_graph(in_zone, all_day=True) == "FREQ=DAILY;UNTIL=20250310"
    assert from_graph(recurrence) == "FREQ=DAILY;UNTIL=20250310"  # no zone reported: the date itself


DAILY = {"type": "daily", "interval": 1}
NO_END = {"type": "noEnd", "startDate": "2025-03-03"}


@pytest.mark.parametrize(
    ("pattern", "recurrence_range", "part"),
    [
        (None, NO_END, "pattern"),
        (DAILY, None, "range"),
        ({"type": "hourly", "interval": 1}, NO_END, "pattern.type"),
        ({"type": "daily", "interval": 0}, NO_END, "pattern.interval"),
        ({"type": "weekly", "interval": 1, "daysOfWeek": []}, NO_END, "pattern.daysOfWeek"),
        ({"type": "weekly", "interval": 1, "daysOfWeek": ["funday"]}, NO_END, "pattern.daysOfWeek"),
        (
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday"], "index": "fifth"},
            NO_END,
            "pattern.index",
        ),
        (DAILY, {"type": "someday"}, "range.type"),
        (DAILY, {"type": "endDate", "endDate": "soon"}, "range.endDate"),
        (DAILY, {"type": "numbered", "numberOfOccurrences": 0}, "range.numberOfOccurrences"),
    ],
)
def test_a_malformed_outlook_recurrence_names_the_property(pattern, recurrence_range, part):
    with pytest.raises(RecurrenceError) as caught:
        from_graph({"pattern": pattern, "range": recurrence_range})
    assert caught.value.part == part


# ---------------------------------------------------------------------------------------- expansion


def test_a_weekly_series_stays_at_nine_across_both_dst_changes():
    start = at("2025-03-17T09:00")

    got = expand("FREQ=WEEKLY;BYDAY=MO", start, AMS, start, at("2025-11-11T00:00"))

    assert {occurrence.time().hour for occurrence in got} == {9}
    assert {occurrence.astimezone(UTC).hour for occurrence in got} == {7, 8}
    assert [o.astimezone(UTC).hour for o in got if o.date() in (date(2025, 3, 24), date(2025, 3, 31))] == [
        8,
        7,
    ]
    assert [o.astimezone(UTC).hour for o in got if o.date() in (date(2025, 10, 20), date(2025, 10, 27))] == [
        7,
        8,
    ]
    assert (
        to_graph("FREQ=WEEKLY;BYDAY=MO", start, AMS)["range"]["recurrenceTimeZone"]
        == "W. Europe Standard Time"
    )


def test_the_southern_hemisphere_keeps_the_wall_clock_too():
    start = at("2025-04-04T09:00", "Australia/Sydney")

    got = expand("FREQ=DAILY;COUNT=4", start, "Australia/Sydney", start, start + timedelta(days=10))

    assert [o.time().hour for o in got] == [9, 9, 9, 9]
    assert [o.astimezone(UTC).hour for o in got] == [22, 22, 23, 23]  # AEDT ends on 6 April


def test_a_time_in_the_spring_gap_moves_on_by_the_gap():
    start = at("2025-03-29T02:30")

    got = expand("FREQ=DAILY;COUNT=3", start, AMS, start, start + timedelta(days=5))

    assert [o.isoformat() for o in got] == [
        "2025-03-29T02:30:00+01:00",
        "2025-03-30T03:30:00+02:00",  # 02:30 does not exist that day
        "2025-03-31T02:30:00+02:00",
    ]


def test_the_window_is_half_open():
    start = at("2025-03-03T09:00")
    second = at("2025-03-04T09:00")

    assert expand("FREQ=DAILY", start, AMS, start, second) == [start]
    assert expand("FREQ=DAILY", start, AMS, second, second + timedelta(seconds=1)) == [second]


def test_an_all_day_window_counts_from_local_midnight():
    day = date(2025, 3, 3)
    midnight_in_amsterdam = datetime(2025, 3, 3, 23, tzinfo=UTC)

    got = expand("FREQ=DAILY", day, AMS, midnight_in_amsterdam, midnight_in_amsterdam + timedelta(hours=1))

    assert got == [date(2025, 3, 4)]


def test_expand_needs_an_aware_window():
    with pytest.raises(ValueError, match="timezone-aware"):
        expand("FREQ=DAILY", START, AMS, datetime(2025, 3, 3), datetime(2025, 3, 4))


# ----------------------------------------------------------------------------- exdates and overrides


def test_an_occurrence_is_known_by_its_local_date():
    late_evening_utc = datetime(2025, 3, 3, 22, 30, tzinfo=UTC)

    assert occurrence_date(late_evening_utc, "Australia/Sydney") == date(2025, 3, 4)
    assert occurrence_date(late_evening_utc, "America/New_York") == date(2025, 3, 3)
    assert occurrence_date(date(2025, 3, 3), "Pacific/Kiritimati") == date(2025, 3, 3)
    with pytest.raises(ValueError, match="timezone-aware"):
        occurrence_date(datetime(2025, 3, 3, 22, 30), AMS)


@pytest.mark.parametrize(
    ("rrule", "day", "expected"),
    [
        ("FREQ=WEEKLY;BYDAY=MO,WE", date(2025, 3, 3), True),
        ("FREQ=WEEKLY;BYDAY=MO,WE", date(2025, 3, 5), True),
        ("FREQ=WEEKLY;BYDAY=MO,WE", date(2025, 3, 4), False),
        ("FREQ=WEEKLY;BYDAY=MO,WE", date(2025, 2, 26), False),  # before the start
        ("FREQ=WEEKLY;BYDAY=MO,WE;COUNT=3", date(2025, 3, 10), True),
        ("FREQ=WEEKLY;BYDAY=MO,WE;COUNT=3", date(2025, 3, 12), False),  # after the third
        ("FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20250310", date(2025, 3, 10), True),
        ("FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20250310T075959Z", date(2025, 3, 10), False),
        ("FREQ=MONTHLY;BYDAY=1MO", date(2027, 2, 1), True),
    ],
)
def test_exdates_and_overrides_are_checked_against_the_series(rrule, day, expected):
    assert is_occurrence(rrule, START, AMS, day) is expected


def test_an_all_day_series_ends_on_the_local_date_of_a_utc_until():
    rrule = "FREQ=DAILY;UNTIL=20250310T075959Z"  # 08:59:59 on 10 March in Amsterdam

    assert is_occurrence(rrule, date(2025, 3, 3), AMS, date(2025, 3, 10))
    assert not is_occurrence(rrule, date(2025, 3, 3), AMS, date(2025, 3, 11))
    assert not is_occurrence(rrule, START, AMS, date(2025, 3, 10))  # 09:00 that day is after UNTIL


def test_expansion_refuses_what_outlook_cannot_hold():
    with pytest.raises(RecurrenceError) as caught:
        expand("FREQ=HOURLY", START, AMS, START, START + timedelta(days=1))
    assert caught.value.part == "FREQ"

    with pytest.raises(RecurrenceError) as caught:
        is_occurrence("FREQ=WEEKLY;BYDAY=TU", START, AMS, date(2025, 3, 4))
    assert caught.value.part == "DTSTART"


def test_a_start_given_in_the_spring_gap_is_the_instant_it_denotes():
    in_the_gap = datetime(2025, 3, 30, 2, 30, tzinfo=ZoneInfo(AMS))  # means 01:30 UTC, 03:30 CEST

    got = expand("FREQ=DAILY;COUNT=2", in_the_gap, AMS, in_the_gap, in_the_gap + timedelta(days=2))

    assert [o.isoformat() for o in got] == ["2025-03-30T03:30:00+02:00", "2025-03-31T03:30:00+02:00"]
