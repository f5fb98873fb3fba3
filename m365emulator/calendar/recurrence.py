"""`patternedRecurrence`: parsing, validation, rendering and lazy expansion into local dates.

Expansion works on *local dates* of the series' start time zone: every Graph pattern yields at
most one occurrence per day, so an occurrence is identified by its original local date, and its
start is that date at the master's wall-clock time (stable across DST; converted to UTC only
when compared with a window).

Rules (Graph/Exchange behaviour; contract §3.4, plus what the real service is observed to do):
- Expansion starts at `range.startDate`: the first occurrence is the first date on/after it that
  matches the pattern (for weekly: the first listed day on/after startDate).
- Interval periods are aligned on startDate: its day (daily), its week starting on
  `firstDayOfWeek` (weekly), its month (monthly), its year (yearly).
- `absoluteMonthly`/`absoluteYearly` with a `dayOfMonth` the month doesn't have (31 in April,
  29 February in a common year) fall on the month's last day (Exchange clamps; it never skips).
- `relativeMonthly`/`relativeYearly`: the `index`-th day of the month whose weekday is one of
  `daysOfWeek` (`last` = the last such day); with one weekday that is "the second Tuesday".
- `endDate` is inclusive (local date of the occurrence's start); `numbered` counts occurrences
  from the first one, cancelled occurrences included (they were occurrences once).
- `noEnd` series are never materialised: expansion is an iterator bounded by the caller's window.
- Properties that don't belong to the pattern type are accepted when their value is valid and
  ignored (Graph echoes `month: 0`, `dayOfMonth: 0`, `index: "first"` for every pattern, and
  clients round-trip them); a required property missing or any invalid value is a 400.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from m365emulator.errors import GraphError

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_INDEX = {name: i for i, name in enumerate(DAY_NAMES)}
_INDEX_NAMES = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_INDEX_BY_NUMBER = {v: k for k, v in _INDEX_NAMES.items()}
PATTERN_TYPES = ("daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly")
RANGE_TYPES = ("endDate", "noEnd", "numbered")
_NO_END_DATE = "0001-01-01"
MAX_OCCURRENCES = 999  # Exchange caps numbered series at 999 occurrences


def _bad(message: str) -> GraphError:
    return GraphError(400, "ErrorInvalidParameter", message)


@dataclass(frozen=True, slots=True)
class Pattern:
    type: str
    interval: int
    days_of_week: tuple[int, ...] = ()  # Python weekday numbers, Monday = 0
    first_day_of_week: int = 6  # sunday
    day_of_month: int = 0
    month: int = 0
    index: int = 1  # 1..4, or -1 for last


@dataclass(frozen=True, slots=True)
class Range:
    type: str
    start_date: date
    end_date: date | None = None
    count: int = 0
    time_zone: str | None = None


@dataclass(frozen=True, slots=True)
class Recurrence:
    pattern: Pattern
    range: Range

    def to_graph(self, default_zone_label: str) -> dict[str, Any]:
        p, r = self.pattern, self.range
        days = sorted(p.days_of_week, key=lambda d: (d + 1) % 7)  # Graph lists sunday first
        return {
            "pattern": {
                "type": p.type,
                "interval": p.interval,
                "month": p.month,
                "dayOfMonth": p.day_of_month,
                "daysOfWeek": [DAY_NAMES[d] for d in days],
                "firstDayOfWeek": DAY_NAMES[p.first_day_of_week],
                "index": _INDEX_BY_NUMBER[p.index],
            },
            "range": {
                "type": r.type,
                "startDate": r.start_date.isoformat(),
                "endDate": r.end_date.isoformat() if r.end_date else _NO_END_DATE,
                "recurrenceTimeZone": r.time_zone or default_zone_label,
                "numberOfOccurrences": r.count,
            },
        }

    def with_start_date(self, start: date) -> Recurrence:
        r = self.range
        return Recurrence(self.pattern, Range(r.type, start, r.end_date, r.count, r.time_zone))


# --------------------------------------------------------------------------------------------- parsing


def _enum(value: object, allowed: tuple[str, ...], what: str) -> str:
    if isinstance(value, str):
        for name in allowed:
            if name.lower() == value.lower():
                return name
    raise _bad(f"The value '{value}' of {what} is not supported.")


def _int(value: object, what: str, low: int, high: int, *, zero_ok: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        else:
            raise _bad(f"The value '{value}' of {what} is not valid.")
    if zero_ok and value == 0:
        return 0
    if not low <= value <= high:
        raise _bad(f"The value '{value}' of {what} is out of range.")
    return value


def _date(value: object, what: str) -> date:
    if isinstance(value, str):
        try:
            parsed = date.fromisoformat(value[:10])
        except ValueError:
            pass
        else:
            if 1601 <= parsed.year <= 4500:
                return parsed
    raise _bad(f"The value '{value}' of {what} is not a valid date.")


def _present(obj: dict[str, Any], key: str) -> bool:
    return obj.get(key) is not None


def parse_recurrence(raw: object) -> Recurrence | None:
    """A request's `recurrence` (None/absent means no recurrence); 400 on anything invalid."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _bad("The recurrence is not valid.")
    pattern_raw = raw.get("pattern")
    range_raw = raw.get("range")
    if not isinstance(pattern_raw, dict):
        raise _bad("Recurrence pattern is required.")
    if not isinstance(range_raw, dict):
        raise _bad("Recurrence range is required.")
    return Recurrence(_parse_pattern(pattern_raw), _parse_range(range_raw))


def _parse_pattern(raw: dict[str, Any]) -> Pattern:
    if not _present(raw, "type"):
        raise _bad("Recurrence pattern type is required.")
    kind = _enum(raw["type"], PATTERN_TYPES, "recurrence.pattern.type")
    if not _present(raw, "interval"):
        raise _bad("Recurrence pattern interval is required.")
    interval = _int(raw["interval"], "recurrence.pattern.interval", 1, 999)

    days: tuple[int, ...] = ()
    if _present(raw, "daysOfWeek"):
        values = raw["daysOfWeek"]
        if not isinstance(values, list):
            raise _bad("The value of recurrence.pattern.daysOfWeek is not valid.")
        picked = {_DAY_INDEX[_enum(v, DAY_NAMES, "recurrence.pattern.daysOfWeek")] for v in values}
        days = tuple(sorted(picked))
    first_day = 6
    if _present(raw, "firstDayOfWeek"):
        first_day = _DAY_INDEX[_enum(raw["firstDayOfWeek"], DAY_NAMES, "recurrence.pattern.firstDayOfWeek")]
    day_of_month = 0
    if _present(raw, "dayOfMonth"):
        day_of_month = _int(raw["dayOfMonth"], "recurrence.pattern.dayOfMonth", 1, 31, zero_ok=True)
    month = 0
    if _present(raw, "month"):
        month = _int(raw["month"], "recurrence.pattern.month", 1, 12, zero_ok=True)
    index = 1
    if _present(raw, "index"):
        index = _INDEX_NAMES[_enum(raw["index"], tuple(_INDEX_NAMES), "recurrence.pattern.index")]

    if kind in ("weekly", "relativeMonthly", "relativeYearly") and not days:
        raise _bad(f"Recurrence pattern '{kind}' requires daysOfWeek.")
    if kind in ("absoluteMonthly", "absoluteYearly") and not day_of_month:
        raise _bad(f"Recurrence pattern '{kind}' requires dayOfMonth.")
    if kind in ("absoluteYearly", "relativeYearly") and not month:
        raise _bad(f"Recurrence pattern '{kind}' requires month.")
    if kind == "absoluteYearly" and day_of_month > _days_in_month(2000, month):
        raise _bad("The value of recurrence.pattern.dayOfMonth is out of range for the month.")
    return Pattern(kind, interval, days, first_day, day_of_month, month, index)


def _parse_range(raw: dict[str, Any]) -> Range:
    if not _present(raw, "type"):
        raise _bad("Recurrence range type is required.")
    kind = _enum(raw["type"], RANGE_TYPES, "recurrence.range.type")
    if not _present(raw, "startDate"):
        raise _bad("Recurrence range startDate is required.")
    start = _date(raw["startDate"], "recurrence.range.startDate")
    end: date | None = None
    count = 0
    if kind == "endDate":
        if not _present(raw, "endDate") or str(raw["endDate"]).startswith(_NO_END_DATE):
            raise _bad("Recurrence range endDate is required for an endDate range.")
        end = _date(raw["endDate"], "recurrence.range.endDate")
        if end < start:
            raise _bad("The recurrence range endDate must not be before its startDate.")
    elif _present(raw, "endDate") and not str(raw["endDate"]).startswith(_NO_END_DATE):
        _date(raw["endDate"], "recurrence.range.endDate")  # validated, ignored
    if kind == "numbered":
        if not _present(raw, "numberOfOccurrences"):
            raise _bad("Recurrence range numberOfOccurrences is required for a numbered range.")
        count = _int(raw["numberOfOccurrences"], "recurrence.range.numberOfOccurrences", 1, MAX_OCCURRENCES)
    elif _present(raw, "numberOfOccurrences"):
        _int(raw["numberOfOccurrences"], "recurrence.range.numberOfOccurrences", 0, MAX_OCCURRENCES)
    zone = raw.get("recurrenceTimeZone")
    if zone is not None and not isinstance(zone, str):
        raise _bad("The value of recurrence.range.recurrenceTimeZone is not valid.")
    return Range(kind, start, end, count, zone or None)


# ------------------------------------------------------------------------------------------- expansion


def _days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _relative_day(year: int, month: int, days: tuple[int, ...], index: int) -> date:
    first_weekday, length = calendar.monthrange(year, month)
    matches = [d for d in range(1, length + 1) if (first_weekday + d - 1) % 7 in days]
    pick = matches[-1] if index == -1 else matches[min(index, len(matches)) - 1]
    return date(year, month, pick)


def _period_dates(p: Pattern, start: date, first_period: int) -> Iterator[date]:
    """Candidate dates period by period (ascending), from period number `first_period` on."""
    k = first_period
    if p.type == "daily":
        day = start + timedelta(days=k * p.interval)
        step = timedelta(days=p.interval)
        while True:
            yield day
            day += step
    if p.type == "weekly":
        week0 = start - timedelta(days=(start.weekday() - p.first_day_of_week) % 7)
        offsets = sorted((d - p.first_day_of_week) % 7 for d in p.days_of_week)
        while True:
            week = week0 + timedelta(weeks=k * p.interval)
            for offset in offsets:
                yield week + timedelta(days=offset)
            k += 1
    if p.type in ("absoluteMonthly", "relativeMonthly"):
        base = start.year * 12 + start.month - 1
        while True:
            year, month0 = divmod(base + k * p.interval, 12)
            if year > 9999:
                return
            yield _month_day(p, year, month0 + 1)
            k += 1
    # yearly
    while True:
        year = start.year + k * p.interval
        if year > 9999:
            return
        yield _month_day(p, year, p.month)
        k += 1


def _month_day(p: Pattern, year: int, month: int) -> date:
    if p.type in ("absoluteMonthly", "absoluteYearly"):
        return date(year, month, min(p.day_of_month, _days_in_month(year, month)))
    return _relative_day(year, month, p.days_of_week, p.index)


def _period_of(p: Pattern, start: date, day: date) -> int:
    """A period number at or before the one containing `day` (for skipping ahead)."""
    if p.type == "daily":
        return max(0, (day - start).days // p.interval)
    if p.type == "weekly":
        week0 = start - timedelta(days=(start.weekday() - p.first_day_of_week) % 7)
        return max(0, (day - week0).days // 7 // p.interval)
    if p.type in ("absoluteMonthly", "relativeMonthly"):
        months = (day.year - start.year) * 12 + day.month - start.month
        return max(0, months // p.interval - 1)
    return max(0, (day.year - start.year) // p.interval - 1)


def expand(rec: Recurrence, until: date, *, since: date | None = None) -> Iterator[date]:
    """Occurrence dates of the series, ascending, up to and including `until`.

    `since` is a hint for unbounded series: dates before it may be skipped (without a count,
    nothing before `since` matters, so expansion jumps straight to it: a `noEnd` daily series
    from 2010 costs the same as one from last week).
    """
    p, r = rec.pattern, rec.range
    last = until
    if r.end_date is not None and r.end_date < last:
        last = r.end_date
    first_period = 0
    if since is not None and r.type != "numbered" and since > r.start_date:
        first_period = _period_of(p, r.start_date, since)
    remaining = r.count if r.type == "numbered" else -1
    for day in _period_dates(p, r.start_date, first_period):
        if day < r.start_date:
            continue
        if day > last:
            return
        yield day
        if remaining > 0:
            remaining -= 1
            if remaining == 0:
                return


def first_date(rec: Recurrence) -> date | None:
    for day in expand(rec, date(9999, 12, 31)):
        return day
    return None


def occurs_on(rec: Recurrence, day: date) -> bool:
    return any(candidate == day for candidate in expand(rec, day, since=day))


def to_rrule(rec: Recurrence) -> str:
    """The equivalent RFC 5545 RRULE (for tests and documentation; dateutil-compatible)."""
    p, r = rec.pattern, rec.range
    names = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
    freq = {
        "daily": "DAILY",
        "weekly": "WEEKLY",
        "absoluteMonthly": "MONTHLY",
        "relativeMonthly": "MONTHLY",
        "absoluteYearly": "YEARLY",
        "relativeYearly": "YEARLY",
    }[p.type]
    parts = [f"FREQ={freq}", f"INTERVAL={p.interval}"]
    if p.type == "weekly":
        parts += [f"WKST={names[p.first_day_of_week]}", "BYDAY=" + ",".join(names[d] for d in p.days_of_week)]
    if p.type in ("absoluteYearly", "relativeYearly"):
        parts.append(f"BYMONTH={p.month}")
    if p.type in ("absoluteMonthly", "absoluteYearly"):
        if p.day_of_month > 28:
            parts += ["BYMONTHDAY=" + ",".join(str(d) for d in range(28, p.day_of_month + 1)), "BYSETPOS=-1"]
        else:
            parts.append(f"BYMONTHDAY={p.day_of_month}")
    if p.type in ("relativeMonthly", "relativeYearly"):
        parts += ["BYDAY=" + ",".join(names[d] for d in p.days_of_week), f"BYSETPOS={p.index}"]
    if r.type == "numbered":
        parts.append(f"COUNT={r.count}")
    return ";".join(parts)
