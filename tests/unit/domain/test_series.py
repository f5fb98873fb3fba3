"""Outlook series in RFC 5545 terms: the rule checked with dateutil, exact or carried with its occurrences."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.calendar import EventKind
from shared.domain.planner import ItemStatus, Observation, Visibility, plan
from shared.domain.recurrence import next_occurrence, outlook_series
from shared.domain.series import masters_to_read
from tests.fakes.events import event

pytestmark = pytest.mark.unit

MONTH_END = {
    "pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
    "range": {"type": "endDate", "startDate": "2027-01-31", "endDate": "2027-06-30"},
}
START = datetime(2027, 1, 31, 8, 0, tzinfo=UTC)


def test_outlooks_day_31_is_the_rfc_5545_last_of_28_to_31_and_exact() -> None:
    series = outlook_series(MONTH_END, START, "W. Europe Standard Time", all_day=False)
    assert series.exact and series.time_zone == "Europe/Berlin"
    assert series.rrule is not None and series.rrule.startswith(
        "FREQ=MONTHLY;BYMONTHDAY=28,29,30,31;BYSETPOS=-1"
    )
    assert next_occurrence(series, datetime(2027, 2, 1, tzinfo=UTC)) == datetime(
        2027, 2, 28, 9, 0, tzinfo=series.start.tzinfo
    )
    assert next_occurrence(series, datetime(2027, 7, 1, tzinfo=UTC)) is None  # the range has ended


def test_a_zone_with_no_iana_name_is_carried_as_inexact_and_says_why() -> None:
    series = outlook_series(MONTH_END, START, "tzone://Microsoft/Custom", all_day=False)
    assert not series.exact
    assert series.reason is not None and "no IANA name" in series.reason


def test_a_pattern_outlook_has_but_the_rrule_cannot_hold_is_inexact() -> None:
    odd = {"pattern": {"type": "fortnightly", "interval": 1}, "range": {"type": "noEnd"}}
    series = outlook_series(odd, START, "UTC", all_day=False)
    assert (series.rrule, series.exact) == (None, False)
    assert series.reason is not None and "pattern.type" in series.reason


def test_an_inexact_series_carries_the_occurrences_outlook_shows() -> None:
    odd = {"pattern": {"type": "fortnightly", "interval": 1}, "range": {"type": "noEnd"}}
    master = event("M", start=START, kind=EventKind.SERIES_MASTER, recurrence=odd, original_time_zone="UTC")
    occurrences = [
        replace(
            master,
            id=f"M.{n}",
            kind=EventKind.OCCURRENCE,
            series_master_id="M",
            start=START + timedelta(days=14 * n),
            end=START + timedelta(days=14 * n, hours=1),
            original_start=START + timedelta(days=14 * n),
            recurrence=None,
        )
        for n in range(3)
    ]
    window_start = datetime(2027, 1, 1, tzinfo=UTC)
    assert masters_to_read(occurrences, {}, complete=True) == {"M"}
    result = plan(Observation(occurrences, True, window_start, masters={"M": master}), {}, Visibility())
    [created] = result.changes
    recurrence = created.data["event"]["recurrence"]
    assert (recurrence["exact"], recurrence["rrule"]) == (False, None)
    assert recurrence["occurrences"] == [
        "2027-01-31T08:00:00Z",
        "2027-02-14T08:00:00Z",
        "2027-02-28T08:00:00Z",
    ]


def test_a_known_series_whose_occurrences_keep_its_change_key_needs_no_master_read() -> None:
    occurrence = event("M.1", kind=EventKind.OCCURRENCE, series_master_id="M", change_key="ck-master")
    master = ItemStatus("M", "ck-master", "uid-M", "h", datetime.max.replace(tzinfo=UTC), True, master=True)
    assert masters_to_read([occurrence], {"M": master}, complete=False) == set()
    assert masters_to_read([replace(occurrence, change_key="ck-new")], {"M": master}, complete=False) == {"M"}
    assert masters_to_read([], {"M": master}, complete=True) == {"M"}  # a full read saw none of it
