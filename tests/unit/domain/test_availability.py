"""The availability engine: each decision by example, then the whole against a minute-grid oracle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate, pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.domain.availability import (
    BlockingPolicy,
    BusyPeriod,
    Group,
    InvalidQuestion,
    Period,
    Question,
    Ranking,
    ShowAs,
    Slot,
    StaffCalendar,
    WorkingHours,
    booked_seconds,
    find_slots,
    free_periods,
)

pytestmark = pytest.mark.unit

AMS = ZoneInfo("Europe/Amsterdam")
NY = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
MINUTE = timedelta(minutes=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, zone: ZoneInfo) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(UTC)


def busy(start: str, end: str, show_as: ShowAs = ShowAs.BUSY) -> BusyPeriod:
    return BusyPeriod(utc(start), utc(end), show_as)


def ask(
    start: str,
    end: str,
    minutes: int = 30,
    *,
    staff: tuple[str, ...] = ("ann",),
    every: int = 30,
    **options: object,
) -> Question:
    return Question(
        groups=(Group(staff),),
        periods=(Period(utc(start), utc(end)),),
        duration=timedelta(minutes=minutes),
        interval=timedelta(minutes=every),
        **options,  # type: ignore[arg-type]
    )


def starts(slots: list[Slot]) -> list[str]:
    return [slot.start.strftime("%H:%M") for slot in slots]


def spans(periods: list[Period]) -> list[tuple[str, str]]:
    return [(p.start.isoformat()[:16], p.end.isoformat()[:16]) for p in periods]


# --- show_as and the blocking policy -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("show_as", "policy", "offered"),
    [
        (ShowAs.FREE, BlockingPolicy(), True),
        (ShowAs.FREE, BlockingPolicy(tentative=True, working_elsewhere=True), True),
        (ShowAs.TENTATIVE, BlockingPolicy(), False),
        (ShowAs.TENTATIVE, BlockingPolicy(tentative=False), True),
        (ShowAs.BUSY, BlockingPolicy(tentative=False), False),
        (ShowAs.OOF, BlockingPolicy(tentative=False), False),
        (ShowAs.UNKNOWN, BlockingPolicy(tentative=False), False),
        (ShowAs.WORKING_ELSEWHERE, BlockingPolicy(), True),
        (ShowAs.WORKING_ELSEWHERE, BlockingPolicy(working_elsewhere=True), False),
    ],
)
def test_show_as_blocks_as_the_policy_says(show_as: ShowAs, policy: BlockingPolicy, offered: bool) -> None:
    calendars = {"ann": StaffCalendar([busy("2026-11-16T10:00", "2026-11-16T11:00", show_as)])}
    slots = find_slots(ask("2026-11-16T10:00", "2026-11-16T11:00", policy=policy), calendars)
    assert starts(slots) == (["10:00", "10:30"] if offered else [])


def test_graph_words_are_read_in_any_case_and_anything_else_is_unknown() -> None:
    assert ShowAs.from_graph("workingElsewhere") is ShowAs.WORKING_ELSEWHERE
    assert ShowAs.from_graph("OOF") is ShowAs.OOF
    assert ShowAs.from_graph("somethingNew") is ShowAs.UNKNOWN
    assert ShowAs.from_graph(None) is ShowAs.UNKNOWN


def test_a_zero_length_busy_period_blocks_nothing_even_with_buffers() -> None:
    calendars = {"ann": StaffCalendar([busy("2026-11-16T10:00", "2026-11-16T10:00")])}
    question = ask(
        "2026-11-16T09:30",
        "2026-11-16T10:30",
        buffer_before=timedelta(minutes=15),
        buffer_after=timedelta(minutes=15),
    )
    assert starts(find_slots(question, calendars)) == ["09:30", "10:00"]


def test_a_busy_period_is_widened_to_whole_seconds() -> None:
    calendars = {
        "ann": StaffCalendar([BusyPeriod(utc("2026-11-16T09:00"), utc("2026-11-16T10:00:00.000001"))])
    }
    assert starts(find_slots(ask("2026-11-16T09:00", "2026-11-16T11:00"), calendars)) == ["10:30"]


def test_overlapping_and_touching_busy_periods_block_as_one() -> None:
    calendars = {
        "ann": StaffCalendar(
            [
                busy("2026-11-16T09:30", "2026-11-16T10:00"),
                busy("2026-11-16T09:00", "2026-11-16T09:45", ShowAs.TENTATIVE),
                busy("2026-11-16T10:00", "2026-11-16T10:30", ShowAs.OOF),
            ]
        )
    }
    periods = free_periods(ask("2026-11-16T08:00", "2026-11-16T12:00"), calendars)
    assert spans(periods) == [
        ("2026-11-16T08:00", "2026-11-16T09:00"),
        ("2026-11-16T10:30", "2026-11-16T12:00"),
    ]


# --- all-day events ------------------------------------------------------------------------------------


def test_an_all_day_event_blocks_the_staff_members_own_local_day() -> None:
    # Ann is in Amsterdam; the question is asked from New York. Her all-day 17 November is
    # 16 Nov 23:00Z to 17 Nov 23:00Z: 18:00 New York time on the 16th is already blocked.
    day_off = BusyPeriod.all_day(date(2026, 11, 17), date(2026, 11, 18), AMS, ShowAs.OOF)
    assert (day_off.start, day_off.end) == (utc("2026-11-16T23:00"), utc("2026-11-17T23:00"))
    question = Question(
        groups=(Group(("ann",)),),
        periods=(Period(local("2026-11-16T16:00", NY), local("2026-11-16T19:00", NY)),),
        duration=timedelta(hours=1),
        interval=timedelta(hours=1),
        zone=NY,
    )
    slots = find_slots(question, {"ann": StaffCalendar([day_off])})
    assert [s.start.astimezone(NY).strftime("%H:%M") for s in slots] == ["16:00", "17:00"]


def test_a_multi_day_all_day_event_spans_local_midnights_across_a_dst_change() -> None:
    # 24-25 October in Amsterdam: clocks go back in the night of the 25th, so the event lasts 49 hours.
    holiday = BusyPeriod.all_day(date(2026, 10, 24), date(2026, 10, 26), AMS)
    assert holiday.start == utc("2026-10-23T22:00")
    assert holiday.end == utc("2026-10-25T23:00")
    assert holiday.end - holiday.start == timedelta(hours=49)


def test_an_all_day_event_starts_when_the_day_does_where_midnight_is_skipped() -> None:
    # Santiago, 6 September 2026: clocks jump from 00:00 (-04) to 01:00 (-03), so the day begins at 04:00Z.
    day = BusyPeriod.all_day(date(2026, 9, 6), date(2026, 9, 7), ZoneInfo("America/Santiago"))
    assert (day.start, day.end) == (utc("2026-09-06T04:00"), utc("2026-09-07T03:00"))


# --- buffers -------------------------------------------------------------------------------------------


def test_buffers_keep_slots_away_from_meetings_on_each_side() -> None:
    # A meeting 10:00-11:00; 15 minutes before each slot and 10 after must be free too.
    calendars = {"ann": StaffCalendar([busy("2026-11-16T10:00", "2026-11-16T11:00")])}
    question = ask(
        "2026-11-16T09:00",
        "2026-11-16T12:00",
        every=15,
        buffer_before=timedelta(minutes=15),
        buffer_after=timedelta(minutes=10),
    )
    assert starts(find_slots(question, calendars)) == ["09:00", "09:15", "11:15", "11:30"]
    periods = free_periods(question, calendars)
    assert spans(periods) == [
        ("2026-11-16T09:00", "2026-11-16T09:50"),
        ("2026-11-16T11:15", "2026-11-16T12:00"),
    ]


def test_buffers_may_reach_outside_the_period_and_working_hours() -> None:
    hours = WorkingHours(frozenset(range(7)), time(9), time(10), ZoneInfo("UTC"))
    calendars = {"ann": StaffCalendar([], hours)}
    question = ask(
        "2026-11-16T09:00",
        "2026-11-16T10:00",
        buffer_before=timedelta(minutes=30),
        buffer_after=timedelta(minutes=30),
        working_hours=True,
    )
    assert starts(find_slots(question, calendars)) == ["09:00", "09:30"]


def test_a_meeting_outside_the_question_still_blocks_through_its_buffer() -> None:
    calendars = {"ann": StaffCalendar([busy("2026-11-16T08:00", "2026-11-16T09:00")])}
    question = ask("2026-11-16T09:00", "2026-11-16T10:00", buffer_before=timedelta(minutes=15))
    assert starts(find_slots(question, calendars)) == ["09:30"]


# --- working hours -------------------------------------------------------------------------------------


def test_working_hours_keep_their_wall_clock_times_across_a_dst_change() -> None:
    hours = WorkingHours(frozenset(range(5)), time(9), time(17), AMS)
    opened = hours.open_in(
        utc("2026-03-27T00:00"), utc("2026-03-31T00:00")
    )  # Friday to Monday; DST on Sunday
    assert spans(opened) == [
        ("2026-03-27T08:00", "2026-03-27T16:00"),
        ("2026-03-30T07:00", "2026-03-30T15:00"),
    ]


def test_working_hours_ending_before_they_start_cross_midnight_and_belong_to_their_first_day() -> None:
    nights = WorkingHours(frozenset({0}), time(22), time(6), ZoneInfo("UTC"))  # Monday night only
    opened = nights.open_in(utc("2026-11-15T00:00"), utc("2026-11-18T00:00"))  # Sunday to Tuesday
    assert spans(opened) == [("2026-11-16T22:00", "2026-11-17T06:00")]


def test_a_wall_time_skipped_by_dst_is_read_with_the_offset_before_the_jump() -> None:
    # 29 March 2026, Amsterdam: 02:00 CET becomes 03:00 CEST. 02:30 does not exist; it lands on 03:30 CEST.
    early = WorkingHours(frozenset({6}), time(2, 30), time(4), AMS)
    opened = early.open_in(utc("2026-03-28T12:00"), utc("2026-03-29T12:00"))
    assert spans(opened) == [("2026-03-29T01:30", "2026-03-29T02:00")]


def test_a_wall_time_repeated_by_dst_is_its_first_occurrence() -> None:
    # 1 November 2026, New York: 01:00-02:00 happens twice (EDT, then EST). 01:30 is 05:30Z.
    hours = WorkingHours(frozenset({6}), time(1, 30), time(3), NY)
    opened = hours.open_in(utc("2026-11-01T00:00"), utc("2026-11-02T00:00"))
    assert spans(opened) == [("2026-11-01T05:30", "2026-11-01T08:00")]


def test_slots_lie_inside_each_staff_members_own_working_hours_when_asked() -> None:
    calendars = {
        "ann": StaffCalendar([], WorkingHours(frozenset(range(5)), time(9), time(17), AMS)),
        "bob": StaffCalendar([], WorkingHours(frozenset(range(5)), time(9), time(17), NY)),
    }
    question = ask(
        "2026-11-16T00:00", "2026-11-17T00:00", 60, staff=("ann", "bob"), every=60, working_hours=True
    )
    # Amsterdam 08:00-16:00Z, New York 14:00-22:00Z: together 14:00-16:00Z.
    assert starts(find_slots(question, calendars)) == ["14:00", "15:00"]
    unbound = ask("2026-11-16T00:00", "2026-11-16T03:00", 60, staff=("ann", "bob"), every=60)
    assert starts(find_slots(unbound, calendars)) == ["00:00", "01:00", "02:00"]


def test_staff_without_working_hours_are_not_limited_by_them() -> None:
    question = ask("2026-11-15T00:00", "2026-11-15T02:00", 60, every=60, working_hours=True)  # a Sunday night
    assert starts(find_slots(question, {"ann": StaffCalendar([])})) == ["00:00", "01:00"]


def test_working_hours_refuse_what_they_cannot_mean() -> None:
    with pytest.raises(InvalidQuestion) as same:
        WorkingHours(frozenset({0}), time(9), time(9), AMS)
    assert same.value.field == "end"
    with pytest.raises(InvalidQuestion) as day:
        WorkingHours(frozenset({7}), time(9), time(17), AMS)
    assert day.value.field == "days"
    with pytest.raises(InvalidQuestion) as zoned:
        WorkingHours(frozenset({0}), time(9, tzinfo=UTC), time(17), AMS)
    assert zoned.value.field == "start"
    with pytest.raises(InvalidQuestion) as named:
        WorkingHours.named(["monday", "funday"], time(9), time(17), AMS)
    assert named.value.field == "days"


def test_working_hours_are_read_from_graphs_day_names() -> None:
    hours = WorkingHours.named(["Monday", "wednesday", "sunday"], time(8), time(16), AMS)
    assert hours.days == frozenset({0, 2, 6})


# --- alignment -----------------------------------------------------------------------------------------


def test_slots_start_on_the_hour_in_the_questions_zone() -> None:
    question = Question(
        groups=(Group(("ann",)),),
        periods=(Period(utc("2026-11-16T03:00"), utc("2026-11-16T07:00")),),
        duration=timedelta(minutes=60),
        interval=timedelta(minutes=60),
        zone=KOLKATA,  # UTC+05:30
    )
    assert starts(find_slots(question, {"ann": StaffCalendar([])})) == ["03:30", "04:30", "05:30"]


def test_an_interval_of_hours_counts_from_local_midnight() -> None:
    question = Question(
        groups=(Group(("ann",)),),
        periods=(Period(local("2026-11-16T07:00", AMS), local("2026-11-16T15:00", AMS)),),
        duration=timedelta(minutes=60),
        interval=timedelta(hours=2),
        zone=AMS,
    )
    slots = find_slots(question, {"ann": StaffCalendar([])})
    assert [s.start.astimezone(AMS).strftime("%H:%M") for s in slots] == ["08:00", "10:00", "12:00", "14:00"]


def test_the_repeated_hour_offers_its_aligned_times_twice_and_the_skipped_hour_none() -> None:
    back = Question(
        groups=(Group(("ann",)),),
        periods=(Period(utc("2026-11-01T04:00"), utc("2026-11-01T08:00")),),  # 00:00 EDT to 03:00 EST
        duration=timedelta(minutes=60),
        interval=timedelta(minutes=60),
        zone=NY,
    )
    assert starts(find_slots(back, {"ann": StaffCalendar([])})) == ["04:00", "05:00", "06:00", "07:00"]
    forward = Question(
        groups=(Group(("ann",)),),
        periods=(Period(utc("2026-03-08T06:00"), utc("2026-03-08T09:00")),),  # 01:00 EST to 05:00 EDT
        duration=timedelta(minutes=60),
        interval=timedelta(minutes=60),
        zone=NY,
    )
    slots = find_slots(forward, {"ann": StaffCalendar([])})
    assert [s.start.astimezone(NY).strftime("%H:%M") for s in slots] == ["01:00", "03:00", "04:00"]


# --- periods, groups, round robin, limits --------------------------------------------------------------


def test_touching_periods_are_merged_so_a_slot_may_span_them() -> None:
    question = Question(
        groups=(Group(("ann",)),),
        periods=(
            Period(utc("2026-11-16T10:00"), utc("2026-11-16T11:00")),
            Period(utc("2026-11-16T09:00"), utc("2026-11-16T10:00")),
        ),
        duration=timedelta(hours=1),
        interval=timedelta(minutes=30),
    )
    assert starts(find_slots(question, {"ann": StaffCalendar([])})) == ["09:00", "09:30", "10:00"]


def test_an_n_of_group_names_the_staff_free_for_each_slot() -> None:
    calendars = {
        "ann": StaffCalendar([busy("2026-11-16T09:00", "2026-11-16T10:00")]),
        "bob": StaffCalendar([busy("2026-11-16T10:00", "2026-11-16T11:00")]),
        "cat": StaffCalendar([busy("2026-11-16T09:00", "2026-11-16T11:00")]),
    }
    question = Question(
        groups=(Group(("ann", "bob", "cat"), required=2),),
        periods=(Period(utc("2026-11-16T09:00"), utc("2026-11-16T12:00")),),
        duration=timedelta(hours=1),
        interval=timedelta(hours=1),
    )
    slots = find_slots(question, calendars)
    assert [(s.start.strftime("%H:%M"), s.free) for s in slots] == [("11:00", (("ann", "bob", "cat"),))]
    one = Question(
        groups=(Group(("ann", "bob", "cat"), required=1),),
        periods=question.periods,
        duration=question.duration,
        interval=question.interval,
    )
    assert [s.free for s in find_slots(one, calendars)] == [
        (("bob",),),
        (("ann",),),
        (("ann", "bob", "cat"),),
    ]


def test_every_group_must_be_satisfied() -> None:
    calendars = {
        "ann": StaffCalendar([]),
        "bob": StaffCalendar([busy("2026-11-16T09:00", "2026-11-16T10:00")]),
        "room": StaffCalendar([busy("2026-11-16T10:00", "2026-11-16T11:00")]),
    }
    question = Question(
        groups=(Group(("ann", "bob"), required=1), Group(("room",))),
        periods=(Period(utc("2026-11-16T09:00"), utc("2026-11-16T12:00")),),
        duration=timedelta(hours=1),
        interval=timedelta(hours=1),
    )
    slots = find_slots(question, calendars)
    assert [(s.start.strftime("%H:%M"), s.free) for s in slots] == [
        ("09:00", (("ann",), ("room",))),
        ("11:00", (("ann", "bob"), ("room",))),
    ]


def test_round_robin_names_the_least_booked_first_and_ties_keep_the_listed_order() -> None:
    calendars = {
        "ann": StaffCalendar([busy("2026-11-16T13:00", "2026-11-16T15:00")]),
        "bob": StaffCalendar([busy("2026-11-16T13:00", "2026-11-16T14:00")]),
        "cat": StaffCalendar([busy("2026-11-16T14:00", "2026-11-16T15:00")]),
        "dan": StaffCalendar([busy("2026-11-16T13:00", "2026-11-16T13:30", ShowAs.FREE)]),
    }
    question = Question(
        groups=(Group(("ann", "bob", "cat", "dan"), required=1, ranking=Ranking.LEAST_BOOKED),),
        periods=(Period(utc("2026-11-16T09:00"), utc("2026-11-16T17:00")),),
        duration=timedelta(hours=1),
        interval=timedelta(hours=1),
        max_results=1,
    )
    assert find_slots(question, calendars)[0].free == (("dan", "bob", "cat", "ann"),)


def test_round_robin_counts_booked_time_over_the_whole_span_between_periods_too() -> None:
    calendars = {
        "ann": StaffCalendar([busy("2026-11-16T12:00", "2026-11-16T14:00")]),  # between the periods
        "bob": StaffCalendar([busy("2026-11-16T16:00", "2026-11-16T17:00")]),  # after the last period
    }
    question = Question(
        groups=(Group(("ann", "bob"), required=1, ranking=Ranking.LEAST_BOOKED),),
        periods=(
            Period(utc("2026-11-16T09:00"), utc("2026-11-16T10:00")),
            Period(utc("2026-11-16T14:00"), utc("2026-11-16T15:00")),
        ),
        duration=timedelta(hours=1),
        interval=timedelta(hours=1),
    )
    assert [s.free for s in find_slots(question, calendars)] == [(("bob", "ann"),), (("bob", "ann"),)]


def test_booked_time_counts_overlaps_once_and_only_within_the_span() -> None:
    periods = [
        busy("2026-11-16T08:00", "2026-11-16T10:00"),
        busy("2026-11-16T09:00", "2026-11-16T11:00", ShowAs.TENTATIVE),
        busy("2026-11-16T12:00", "2026-11-16T13:00", ShowAs.FREE),
    ]
    span = Period(utc("2026-11-16T09:00"), utc("2026-11-16T17:00"))
    assert booked_seconds(periods, span, BlockingPolicy()) == 2 * 3600
    assert booked_seconds(periods, span, BlockingPolicy(tentative=False)) == 3600


def test_max_results_keeps_the_earliest() -> None:
    calendars = {"ann": StaffCalendar([busy("2026-11-16T10:00", "2026-11-16T11:00")])}
    question = ask("2026-11-16T09:00", "2026-11-16T17:00", max_results=3)
    assert starts(find_slots(question, calendars)) == ["09:00", "09:30", "11:00"]
    one = ask("2026-11-16T09:00", "2026-11-16T17:00", max_results=1)
    assert spans(free_periods(one, calendars)) == [("2026-11-16T09:00", "2026-11-16T10:00")]


def test_an_n_of_groups_free_period_may_be_covered_by_different_staff_in_turn() -> None:
    # Ann is free 9-10 and Bob 10-11 only: one of them is free all morning, but no hour-long slot
    # has the same one free throughout except 9:00 (Ann) and 10:00 (Bob).
    calendars = {
        "ann": StaffCalendar([busy("2026-11-16T10:00", "2026-11-16T12:00")]),
        "bob": StaffCalendar(
            [busy("2026-11-16T09:00", "2026-11-16T10:00"), busy("2026-11-16T11:00", "2026-11-16T12:00")]
        ),
    }
    question = Question(
        groups=(Group(("ann", "bob"), required=1),),
        periods=(Period(utc("2026-11-16T09:00"), utc("2026-11-16T12:00")),),
        duration=timedelta(hours=1),
        interval=timedelta(minutes=30),
    )
    assert spans(free_periods(question, calendars)) == [("2026-11-16T09:00", "2026-11-16T11:00")]
    assert [(s.start.strftime("%H:%M"), s.free) for s in find_slots(question, calendars)] == [
        ("09:00", (("ann",),)),
        ("10:00", (("bob",),)),
    ]


def test_free_periods_shorter_than_the_duration_are_left_out() -> None:
    calendars = {
        "ann": StaffCalendar(
            [busy("2026-11-16T09:20", "2026-11-16T10:00"), busy("2026-11-16T10:20", "2026-11-16T11:00")]
        )
    }
    assert spans(free_periods(ask("2026-11-16T09:00", "2026-11-16T12:00"), calendars)) == [
        ("2026-11-16T11:00", "2026-11-16T12:00")
    ]


# --- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: BusyPeriod(datetime(2026, 11, 16, 9), utc("2026-11-16T10:00")), "start"),
        (lambda: BusyPeriod(utc("2026-11-16T10:00"), utc("2026-11-16T09:00")), "end"),
        (lambda: Period(utc("2026-11-16T10:00"), utc("2026-11-16T09:00")), "end"),
        (lambda: Group(()), "staff_ids"),
        (lambda: Group(("ann", "ann")), "staff_ids"),
        (lambda: Group(("ann", "bob"), required=3), "required"),
        (lambda: Group(("ann",), required=0), "required"),
        (lambda: ask("2026-11-16T09:00", "2026-11-16T10:00", 0), "duration"),
        (lambda: ask("2026-11-16T09:00", "2026-11-16T10:00", every=0), "interval"),
        (lambda: ask("2026-11-16T09:00", "2026-11-16T10:00", buffer_before=-MINUTE), "buffer_before"),
        (
            lambda: ask("2026-11-16T09:00", "2026-11-16T10:00", buffer_after=timedelta(microseconds=5)),
            "buffer_after",
        ),
        (lambda: ask("2026-11-16T09:00", "2026-11-16T10:00", max_results=0), "max_results"),
        (lambda: Question((), (), timedelta(minutes=30)), "groups"),
        (lambda: Question((Group(("ann",)),), (), timedelta(minutes=30)), "periods"),
    ],
)
def test_what_the_engine_cannot_answer_is_refused_naming_the_field(
    build: Callable[[], object], field: str
) -> None:
    with pytest.raises(InvalidQuestion) as refused:
        build()
    assert refused.value.field == field


def test_a_staff_member_without_a_calendar_is_refused() -> None:
    with pytest.raises(InvalidQuestion) as refused:
        find_slots(
            ask("2026-11-16T09:00", "2026-11-16T10:00", staff=("ann", "zed")), {"ann": StaffCalendar([])}
        )
    assert refused.value.field == "groups"
    assert "zed" in refused.value.reason


# --- properties against a brute-force minute grid ------------------------------------------------------

ZONES = [AMS, NY, ZoneInfo("UTC"), KOLKATA]
# Days with a DST change: Europe's spring and autumn, America's spring and autumn.
DST_DAYS = [
    utc("2026-03-29T00:00"),
    utc("2026-10-25T00:00"),
    utc("2026-03-08T00:00"),
    utc("2026-11-01T00:00"),
]
SPAN_MINUTES = 3 * 24 * 60  # the question's span: from a day before the change to two days after
STAFF = ("ann", "bob", "cat")


@dataclass(frozen=True)
class Case:
    question: Question
    calendars: dict[str, StaffCalendar]
    origin: datetime  # minute 0 of the grid


@st.composite
def busy_periods(draw: st.DrawFn, origin: datetime) -> list[BusyPeriod]:
    periods = []
    for _ in range(draw(st.integers(0, 8))):
        start = draw(st.integers(-24 * 60, SPAN_MINUTES + 600))
        kind = draw(st.sampled_from([*["meeting"] * 8, "zero-length", "several days"]))
        length = {"zero-length": 0, "meeting": draw(st.integers(1, 240)), "several days": 0}[kind]
        if kind == "several days":
            length = draw(st.integers(1440, 4000))
        show_as = draw(st.sampled_from(ShowAs))
        periods.append(BusyPeriod(origin + start * MINUTE, origin + (start + length) * MINUTE, show_as))
    if periods and draw(st.booleans()):  # one touching the previous and one overlapping it
        last = periods[-1]
        periods.append(BusyPeriod(last.end, last.end + 30 * MINUTE, ShowAs.BUSY))
        periods.append(BusyPeriod(last.start + MINUTE, last.end + MINUTE, ShowAs.OOF))
    return periods


@st.composite
def working_hours(draw: st.DrawFn, *, optional: bool = True) -> WorkingHours | None:
    if optional and draw(st.booleans()):
        return None
    start = time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 30])))
    end = time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 30])))
    if start == end:
        end = time((end.hour + 8) % 24, end.minute)
    days = frozenset(draw(st.sets(st.integers(0, 6), min_size=1)))
    return WorkingHours(days, start, end, draw(st.sampled_from(ZONES)))


@st.composite
def cases(draw: st.DrawFn, ranking: Ranking = Ranking.LISTED) -> Case:
    origin = draw(st.sampled_from(DST_DAYS)) - timedelta(days=1)
    staff = STAFF[: draw(st.integers(1, 3))]
    calendars = {s: StaffCalendar(draw(busy_periods(origin)), draw(working_hours())) for s in staff}
    groups = []
    for _ in range(draw(st.integers(1, 2))):
        members = tuple(draw(st.permutations(staff))[: draw(st.integers(1, len(staff)))])
        required = draw(st.sampled_from(["all", *range(1, len(members) + 1)] if len(members) < 3 else [1, 2]))
        groups.append(Group(members, required, ranking))
    periods = []
    for _ in range(draw(st.integers(1, 3))):
        first = draw(st.integers(0, SPAN_MINUTES - 1))
        length = draw(st.sampled_from(["hours", "hours", "hours", "empty"]))
        last = min(SPAN_MINUTES, first + (0 if length == "empty" else draw(st.integers(30, 1440))))
        periods.append(Period(origin + first * MINUTE, origin + last * MINUTE))
    question = Question(
        groups=tuple(groups),
        periods=tuple(periods),
        duration=draw(st.integers(1, 120)) * MINUTE,
        interval=draw(st.sampled_from([5, 10, 15, 20, 30, 60, 120])) * MINUTE,
        buffer_before=draw(st.integers(0, 45)) * MINUTE,
        buffer_after=draw(st.integers(0, 45)) * MINUTE,
        working_hours=draw(st.booleans()),
        zone=draw(st.sampled_from(ZONES)),
        policy=BlockingPolicy(tentative=draw(st.booleans()), working_elsewhere=draw(st.booleans())),
    )
    return Case(question, calendars, origin)


class Grid:
    """The question answered minute by minute, by brute force, from the definitions."""

    def __init__(self, case: Case) -> None:
        self.case = case
        q = case.question
        self.before = int(q.buffer_before / MINUTE)
        self.after = int(q.buffer_after / MINUTE)
        self.duration = int(q.duration / MINUTE)
        self.pad = 120
        self.size = SPAN_MINUTES + 2 * self.pad  # grid minute i is origin + (i - pad) minutes
        self.in_period = [any(p.start <= self.at(i) < p.end for p in q.periods) for i in range(self.size)]
        self.busy = {staff: self._busy(calendar) for staff, calendar in case.calendars.items()}
        self.working = {staff: self._working(calendar) for staff, calendar in case.calendars.items()}

    def at(self, i: int) -> datetime:
        return self.case.origin + (i - self.pad) * MINUTE

    def _busy(self, calendar: StaffCalendar) -> list[int]:
        marks = [0] * self.size
        for period in calendar.busy:
            if self.case.question.policy.blocks(period.show_as):
                for i in range(self.size):
                    if period.start <= self.at(i) < period.end:
                        marks[i] = 1
        return [0, *accumulate(marks)]  # prefix sums

    def _working(self, calendar: StaffCalendar) -> list[bool]:
        hours = calendar.working_hours
        if not self.case.question.working_hours or hours is None:
            return [True] * self.size
        return [self._works(hours, self.at(i)) for i in range(self.size)]

    @staticmethod
    def _works(hours: WorkingHours, instant: datetime) -> bool:
        today = instant.astimezone(hours.zone).date()
        for day in (today - timedelta(days=1), today):
            if day.weekday() not in hours.days:
                continue
            opens = datetime.combine(day, hours.start, tzinfo=hours.zone)
            closes_on = day + timedelta(days=1) if hours.end <= hours.start else day
            closes = datetime.combine(closes_on, hours.end, tzinfo=hours.zone)
            if opens <= instant < closes:
                return True
        return False

    def busy_within(self, staff: str, first: int, last: int) -> bool:
        sums = self.busy[staff]
        first, last = max(first, 0), min(last, self.size)
        return sums[last] > sums[first]

    def free_for_slot(self, staff: str, i: int) -> bool:
        window = range(i, i + self.duration)
        return not self.busy_within(staff, i - self.before, i + self.duration + self.after) and all(
            self.working[staff][j] for j in window
        )

    def free_at(self, staff: str, i: int) -> bool:
        return not self.busy_within(staff, i - self.before, i + self.after + 1) and self.working[staff][i]

    def aligned(self, i: int) -> bool:
        wall = self.at(i).astimezone(self.case.question.zone)
        return (wall.hour * 60 + wall.minute) % int(self.case.question.interval / MINUTE) == 0

    def slots(self) -> list[tuple[datetime, tuple[tuple[str, ...], ...]]]:
        found = []
        for i in range(self.pad, self.pad + SPAN_MINUTES - self.duration + 1):
            if not all(self.in_period[i : i + self.duration]) or not self.aligned(i):
                continue
            free = tuple(
                tuple(s for s in group.staff_ids if self.free_for_slot(s, i))
                for group in self.case.question.groups
            )
            if all(
                len(named) >= group.needed
                for named, group in zip(free, self.case.question.groups, strict=True)
            ):
                found.append((self.at(i), free))
        return found

    def free_periods(self) -> list[tuple[datetime, datetime]]:
        groups = self.case.question.groups
        free = [
            self.in_period[i]
            and all(sum(self.free_at(s, i) for s in group.staff_ids) >= group.needed for group in groups)
            for i in range(self.size)
        ]
        runs, start = [], None
        for i, is_free in enumerate([*free, False]):
            if is_free and start is None:
                start = i
            elif not is_free and start is not None:
                if i - start >= self.duration:
                    runs.append((self.at(start), self.at(i)))
                start = None
        return runs


def widened_overlap(slot: Slot, period: BusyPeriod, question: Question) -> bool:
    return (
        period.end > period.start
        and period.start - question.buffer_after < slot.end
        and slot.start < period.end + question.buffer_before
    )


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(cases())
def test_slots_are_exactly_the_aligned_starts_whose_window_is_free(case: Case) -> None:
    question, calendars = case.question, case.calendars
    slots = find_slots(question, calendars)
    grid = Grid(case)
    event("slots offered" if slots else "no slot")
    event(
        "some staff of a group not free"
        if any(len(n) < len(g.staff_ids) for s in slots for n, g in zip(s.free, question.groups, strict=True))
        else "every staff member free"
    )

    for slot in slots:
        assert slot.end - slot.start == question.duration
        assert any(p.start <= slot.start and slot.end <= p.end for p in _merged(question.periods))
        for group, named in zip(question.groups, slot.free, strict=True):
            assert len(named) >= group.needed
            assert set(named) <= set(group.staff_ids)
            for staff in named:  # the staff it names are free, buffers included, and at work when asked
                blocking = [p for p in calendars[staff].busy if question.policy.blocks(p.show_as)]
                assert not any(widened_overlap(slot, p, question) for p in blocking)
                hours = calendars[staff].working_hours
                if question.working_hours and hours is not None:
                    assert any(
                        o.start <= slot.start and slot.end <= o.end
                        for o in hours.open_in(slot.start, slot.end)
                    )
    assert [(s.start, s.free) for s in slots] == grid.slots()


@PROPERTY
@given(cases())
def test_free_periods_are_the_union_of_free_time(case: Case) -> None:
    periods = free_periods(case.question, case.calendars)
    assert [(p.start, p.end) for p in periods] == Grid(case).free_periods()
    for earlier, later in pairwise(periods):
        assert earlier.end < later.start  # merged: neither overlapping nor touching


@PROPERTY
@given(cases(Ranking.LEAST_BOOKED))
def test_round_robin_orders_free_staff_by_booked_time(case: Case) -> None:
    question = case.question
    span = Period(min(p.start for p in question.periods), max(p.end for p in question.periods))
    booked = {s: booked_seconds(c.busy, span, question.policy) for s, c in case.calendars.items()}
    grid = Grid(case)
    slots = find_slots(question, case.calendars)
    assert [s.start for s in slots] == [start for start, _ in grid.slots()]
    for slot in slots:
        for group, named in zip(question.groups, slot.free, strict=True):
            keys = [(booked[s], group.staff_ids.index(s)) for s in named]
            assert keys == sorted(keys)


@PROPERTY
@given(cases(), st.integers(1, 5))
def test_max_results_is_a_prefix_of_the_whole_answer(case: Case, limit: int) -> None:
    whole = find_slots(case.question, case.calendars)
    limited = Question(**{**_fields(case.question), "max_results": limit})
    assert find_slots(limited, case.calendars) == whole[:limit]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(DST_DAYS), working_hours(optional=False))
def test_open_hours_match_the_minute_by_minute_definition(day: datetime, hours: WorkingHours) -> None:
    start, end = day - timedelta(days=1), day + timedelta(days=2)
    opened = hours.open_in(start, end)
    minutes = int((end - start) / MINUTE)
    for i in range(0, minutes, 10):
        instant = start + i * MINUTE
        assert Grid._works(hours, instant) == any(o.start <= instant < o.end for o in opened)


def _merged(periods: tuple[Period, ...]) -> list[Period]:
    out: list[Period] = []
    for p in sorted(periods, key=lambda p: p.start):
        if out and p.start <= out[-1].end:
            out[-1] = Period(out[-1].start, max(out[-1].end, p.end))
        else:
            out.append(p)
    return out


def _fields(question: Question) -> dict[str, object]:
    return {name: getattr(question, name) for name in Question.__dataclass_fields__}
