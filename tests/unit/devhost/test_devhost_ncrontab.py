"""NCRONTAB schedules (six fields with seconds, or five) as the timer trigger reads them, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devhost.timers import IntervalSchedule, RetryPolicy, ScheduleError, parse_schedule

pytestmark = pytest.mark.unit

START = datetime(2026, 11, 22, 10, 7, 3, tzinfo=UTC)  # a Sunday


def occurrences(expression: str, count: int = 3, start: datetime = START) -> list[datetime]:
    schedule = parse_schedule(expression)
    out: list[datetime] = []
    moment = start
    for _ in range(count):
        moment = schedule.next_after(moment)
        out.append(moment)
    return out


def at(h: int, m: int, s: int = 0, day: int = 22, month: int = 11, year: int = 2026) -> datetime:
    return datetime(year, month, day, h, m, s, tzinfo=UTC)


def test_six_fields_start_with_seconds() -> None:
    assert occurrences("*/5 * * * * *") == [at(10, 7, 5), at(10, 7, 10), at(10, 7, 15)]


def test_every_five_minutes() -> None:
    assert occurrences("0 */5 * * * *") == [at(10, 10), at(10, 15), at(10, 20)]


def test_hour_is_a_point_in_time_not_a_span() -> None:
    assert occurrences("0 0 2 * * *", 2) == [at(2, 0, day=23), at(2, 0, day=24)]


def test_weekdays_only() -> None:
    # 22 Nov 2026 is a Sunday: the next weekday 09:30 is Monday the 23rd.
    assert occurrences("0 30 9 * * 1-5", 2) == [at(9, 30, day=23), at(9, 30, day=24)]


def test_five_fields_have_no_seconds() -> None:
    assert occurrences("*/15 * * * *", 2) == [at(10, 15), at(10, 30)]


def test_day_and_day_of_week_must_both_match_like_ncrontab() -> None:
    # The 13th that is a Friday (NCrontab ANDs the two; Vixie cron would OR them).
    (first,) = occurrences("0 0 0 13 * 5", 1)
    assert (first.day, first.weekday()) == (13, 4)


def test_occurrences_are_utc_and_aware() -> None:
    (first,) = occurrences("0 0 * * * *", 1)
    assert first.tzinfo is not None and first.utcoffset() == timedelta(0)


def test_previous_occurrence() -> None:
    assert parse_schedule("0 0 2 * * *").previous_before(START) == at(2, 0)


def test_timespan_is_an_interval() -> None:
    schedule = parse_schedule("00:00:30")
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.next_after(START) == START + timedelta(seconds=30)


@pytest.mark.parametrize(
    "expression", ["", "* * *", "0 0 0 * * * *", "61 * * * * *", "0 0 25 * * *", "nonsense"]
)
def test_invalid_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression)


def test_retry_policies_follow_the_decorator_settings() -> None:
    fixed = RetryPolicy.from_settings(
        {"strategy": "fixed_delay", "max_retry_count": "3", "delay_interval": "00:00:10"}
    )
    assert fixed is not None and fixed.max_retry_count == 3 and fixed.delay_before(2) == 10
    backoff = RetryPolicy.from_settings(
        {
            "strategy": "exponential_backoff",
            "max_retry_count": "5",
            "minimum_interval": "00:00:10",
            "maximum_interval": "00:00:30",
        }
    )
    assert backoff is not None
    assert [backoff.delay_before(n) for n in (1, 2, 3)] == [10, 20, 30]
    assert RetryPolicy.from_settings(None) is None
