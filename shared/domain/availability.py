"""Availability: busy periods and working hours in, bookable slots or free periods out. Pure, no I/O.

The caller (the synced busy index, or Graph `getSchedule` for staff not synced) gives each staff member's
`StaffCalendar`: `BusyPeriod`s and, when known, `WorkingHours`. Staff it could not read are its business
(it leaves them out and reports them); every staff id a `Question` names must have a calendar.

Decisions:
- **Instants.** Everything is an aware datetime; answers are in UTC. Internally the engine works in whole
  seconds since the epoch: a busy period is widened to whole seconds, a question period narrowed, so
  rounding never offers time that is not free.
- **All-day events** become instants here, in `BusyPeriod.all_day`, from the staff member's own zone (the
  zone of their working hours, else their mailbox zone): an all-day event blocks from local midnight of its
  first day to local midnight after its last (Graph's end date is exclusive), whatever the question's zone.
  A midnight that does not exist that day (a zone whose clocks jump at 00:00) is the instant the day begins.
- **show_as.** `BlockingPolicy`: free never blocks; busy, oof and unknown (Graph's word when it cannot
  tell) always do; tentative blocks by default (a tenant setting may turn it off); workingElsewhere does
  not block by default (the staff member works, elsewhere, as Outlook's scheduling assistant and peers
  read it), and may be turned on. A zero-length busy period blocks nothing, buffers included.
- **Buffers** protect existing meetings: a slot needs its staff free from `buffer_before` before its start
  to `buffer_after` after its end, i.e. each blocking period is widened by `buffer_after` before it and
  `buffer_before` after it. Buffers do not have to fit inside working hours or the question's periods:
  the slot itself does.
- **Working hours** are wall-clock hours in their zone on each listed weekday, so they keep their local
  times across DST changes. An end before the start crosses midnight: the hours belong to the day they
  start on (Monday 22:00-06:00 is Monday night). An end equal to the start is refused (it is ambiguous).
  A wall time that does not exist that day (clocks jump forward) is read with the offset before the jump,
  so it lands as far after the gap as it named into it; a repeated one (clocks go back) is its first
  occurrence. Staff without working hours are not limited by them when `working_hours` is asked.
- **Alignment.** A slot starts at an instant whose wall-clock time in the question's zone is a multiple of
  `interval` counted from local midnight: for an interval that divides 60 that is "from the hour" (as
  Cronofy's `start_interval`), for 120 it is every even hour. When clocks go back the repeated hour offers
  its aligned times twice (they are different instants); the hour skipped when clocks jump offers none.
- **Periods** (the question's) are merged first when they overlap or touch; a slot lies inside one merged
  period, end included.
- **Groups.** Every group must be satisfied: `required="all"`, all of its staff free for the whole slot
  (buffers included); `required=N`, at least N of them. Each slot names, per group in the question's order,
  the staff free for it: in the group's listed order, or with `Ranking.LEAST_BOOKED` (round robin) the
  least booked first (so the first named is the one to book): booked = blocking busy time, overlaps
  counted once, within the question's span (first period start to last period end); ties keep the listed
  order.
- **Free periods** (`free_periods`) are the union of free time: the instants inside the periods (and each
  staff member's working hours when asked) at which every group has enough staff free, with the buffers'
  widening as for slots, kept when at least `duration` long. For an N-of group, the N free may change
  within one period; `find_slots` names them per slot.
- **max_results** keeps the earliest slots (or periods).

Sort and sweep only: the cost grows with the number of busy periods and of slots returned, never with
the span's minutes.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from functools import lru_cache
from typing import Final, Literal
from zoneinfo import ZoneInfo

DAY: Final = 86_400  # seconds
WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ZONE_SAMPLE: Final = 6 * 3600  # no zone changes its offset twice within 6 hours

Interval = tuple[int, int]  # [start, end) in epoch seconds


class InvalidQuestion(ValueError):
    """A question or an input the engine cannot answer; `field` names the attribute, `reason` why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ShowAs(StrEnum):
    """Outlook's `showAs` (and `getSchedule`'s status), spelled as Graph spells it."""

    FREE = "free"
    TENTATIVE = "tentative"
    BUSY = "busy"
    OOF = "oof"
    WORKING_ELSEWHERE = "workingElsewhere"
    UNKNOWN = "unknown"

    @classmethod
    def from_graph(cls, text: str | None) -> ShowAs:
        """Graph's word, any case; anything else (or nothing) is `UNKNOWN`, which blocks."""
        return _SHOW_AS.get(text.lower(), cls.UNKNOWN) if text is not None else cls.UNKNOWN


_SHOW_AS: Final = {member.value.lower(): member for member in ShowAs}


@dataclass(frozen=True, slots=True)
class BlockingPolicy:
    """Which `show_as` values make a staff member unavailable (free never; busy, oof and unknown always)."""

    tentative: bool = True
    working_elsewhere: bool = False

    def blocks(self, show_as: ShowAs) -> bool:
        return show_as in self.blocking

    @property
    def blocking(self) -> frozenset[ShowAs]:
        return _blocking_set(self.tentative, self.working_elsewhere)


@lru_cache(maxsize=4)
def _blocking_set(tentative: bool, working_elsewhere: bool) -> frozenset[ShowAs]:
    optional = {ShowAs.TENTATIVE: tentative, ShowAs.WORKING_ELSEWHERE: working_elsewhere}
    return frozenset(
        show_as for show_as in ShowAs if show_as is not ShowAs.FREE and optional.get(show_as, True)
    )


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidQuestion(name, "must be a time-zone aware datetime")


@dataclass(frozen=True, slots=True)
class Period:
    """A span of time [start, end), aware datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _aware(self.start, "start")
        _aware(self.end, "end")
        if self.end < self.start:
            raise InvalidQuestion("end", "must not be before start")


@dataclass(frozen=True, slots=True)
class BusyPeriod:
    """Time a staff member's calendar shows as `show_as`, [start, end), aware (UTC from both sources)."""

    start: datetime
    end: datetime
    show_as: ShowAs = ShowAs.BUSY
    # [start, end) widened to whole epoch seconds, worked out once when the period is made
    seconds: Interval = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # kept lean: a question reads thousands of these
        if self.start.utcoffset() is None or self.end.utcoffset() is None:
            _aware(self.start, "start")
            _aware(self.end, "end")
        first, last = self.start.timestamp(), self.end.timestamp()
        if last < first:
            raise InvalidQuestion("end", "must not be before start")
        object.__setattr__(self, "seconds", (math.floor(first), math.ceil(last)))

    @classmethod
    def all_day(cls, first: date, end: date, zone: ZoneInfo, show_as: ShowAs = ShowAs.BUSY) -> BusyPeriod:
        """An all-day event from `first` to `end` (exclusive, as Graph has it) in the staff member's zone."""
        return cls(_local_midnight(first, zone), _local_midnight(end, zone), show_as)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """Wall-clock hours `start`-`end` in `zone` on `days` (0 = Monday, as `date.weekday()`)."""

    days: frozenset[int]
    start: time
    end: time
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if not self.days <= frozenset(range(7)):
            raise InvalidQuestion("days", "weekdays are 0 (Monday) to 6 (Sunday)")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise InvalidQuestion("start", "working hours are wall-clock times, without a zone")
        if self.start == self.end:
            raise InvalidQuestion("end", "must differ from start (an end before the start crosses midnight)")

    @classmethod
    def named(cls, days: Sequence[str], start: time, end: time, zone: ZoneInfo) -> WorkingHours:
        """From Graph's `daysOfWeek` names ("monday", ...)."""
        try:
            numbers = frozenset(WEEKDAYS.index(day.lower()) for day in days)
        except ValueError:
            raise InvalidQuestion("days", f"weekdays are named {', '.join(WEEKDAYS)}") from None
        return cls(numbers, start, end, zone)

    def open_in(self, start: datetime, end: datetime) -> list[Period]:
        """The working time within [start, end), as UTC periods in order."""
        _aware(start, "start")
        _aware(end, "end")
        return [Period(_instant(a), _instant(b)) for a, b in _working_time(self, _ceil(start), _floor(end))]


@lru_cache(maxsize=1024)  # staff share hours and zones, and a booking page asks the same span again
def _working_time(hours: WorkingHours, lo: int, hi: int) -> tuple[Interval, ...]:
    first = datetime.fromtimestamp(lo, hours.zone).date() - timedelta(days=1)
    last = datetime.fromtimestamp(hi, hours.zone).date()
    overnight = hours.end <= hours.start
    shifts: list[Interval] = []
    day = first
    while day <= last:
        if day.weekday() in hours.days:
            begin = _floor(datetime.combine(day, hours.start, tzinfo=hours.zone))
            close_day = day + timedelta(days=1) if overnight else day
            close = _floor(datetime.combine(close_day, hours.end, tzinfo=hours.zone))
            a, b = max(begin, lo), min(close, hi)
            if a < b:
                shifts.append((a, b))
        day += timedelta(days=1)
    return tuple(_merge(shifts))


@dataclass(frozen=True, slots=True)
class StaffCalendar:
    """What the engine knows of one staff member: busy periods, and working hours when known."""

    busy: Sequence[BusyPeriod]
    working_hours: WorkingHours | None = None


class Ranking(StrEnum):
    """How a slot orders a group's free staff."""

    LISTED = "listed"
    LEAST_BOOKED = "least_booked"  # round robin: the least booked first


@dataclass(frozen=True, slots=True)
class Group:
    """Participants: all of `staff_ids`, or at least `required` of them, free for a slot."""

    staff_ids: tuple[str, ...]
    required: Literal["all"] | int = "all"
    ranking: Ranking = Ranking.LISTED

    def __post_init__(self) -> None:
        if not self.staff_ids:
            raise InvalidQuestion("staff_ids", "a group needs at least one staff member")
        if len(set(self.staff_ids)) != len(self.staff_ids):
            raise InvalidQuestion("staff_ids", "a staff member is named twice in one group")
        if self.required != "all" and not (
            isinstance(self.required, int) and 1 <= self.required <= len(self.staff_ids)
        ):
            raise InvalidQuestion("required", f'"all" or a number from 1 to {len(self.staff_ids)}')

    @property
    def needed(self) -> int:
        return len(self.staff_ids) if self.required == "all" else int(self.required)


def _whole_seconds(value: timedelta, name: str, *, positive: bool) -> int:
    if value % timedelta(seconds=1):
        raise InvalidQuestion(name, "must be whole seconds")
    seconds = int(value.total_seconds())
    if seconds < (1 if positive else 0):
        raise InvalidQuestion(name, "must be positive" if positive else "must not be negative")
    return seconds


@dataclass(frozen=True, slots=True)
class Question:
    """When can these groups meet for `duration`, within `periods`?"""

    groups: tuple[Group, ...]
    periods: tuple[Period, ...]
    duration: timedelta
    interval: timedelta = timedelta(minutes=15)
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    working_hours: bool = False
    max_results: int | None = None
    zone: tzinfo = UTC  # where slot starts are aligned (a ZoneInfo, or UTC)
    policy: BlockingPolicy = field(default=BlockingPolicy())

    def __post_init__(self) -> None:
        if not self.groups:
            raise InvalidQuestion("groups", "at least one group of participants is needed")
        if not self.periods:
            raise InvalidQuestion("periods", "at least one period is needed")
        _whole_seconds(self.duration, "duration", positive=True)
        _whole_seconds(self.interval, "interval", positive=True)
        _whole_seconds(self.buffer_before, "buffer_before", positive=False)
        _whole_seconds(self.buffer_after, "buffer_after", positive=False)
        if self.max_results is not None and self.max_results < 1:
            raise InvalidQuestion("max_results", "must be at least 1")

    @property
    def staff_ids(self) -> list[str]:
        """Every staff member the question names, once each, in order of appearance."""
        return list(dict.fromkeys(staff for group in self.groups for staff in group.staff_ids))


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable slot; `free[i]` names the staff of the question's group i free for it."""

    start: datetime
    end: datetime
    free: tuple[tuple[str, ...], ...]


def find_slots(question: Question, calendars: Mapping[str, StaffCalendar]) -> list[Slot]:
    """The aligned slots, earliest first, at which every group has enough staff free."""
    plan = _Plan(question, calendars)
    limit = question.max_results if question.max_results is not None else math.inf
    trackers = [_FreeStaff(_ranked(group, plan), plan.ranges) for group in question.groups]
    slots: list[Slot] = []
    for start in plan.slot_starts():
        if len(slots) >= limit:
            break
        free = tuple(tracker.at(start) for tracker in trackers)
        slots.append(Slot(_instant(start), _instant(start + plan.duration), free))
    return slots


class _FreeStaff:
    """A group's free staff at ever later slot starts: a sweep over their start ranges."""

    def __init__(self, order: list[str], ranges: Mapping[str, list[Interval]]) -> None:
        self.order = order
        edges = [(a, 1, rank) for rank, staff in enumerate(order) for a, _ in ranges[staff]]
        edges += [(b, -1, rank) for rank, staff in enumerate(order) for _, b in ranges[staff]]
        edges.sort()
        self.edges = edges
        self.next = 0
        self.free = [False] * len(order)
        self.named: tuple[str, ...] = ()

    def at(self, start: int) -> tuple[str, ...]:
        """The free staff, in order, for a slot at `start` (no earlier than the last one asked)."""
        edges, changed = self.edges, False
        while self.next < len(edges) and edges[self.next][0] <= start:
            _, delta, rank = edges[self.next]
            self.free[rank] = delta > 0
            self.next += 1
            changed = True
        if changed:
            self.named = tuple(staff for staff, free in zip(self.order, self.free, strict=True) if free)
        return self.named


def free_periods(question: Question, calendars: Mapping[str, StaffCalendar]) -> list[Period]:
    """The union of free time at least `duration` long, earliest first."""
    plan = _Plan(question, calendars)
    periods = [Period(_instant(a), _instant(b)) for a, b in plan.free_time() if b - a >= plan.duration]
    return periods[: question.max_results]


def booked_seconds(busy: Sequence[BusyPeriod], span: Period, policy: BlockingPolicy) -> int:
    """How long `busy` blocks within `span` (overlaps once): what round robin ranks staff by."""
    return _booked(_merge(_blocking(busy, policy)), _ceil(span.start), _floor(span.end))


def _booked(blocked: list[Interval], lo: int, hi: int) -> int:
    return sum(min(b, hi) - max(a, lo) for a, b in blocked if a < hi and b > lo)


def _ranked(group: Group, plan: _Plan) -> list[str]:
    if group.ranking is Ranking.LISTED:
        return list(group.staff_ids)
    return sorted(group.staff_ids, key=lambda staff: plan.booked[staff])  # stable: ties keep the listed order


class _Plan:
    """One question's arithmetic, in epoch seconds."""

    def __init__(self, question: Question, calendars: Mapping[str, StaffCalendar]) -> None:
        missing = [staff for staff in question.staff_ids if staff not in calendars]
        if missing:
            raise InvalidQuestion("groups", f"no calendar for {', '.join(missing)}")
        self.question = question
        self.calendars = calendars
        self.duration = _whole_seconds(question.duration, "duration", positive=True)
        self.step = _whole_seconds(question.interval, "interval", positive=True)
        before = _whole_seconds(question.buffer_before, "buffer_before", positive=False)
        after = _whole_seconds(question.buffer_after, "buffer_after", positive=False)
        self.periods = _merge([(_ceil(p.start), _floor(p.end)) for p in question.periods])
        if self.periods:
            self.lo, self.hi = self.periods[0][0], self.periods[-1][1]
        else:  # only empty periods: nothing to offer
            self.lo = self.hi = _ceil(question.periods[0].start)
        self.free: dict[str, list[Interval]] = {}
        self.booked: dict[str, int] = {}  # blocking seconds within the span, for round robin
        span = (min(_ceil(p.start) for p in question.periods), max(_floor(p.end) for p in question.periods))
        self.ranges: dict[str, list[Interval]] = {}  # per staff: the starts of slots they are free for
        for staff in question.staff_ids:
            calendar = calendars[staff]
            blocked = _merge(_blocking(calendar.busy, question.policy))
            self.booked[staff] = _booked(blocked, *span)
            if before or after:  # widening merged periods and merging again is widening each
                blocked = _merge([(a - after, b + before) for a, b in blocked])
            free = _complement(blocked, self.lo, self.hi)
            hours = calendar.working_hours
            if question.working_hours and hours is not None:
                free = _intersect(free, _working_time(hours, self.lo, self.hi))
            self.free[staff] = free
            ranges = [(a, b - self.duration + 1) for a, b in free if b - a >= self.duration]
            self.ranges[staff] = ranges

    def free_time(self) -> list[Interval]:
        covered = self.periods
        for group in self.question.groups:
            lists = [self.free[staff] for staff in group.staff_ids]
            covered = _intersect(covered, _covered_by(lists, group.needed))
        return covered

    def slot_starts(self) -> Iterator[int]:
        ranges = [(a, b - self.duration + 1) for a, b in self.periods if b - a >= self.duration]
        for group in self.question.groups:
            lists = [self.ranges[staff] for staff in group.staff_ids]
            ranges = _intersect(ranges, _covered_by(lists, group.needed))
        if ranges:
            yield from _aligned(ranges, self.step, self.question.zone)


def _blocking(busy: Sequence[BusyPeriod], policy: BlockingPolicy) -> list[Interval]:
    """The blocking periods, in seconds; zero-length ones left out."""
    blocking = policy.blocking
    return [period.seconds for period in busy if period.show_as in blocking and period.end > period.start]


def _merge(intervals: list[Interval]) -> list[Interval]:
    """Sorted, with overlapping and touching intervals joined; empty ones dropped."""
    merged: list[Interval] = []
    for a, b in sorted(intervals):
        if a >= b:
            continue
        if merged and a <= merged[-1][1]:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def _complement(merged: list[Interval], lo: int, hi: int) -> list[Interval]:
    gaps: list[Interval] = []
    cursor = lo
    for a, b in merged:
        if b <= cursor:
            continue
        if a >= hi:
            break
        if a > cursor:
            gaps.append((cursor, a))
        cursor = b
    if cursor < hi:
        gaps.append((cursor, hi))
    return gaps


def _intersect(left: Sequence[Interval], right: Sequence[Interval]) -> list[Interval]:
    """Both sorted and disjoint; the result is too."""
    out: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        a = max(left[i][0], right[j][0])
        b = min(left[i][1], right[j][1])
        if a < b:
            out.append((a, b))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return out


def _covered_by(lists: list[list[Interval]], needed: int) -> list[Interval]:
    """Where at least `needed` of the (each sorted, disjoint) lists cover, merged."""
    if needed == 1 and len(lists) == 1:
        return lists[0]
    edges = sorted(
        [(a, 1) for intervals in lists for a, _ in intervals]
        + [(b, -1) for intervals in lists for _, b in intervals]
    )
    out: list[Interval] = []
    count, opened = 0, 0
    index = 0
    while index < len(edges):
        at = edges[index][0]
        before = count
        while index < len(edges) and edges[index][0] == at:
            count += edges[index][1]
            index += 1
        if before < needed <= count:
            opened = at
        elif count < needed <= before:
            out.append((opened, at))
    return out


def _aligned(ranges: list[Interval], step: int, zone: tzinfo) -> Iterator[int]:
    """Each instant in `ranges` whose wall-clock time in `zone` is a multiple of `step` from midnight."""
    changes, offsets = _offsets(zone, ranges[0][0] // DAY - 1, ranges[-1][1] // DAY + 1)
    for lo, hi in ranges:
        segment = bisect_right(changes, lo) - 1
        cursor = lo
        while cursor < hi:
            offset = offsets[segment]
            stop = min(hi, changes[segment + 1]) if segment + 1 < len(changes) else hi
            start = _next_aligned(cursor + offset, step) - offset
            while start < stop:
                yield start
                start = _next_aligned(start + offset + 1, step) - offset
            cursor = stop
            segment += 1


def _next_aligned(local: int, step: int) -> int:
    """The first local time at or after `local` that is a multiple of `step` from its midnight."""
    midnight = local - local % DAY
    since = -(-(local - midnight) // step) * step
    return midnight + since if since < DAY else midnight + DAY


@lru_cache(maxsize=512)
def _offsets(zone: tzinfo, first_day: int, last_day: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The instants from which `zone`'s UTC offset holds (the first is `first_day`), and the offsets."""
    t = first_day * DAY
    changes, offsets = [t], [_offset(zone, t)]
    end = (last_day + 1) * DAY
    while t < end:
        later = t + _ZONE_SAMPLE
        if _offset(zone, later) != offsets[-1]:
            low, high = t, later  # the offset changes in (low, high]
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(zone, middle) == offsets[-1]:
                    low = middle
                else:
                    high = middle
            changes.append(high)
            offsets.append(_offset(zone, high))
        t = later
    return tuple(changes), tuple(offsets)


def _offset(zone: tzinfo, at: int) -> int:
    offset = datetime.fromtimestamp(at, zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _floor(value: datetime) -> int:
    return math.floor(value.timestamp())


def _ceil(value: datetime) -> int:
    return math.ceil(value.timestamp())


def _instant(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
