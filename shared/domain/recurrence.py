"""The host's RRULEs as Outlook's `patternedRecurrence`, back again, and their expansion.

The host sends an RFC 5545 RRULE value, the series' first start and an IANA zone; Graph takes a
`patternedRecurrence` whose `recurrenceTimeZone` is a Windows name. python-dateutil parses (what it
rejects is rejected here too) and expands. `to_graph` accepts only rules Outlook expands to the
same occurrences, and otherwise raises `RecurrenceError` naming the part at fault.

Both sides expand in the series' zone at the start's wall-clock time (09:00 stays 09:00 across
DST), and every accepted rule has at most one occurrence per local day, so an occurrence is known
by its local date: Graph addresses occurrences that way, and exdates and overrides are matched
that way (`occurrence_date`, `is_occurrence`).

UNTIL is a date (inclusive, in the series' zone) or a UTC date-time. For a timed series a date
UNTIL is read as the end of that local day; for an all-day series a UTC UNTIL as its local date.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from shared.domain.timezones import graph_zone, iana_zone, require_zone, series_zone

MAX_INTERVAL = 999  # Graph's limits
MAX_COUNT = 999
# How far a series' zone is checked: its occurrences up to ten years after the first (an open-ended
# series' too). tzdata's rules further out are projections of today's, and so are Windows'.
HORIZON = timedelta(days=3653)

_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # indexed by Python weekday, Monday = 0
_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_INDEX_NAMES = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
_LONGEST_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_SUB_DAILY = ("HOURLY", "MINUTELY", "SECONDLY")
_UNSUPPORTED = {
    "BYHOUR": "Outlook repeats a series once a day at most, at its start time (BYHOUR)",
    "BYMINUTE": "Outlook repeats a series once a day at most, at its start time (BYMINUTE)",
    "BYSECOND": "Outlook repeats a series once a day at most, at its start time (BYSECOND)",
    "BYYEARDAY": "Outlook has no day-of-the-year pattern (BYYEARDAY); use BYMONTH with BYMONTHDAY",
    "BYWEEKNO": "Outlook has no week-number pattern (BYWEEKNO)",
    "BYEASTER": "Outlook has no equivalent of dateutil's BYEASTER",
}
_DAY = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_UNTIL_DATE = re.compile(r"\d{8}")
_UNTIL_UTC = re.compile(r"\d{8}T\d{6}Z")
_END_OF_DAY = time(23, 59, 59)
_PROBE = datetime.combine(date(2000, 1, 1), time())  # dateutil's syntax check, start-independent
_DATEUTIL_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)


class RecurrenceError(ValueError):
    """A rule Outlook cannot hold as given: `part` is the RRULE part at fault, `reason` says why."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(f"{part}: {reason}")
        self.part = part
        self.reason = reason


class _Expansion(Protocol):  # the part of dateutil's rrule used here
    def __iter__(self) -> Iterator[datetime]: ...
    def __contains__(self, item: datetime) -> bool: ...
    def after(self, dt: datetime, inc: bool = False) -> datetime | None: ...


# ------------------------------------------------------------------------------------------ parsing


@dataclass(frozen=True, slots=True)
class _Rule:
    """An RRULE that dateutil accepted, its parts read once."""

    parts: dict[str, str]  # as given (upper case), in order
    freq: str
    interval: int
    count: int | None
    until: date | None  # a date, or an aware datetime (an instant)
    wkst: int  # Python weekday; RFC 5545's default is Monday
    byday: tuple[tuple[int, int], ...]  # (ordinal or 0, Python weekday)
    bymonthday: tuple[int, ...]
    bymonth: tuple[int, ...]
    bysetpos: tuple[int, ...]


def _parse(text: str) -> _Rule:
    value = text.strip()
    if value[:6].upper() == "RRULE:":
        value = value[6:]
    if not value:
        raise RecurrenceError("rrule", "the rule is empty; expected e.g. FREQ=WEEKLY;BYDAY=MO")
    if any(c.isspace() or c == ":" for c in value):
        raise RecurrenceError(
            "rrule",
            "expected one RRULE value such as FREQ=WEEKLY;BYDAY=MO, without DTSTART, EXDATE or line breaks",
        )
    names = [pair.partition("=")[0].upper() for pair in value.split(";")]
    if "FREQ" not in names:
        raise RecurrenceError("FREQ", "FREQ is required (DAILY, WEEKLY, MONTHLY or YEARLY)")
    if "COUNT" in names and "UNTIL" in names:
        raise RecurrenceError("UNTIL", "COUNT and UNTIL cannot both be given (RFC 5545); keep one")
    try:
        rrulestr(value, dtstart=_PROBE, ignoretz=True)
    except _DATEUTIL_ERRORS as exc:
        raise RecurrenceError("rrule", f"not a valid RRULE ({exc})") from None
    parts: dict[str, str] = {}
    for pair in value.split(";"):
        name, _, raw = pair.partition("=")
        if name.upper() in parts:
            raise RecurrenceError(name.upper(), f"{name.upper()} is given twice")
        parts[name.upper()] = raw.upper()
    return _Rule(
        parts=parts,
        freq=parts["FREQ"],
        interval=_positive(parts, "INTERVAL") or 1,
        count=_positive(parts, "COUNT"),
        until=_until(parts["UNTIL"]) if "UNTIL" in parts else None,
        wkst=_CODES.index(parts.get("WKST", "MO")),
        byday=_byday(parts.get("BYDAY")),
        bymonthday=_ints(parts, "BYMONTHDAY", 31, negative=True),
        bymonth=_ints(parts, "BYMONTH", 12),
        bysetpos=_ints(parts, "BYSETPOS", 366, negative=True),
    )


def _positive(parts: dict[str, str], name: str) -> int | None:
    if name not in parts:
        return None
    number = int(parts[name])
    if number < 1:
        raise RecurrenceError(name, f"{name} must be 1 or more, not {number}")
    return number


def _ints(parts: dict[str, str], name: str, limit: int, *, negative: bool = False) -> tuple[int, ...]:
    if name not in parts:
        return ()
    numbers = tuple(sorted({int(x) for x in parts[name].split(",")}))
    low = -limit if negative else 1
    for number in numbers:
        if number == 0 or not low <= number <= limit:
            span = f"1 to {limit}" + (f" or -1 to -{limit}" if negative else "")
            raise RecurrenceError(name, f"{name} values run from {span}, not {number}")
    return numbers


def _byday(raw: str | None) -> tuple[tuple[int, int], ...]:
    if raw is None:
        return ()
    days: dict[tuple[int, int], None] = {}
    for token in raw.split(","):
        match = _DAY.fullmatch(token)
        if match is None:
            raise RecurrenceError("BYDAY", f"write weekdays the RFC 5545 way (TU, 2TU, -1FR), not {token}")
        ordinal = int(match[1] or 0)
        if not -53 <= ordinal <= 53:
            raise RecurrenceError("BYDAY", f"an ordinal runs from 1 to 53 or -1 to -53, not {ordinal}")
        days[ordinal, _CODES.index(match[2])] = None
    return tuple(days)


def _until(raw: str) -> date:
    if _UNTIL_DATE.fullmatch(raw):
        return date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
    if _UNTIL_UTC.fullmatch(raw):
        return datetime.strptime(raw, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    raise RecurrenceError(
        "UNTIL", f"expected a date (20250301) or a UTC date-time (20250301T080000Z), not {raw}"
    )


# ------------------------------------------------------------------------------------------- series


@dataclass(frozen=True, slots=True)
class _Series:
    """Where a rule is anchored: its zone, first local date and wall-clock time (None: all-day)."""

    zone: ZoneInfo
    first: date
    wall: time | None

    @classmethod
    def of(cls, start: datetime | date, zone: str) -> _Series:
        tz = require_zone(zone)
        if not isinstance(start, datetime):
            return cls(tz, start, None)
        if start.utcoffset() is None:
            raise RecurrenceError(
                "DTSTART", "the start must be timezone-aware (or a date for an all-day series)"
            )
        local = start.astimezone(UTC).astimezone(tz).replace(microsecond=0)  # via UTC: a gap time moves on
        return cls(tz, local.date(), local.time())

    def at(self, day: date) -> datetime:
        """The rule's start value for `day`: aware in the zone, or naive midnight when all-day."""
        if self.wall is None:
            return datetime.combine(day, time())
        return datetime.combine(day, self.wall, tzinfo=self.zone)

    def last_day(self, until: date) -> date:
        """The last local date an occurrence may fall on (Graph's inclusive `endDate`)."""
        if not isinstance(until, datetime):
            return until
        day = until.astimezone(self.zone).date()
        if self.wall is not None and self.at(day) > until:
            return day - timedelta(days=1)
        return day

    def until_value(self, until: date) -> str:
        """UNTIL in the form dateutil takes with this start: UTC when timed, a date when all-day."""
        if self.wall is None:
            return self.last_day(until).strftime("%Y%m%d")
        if not isinstance(until, datetime):
            until = datetime.combine(until, _END_OF_DAY, tzinfo=self.zone)
        return until.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    def expansion(self, rule: _Rule) -> _Expansion:
        parts = dict(rule.parts)
        parts["WKST"] = _CODES[rule.wkst]
        if rule.until is not None:
            parts["UNTIL"] = self.until_value(rule.until)
        expansion: _Expansion = rrulestr(
            ";".join(f"{k}={v}" for k, v in parts.items()), dtstart=self.at(self.first)
        )
        return expansion


# ---------------------------------------------------------------------------------------- public API


def to_graph(
    rrule: str, start: datetime | date, zone: str, end: datetime | date | None = None
) -> dict[str, Any]:
    """Graph's `patternedRecurrence` for the host's RRULE, first start (a date when all-day) and zone.

    `recurrenceTimeZone` is the Windows zone the series is written in: one with `zone`'s UTC offsets from
    the first occurrence to the end of the last (each `end - start` long) within `HORIZON`, so Outlook's
    occurrences fall at the host's instants. An all-day series, which keeps its dates in any zone, is
    written in "UTC" when no Windows zone matches.

    Raises `RecurrenceError` for a rule Outlook cannot hold or would expand differently, `NoWindowsZone`
    for a timed series no Windows zone keeps, and `UnknownZone` for a zone that is not an IANA name.
    """
    recurrence = _accepted(rrule, start, zone)[2]
    length = end - start if end is not None else timedelta()
    recurrence["range"]["recurrenceTimeZone"] = _series_zone(rrule, start, zone, length)
    return recurrence


@lru_cache(maxsize=256)  # a series is written once per calendar, with the same answer
def _series_zone(rrule: str, start: datetime | date, zone: str, length: timedelta) -> str:
    rule, series = _parse(rrule), _Series.of(start, zone)
    first = series.at(series.first).replace(tzinfo=series.zone)  # all-day: local midnight
    horizon = _later(first, HORIZON)
    last = horizon
    if rule.count is not None:
        for value in series.expansion(rule):
            if value.replace(tzinfo=series.zone) > horizon:
                break
            last = value.replace(tzinfo=series.zone)
    elif rule.until is not None:
        until = rule.until
        if not isinstance(until, datetime):  # a date: through the end of that local day
            until = datetime.combine(until + timedelta(days=1), time(), tzinfo=series.zone)
        last = min(until, horizon)
    if series.wall is None:
        return graph_zone(zone, first, _later(last, length)) or "UTC"
    return series_zone(zone, first, _later(last, length))


def _later(moment: datetime, delta: timedelta) -> datetime:
    """`moment + delta`, or the end of time where that is past datetime's range (year 9999)."""
    try:
        return moment + delta
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def from_graph(recurrence: dict[str, Any], *, all_day: bool = False) -> str:
    """The RRULE value for a `patternedRecurrence`, so the host can read what Outlook holds.

    `endDate` becomes UNTIL at the end of that day in `recurrenceTimeZone` (UTC), or the date
    itself for an all-day series or an unknown zone. Days 29-31 that Outlook moves to the month's
    last day come out as BYMONTHDAY=28,...,n;BYSETPOS=-1, which `to_graph` takes back.
    """
    pattern, recurrence_range = _section(recurrence, "pattern"), _section(recurrence, "range")
    kind = pattern.get("type")
    if kind not in _FREQ_OF:
        raise RecurrenceError("pattern.type", f"unknown pattern type {kind!r}")
    parts = [f"FREQ={_FREQ_OF[kind]}"]
    interval = _number(pattern, "interval", 1, MAX_INTERVAL, "pattern")
    if interval != 1:
        parts.append(f"INTERVAL={interval}")
    if kind.endswith("Yearly"):
        parts.append(f"BYMONTH={_number(pattern, 'month', 1, 12, 'pattern')}")
    if kind == "weekly":
        parts.append("BYDAY=" + ",".join(_CODES[d] for d in _graph_days(pattern)))
        parts.append(f"WKST={_CODES[_graph_day(pattern.get('firstDayOfWeek', 'sunday'), 'firstDayOfWeek')]}")
    elif kind.startswith("absolute"):
        day = _number(pattern, "dayOfMonth", 1, 31, "pattern")
        clamped = ",".join(str(d) for d in range(28, day + 1))
        parts.append(f"BYMONTHDAY={clamped};BYSETPOS=-1" if day > 28 else f"BYMONTHDAY={day}")
    elif kind.startswith("relative"):
        parts.append(_relative_rrule(_graph_days(pattern), _graph_index(pattern)))
    parts.extend(_range_rrule(recurrence_range, all_day))
    return ";".join(parts)


@dataclass(frozen=True, slots=True)
class OutlookSeries:
    """An Outlook series as RFC 5545: its RRULE, its IANA zone and first start (local, or a date when
    all-day). `exact` only when dateutil expands the rule, from that start in that zone, to the days Outlook
    does (`to_graph` takes it back); otherwise `reason` says why and the host gets the occurrences too."""

    rrule: str | None
    time_zone: str | None
    start: datetime | date
    exact: bool
    reason: str | None = None


def outlook_series(
    recurrence: Mapping[str, Any], start: datetime | date, zone_name: str | None, *, all_day: bool
) -> OutlookSeries:
    """A series master's `patternedRecurrence`, start (its first occurrence's, as Graph gives the master)
    and `originalStartTimeZone`, checked with dateutil."""
    zone = iana_zone(zone_name or "") if zone_name else ("UTC" if isinstance(start, datetime) else None)
    if all_day and zone is None:
        zone = "UTC"  # an all-day series keeps its dates in any zone
    try:
        rrule = from_graph(dict(recurrence), all_day=all_day)
    except RecurrenceError as error:
        return OutlookSeries(None, zone, start, exact=False, reason=f"{error.part}: {error.reason}")
    if zone is None:
        reason = f"Outlook's zone {zone_name!r} has no IANA name"
        return OutlookSeries(rrule, None, start, exact=False, reason=reason)
    local = start.astimezone(require_zone(zone)) if isinstance(start, datetime) else start
    try:
        _accepted(rrule, local, zone)
    except RecurrenceError as error:
        return OutlookSeries(rrule, zone, local, exact=False, reason=f"{error.part}: {error.reason}")
    return OutlookSeries(rrule, zone, local, exact=True)


def next_occurrence(series: OutlookSeries, after: datetime) -> datetime | date | None:
    """The first occurrence of an exact series starting at or after `after` (None: the series has ended)."""
    if series.rrule is None or series.time_zone is None:
        return None
    rule, anchor, _ = _accepted(series.rrule, series.start, series.time_zone)
    expansion = anchor.expansion(rule)
    if anchor.wall is not None:
        probe = after.astimezone(anchor.zone)
    else:
        probe = datetime.combine(after.astimezone(UTC).date(), time())  # all-day: naive local midnights
    value = expansion.after(probe, inc=True)
    if value is None:
        return None
    return value if anchor.wall is not None else value.date()


def expand(
    rrule: str, start: datetime | date, zone: str, window_start: datetime, window_end: datetime
) -> list[datetime | date]:
    """dateutil's occurrences that start in [window_start, window_end), in order.

    Timed series give aware datetimes in `zone` (the start's wall-clock time on each day; a time
    that falls in a DST gap moves on, as in Outlook); all-day series give dates, windowed by their
    local midnight. Rules `to_graph` refuses raise the same `RecurrenceError` here.
    """
    if window_start.utcoffset() is None or window_end.utcoffset() is None:
        raise ValueError("the window must be given as timezone-aware datetimes")
    rule, series, _ = _accepted(rrule, start, zone)
    found: list[datetime | date] = []
    for value in series.expansion(rule):
        instant = (value if series.wall is not None else value.replace(tzinfo=series.zone)).astimezone(UTC)
        if instant >= window_end:
            break
        if instant >= window_start:
            found.append(instant.astimezone(series.zone) if series.wall is not None else value.date())
    return found


def occurrence_date(value: datetime | date, zone: str) -> date:
    """The local date in `zone` of an exdate or override recurrence id (how Graph addresses occurrences)."""
    if not isinstance(value, datetime):
        return value
    if value.utcoffset() is None:
        raise ValueError("an occurrence's date-time must be timezone-aware")
    return value.astimezone(require_zone(zone)).date()


def is_occurrence(rrule: str, start: datetime | date, zone: str, day: date) -> bool:
    """Whether the series has an occurrence on the local date `day` (to validate exdates and overrides)."""
    rule, series, _ = _accepted(rrule, start, zone)
    return series.at(day) in series.expansion(rule)


# ------------------------------------------------------------------------------------ RRULE → Graph


def _accepted(rrule: str, start: datetime | date, zone: str) -> tuple[_Rule, _Series, dict[str, Any]]:
    """The parsed rule, its anchor and Graph's recurrence, once Outlook is known to expand it alike."""
    rule, series = _parse(rrule), _Series.of(start, zone)
    pattern = _pattern(rule, series.first)
    recurrence_range: dict[str, Any] = {"type": "noEnd", "startDate": series.first.isoformat()}
    if rule.count is not None:
        recurrence_range.update(type="numbered", numberOfOccurrences=rule.count)
    elif rule.until is not None:
        last = series.last_day(rule.until)
        if last < series.first:
            raise RecurrenceError("UNTIL", f"UNTIL is before the start ({series.first}): the series is empty")
        recurrence_range.update(type="endDate", endDate=last.isoformat())
    _check_start(rule, series)
    return rule, series, {"pattern": pattern, "range": recurrence_range}


def _check_start(rule: _Rule, series: _Series) -> None:
    expansion = series.expansion(rule)
    dtstart = series.at(series.first)
    if dtstart in expansion:
        return
    following = expansion.after(dtstart)
    hint = f"; the rule's first day after it is {following.date()}" if following is not None else ""
    raise RecurrenceError(
        "DTSTART",
        f"the start ({series.first}) is not a day the rule matches: RFC 5545 leaves such a start undefined "
        f"and Outlook would begin the series on the first matching day instead{hint}",
    )


def _pattern(rule: _Rule, first: date) -> dict[str, Any]:
    if rule.freq in _SUB_DAILY:
        raise RecurrenceError("FREQ", f"Outlook cannot repeat more often than daily (FREQ={rule.freq})")
    for name, reason in _UNSUPPORTED.items():
        if name in rule.parts:
            raise RecurrenceError(name, reason)
    if rule.interval > MAX_INTERVAL:
        raise RecurrenceError(
            "INTERVAL", f"Outlook repeats at most every {MAX_INTERVAL} periods, not {rule.interval}"
        )
    if rule.count is not None and rule.count > MAX_COUNT:
        raise RecurrenceError(
            "COUNT", f"Outlook counts at most {MAX_COUNT} occurrences, not {rule.count}; use UNTIL or no end"
        )
    if rule.freq in ("DAILY", "WEEKLY"):
        return _daily_or_weekly(rule, first)
    return _monthly_or_yearly(rule, first)


def _daily_or_weekly(rule: _Rule, first: date) -> dict[str, Any]:
    for name in ("BYMONTH", "BYMONTHDAY", "BYSETPOS"):
        if name in rule.parts:
            raise RecurrenceError(name, f"Outlook's {rule.freq.lower()} pattern cannot be narrowed by {name}")
    if any(ordinal for ordinal, _ in rule.byday):
        raise RecurrenceError(
            "BYDAY",
            f"ordinals such as 2TU count within a month or a year (MONTHLY, YEARLY), not with {rule.freq}",
        )
    if rule.freq == "DAILY" and not rule.byday:
        return {"type": "daily", "interval": rule.interval}
    if rule.freq == "DAILY" and rule.interval != 1:
        raise RecurrenceError(
            "INTERVAL", "Outlook cannot repeat every N days on some weekdays only; use FREQ=WEEKLY with BYDAY"
        )
    days = [day for _, day in rule.byday] or [first.weekday()]
    return {
        "type": "weekly",
        "interval": rule.interval,
        "daysOfWeek": _day_names(days),
        "firstDayOfWeek": _NAMES[rule.wkst],
    }


def _monthly_or_yearly(rule: _Rule, first: date) -> dict[str, Any]:
    month: int | None = None
    if rule.freq == "YEARLY":
        month = _the_month(rule, first)
    elif rule.bymonth:
        raise RecurrenceError(
            "BYMONTH", "Outlook's monthly pattern cannot skip months; use FREQ=YEARLY, one series per month"
        )
    day = _day_of_month(rule, first, month)
    kind = "absolute" if "dayOfMonth" in day else "relative"
    pattern: dict[str, Any] = {
        "type": kind + ("Monthly" if month is None else "Yearly"),
        "interval": rule.interval,
    }
    if month is not None:
        pattern["month"] = month
    return pattern | day


def _the_month(rule: _Rule, first: date) -> int:
    if len(rule.bymonth) > 1:
        raise RecurrenceError("BYMONTH", "Outlook's yearly pattern has one month; make one series per month")
    if rule.bymonth:
        return rule.bymonth[0]
    if rule.byday or rule.bymonthday:
        raise RecurrenceError(
            "BYMONTH",
            "without BYMONTH a YEARLY rule with BYMONTHDAY or BYDAY repeats in every month (or counts "
            "weekdays through the year); give the month, e.g. BYMONTH=3",
        )
    return first.month


def _day_of_month(rule: _Rule, first: date, month: int | None) -> dict[str, Any]:
    """`{"dayOfMonth": n}` or `{"daysOfWeek": [...], "index": ...}` for the rule's day in its month."""
    if rule.byday and rule.bymonthday:
        raise RecurrenceError(
            "BYDAY", "BYDAY with BYMONTHDAY (e.g. Friday the 13th) has no Outlook equivalent"
        )
    if rule.byday:
        return _relative(rule)
    if not rule.bymonthday:
        if rule.bysetpos:
            raise RecurrenceError("BYSETPOS", "BYSETPOS needs BYDAY, e.g. BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1")
        return {"dayOfMonth": _absolute_day(first.day, month, "the start's day")}
    days = rule.bymonthday
    if rule.bysetpos == (-1,) and len(days) > 1 and days == tuple(range(28, days[-1] + 1)):
        longest = 31 if month is None else _LONGEST_MONTH[month - 1]
        return {"dayOfMonth": min(days[-1], longest)}  # Outlook's own "day n, or the last day"
    if rule.bysetpos:
        raise RecurrenceError(
            "BYSETPOS",
            "with BYMONTHDAY Outlook takes only BYMONTHDAY=28,29,30,31;BYSETPOS=-1 (day 31 or the last day)",
        )
    if len(days) > 1:
        raise RecurrenceError(
            "BYMONTHDAY", "Outlook repeats on one day of the month; make one series per day"
        )
    if days[0] == -1:
        return {"daysOfWeek": _day_names(range(7)), "index": "last"}  # Outlook's "last day of the month"
    if days[0] < 0:
        raise RecurrenceError("BYMONTHDAY", "Outlook counts from the month's end only for its last day (-1)")
    return {"dayOfMonth": _absolute_day(days[0], month, "BYMONTHDAY")}


def _absolute_day(day: int, month: int | None, what: str) -> int:
    outlooks = ",".join(map(str, range(28, day + 1)))
    fix = f"use BYMONTHDAY=-1 for the last day, a day up to 28, or BYMONTHDAY={outlooks}"
    if month is None and day > 28:
        raise RecurrenceError(
            "BYMONTHDAY",
            f"day {day} ({what}) is missing in shorter months, where RRULE skips the month but Outlook moves "
            f"the occurrence to the month's last day; {fix};BYSETPOS=-1 for Outlook's behaviour",
        )
    if month is not None and day > _LONGEST_MONTH[month - 1]:
        raise RecurrenceError("BYMONTHDAY", f"month {month} never has day {day} ({what})")
    if month == 2 and day == 29:
        raise RecurrenceError(
            "BYMONTHDAY",
            f"29 February ({what}) is missing in common years, where RRULE skips the year but Outlook moves "
            f"it to 28 February; {fix};BYSETPOS=-1 for Outlook's behaviour",
        )
    return day


def _relative(rule: _Rule) -> dict[str, Any]:
    ordinals = {ordinal for ordinal, _ in rule.byday}
    days = [day for _, day in rule.byday]
    if ordinals != {0}:
        if len(rule.byday) > 1:
            raise RecurrenceError(
                "BYDAY",
                f"BYDAY={rule.parts['BYDAY']} gives several days a month; Outlook takes one weekday with "
                "an ordinal (2TU), or plain weekdays with BYSETPOS for 'the nth of them' "
                "(BYDAY=MO,TU,WE,TH,FR;BYSETPOS=2)",
            )
        if rule.bysetpos:
            raise RecurrenceError(
                "BYSETPOS", "BYSETPOS with an ordinal weekday (2TU) has no Outlook equivalent"
            )
        return {"daysOfWeek": _day_names(days), "index": _index("BYDAY", ordinals.pop())}
    if not rule.bysetpos:
        raise RecurrenceError(
            "BYDAY",
            f"BYDAY={rule.parts['BYDAY']} without an ordinal repeats on every such weekday of the month; "
            "give an ordinal (2TU, -1FR) or BYSETPOS, or use FREQ=WEEKLY",
        )
    if len(rule.bysetpos) > 1:
        raise RecurrenceError("BYSETPOS", "Outlook takes one position (e.g. BYSETPOS=2 or -1), not several")
    return {"daysOfWeek": _day_names(days), "index": _index("BYSETPOS", rule.bysetpos[0])}


def _index(part: str, number: int) -> str:
    if number not in _INDEX_NAMES:
        raise RecurrenceError(
            part, f"Outlook counts the first to fourth and the last (1 to 4, or -1), not {number}"
        )
    return _INDEX_NAMES[number]


def _day_names(days: Iterable[int]) -> list[str]:
    """Graph's day names, listed from Sunday as Graph lists them."""
    return [_NAMES[day] for day in sorted(set(days), key=lambda day: (day + 1) % 7)]


# ------------------------------------------------------------------------------------ Graph → RRULE

_FREQ_OF = {
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "absoluteMonthly": "MONTHLY",
    "relativeMonthly": "MONTHLY",
    "absoluteYearly": "YEARLY",
    "relativeYearly": "YEARLY",
}
_INDEX_NUMBERS = {name: number for number, name in _INDEX_NAMES.items()}


def _section(recurrence: dict[str, Any], key: str) -> dict[str, Any]:
    section = recurrence.get(key)
    if not isinstance(section, dict):
        raise RecurrenceError(key, f"the recurrence has no {key}")
    return section


def _number(section: dict[str, Any], key: str, low: int, high: int, where: str) -> int:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RecurrenceError(f"{where}.{key}", f"expected a number from {low} to {high}, not {value!r}")
    return value


def _graph_day(name: object, key: str) -> int:
    if isinstance(name, str) and name.lower() in _NAMES:
        return _NAMES.index(name.lower())
    raise RecurrenceError(f"pattern.{key}", f"unknown day {name!r}")


def _graph_days(pattern: dict[str, Any]) -> list[int]:
    names = pattern.get("daysOfWeek")
    if not isinstance(names, list) or not names:
        raise RecurrenceError("pattern.daysOfWeek", "expected a list of day names")
    return sorted({_graph_day(name, "daysOfWeek") for name in names})


def _graph_index(pattern: dict[str, Any]) -> int:
    index = pattern.get("index", "first")
    if not isinstance(index, str) or index.lower() not in _INDEX_NUMBERS:
        raise RecurrenceError("pattern.index", f"unknown index {index!r}")
    return _INDEX_NUMBERS[index.lower()]


def _relative_rrule(days: list[int], index: int) -> str:
    if len(days) == 7 and index == -1:
        return "BYMONTHDAY=-1"
    if len(days) == 1:
        return f"BYDAY={index}{_CODES[days[0]]}"
    return "BYDAY=" + ",".join(_CODES[day] for day in days) + f";BYSETPOS={index}"


def _range_rrule(recurrence_range: dict[str, Any], all_day: bool) -> list[str]:
    kind = recurrence_range.get("type")
    if kind == "noEnd":
        return []
    if kind == "numbered":
        return [f"COUNT={_number(recurrence_range, 'numberOfOccurrences', 1, MAX_COUNT, 'range')}"]
    if kind != "endDate":
        raise RecurrenceError("range.type", f"unknown range type {kind!r}")
    try:
        end = date.fromisoformat(str(recurrence_range.get("endDate"))[:10])
    except ValueError:
        raise RecurrenceError("range.endDate", "expected a date (2025-03-01)") from None
    name = iana_zone(str(recurrence_range.get("recurrenceTimeZone") or ""))
    if all_day or name is None:
        return [f"UNTIL={end:%Y%m%d}"]
    until = datetime.combine(end, _END_OF_DAY, tzinfo=require_zone(name)).astimezone(UTC)
    return [f"UNTIL={until:%Y%m%dT%H%M%SZ}"]
