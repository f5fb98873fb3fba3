"""Time-zone names: IANA inside the connector, Windows names at the Graph edge.

The host API speaks IANA only (`require_zone`). Graph reports either kind (`iana_zone`), and is
written with Windows names only (Graph takes every Windows name but just a short list of IANA ones).
CLDR's windowsZones mapping (shipped in tzlocal) names a Windows zone for each IANA zone
(`windows_zone`), but not always one with the same rules: America/Scoresbysund maps to "Azores
Standard Time" although it keeps Greenland's clocks since 2024. So a write asks `graph_zone` for a
Windows zone whose rules give the IANA zone's UTC offsets at every instant the event covers: CLDR's
own first, else any Windows zone that does. Windows' own rule data is not at hand: a Windows zone is
taken to keep the rules of the IANA zone CLDR names for it worldwide (territory "001"), which is also
how the emulator reads a Windows name. What no Windows zone matches is written in "UTC" when a
single event is (`single_zone`), and refused (`NoWindowsZone`) for a series, whose occurrences Outlook
expands in the zone it is given. Zone data comes from zoneinfo with the tzdata package, so every
worker agrees.
"""

from __future__ import annotations

import importlib.resources
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import tz_win, win_tz

# IANA names CLDR does not map but that mean UTC (CLDR maps Etc/GMT, Etc/UTC, UTC, Zulu, ...).
_UTC_ALIASES = frozenset({"GMT"})
# Names Outlook reports for UTC besides "UTC" itself.
_GRAPH_UTC_NAMES = frozenset({"tzone://microsoft/utc", "coordinated universal time"})
_NOT_ZONES = frozenset({"Factory"})  # in tzdata, but a placeholder, not a place
# How often a zone's offset is sampled to find its changes (each then found to the second). tzdata
# never changes one zone's offset twice within a week (the closest: 6.9 days, Cambridge Bay, 2000).
_STEP = timedelta(hours=6)
_SECOND = timedelta(seconds=1)
_FIRST, _LAST = datetime(2, 1, 1, tzinfo=UTC), datetime(9998, 12, 31, tzinfo=UTC)  # years zoneinfo can step


class UnknownZone(ValueError):
    """A time-zone name the connector cannot use; `reason` says why."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name!r}: {reason}")
        self.name = name
        self.reason = reason


class NoWindowsZone(UnknownZone):
    """No Windows zone keeps an IANA zone's offsets over a series, so Outlook would move occurrences."""


@cache
def _iana_names() -> frozenset[str]:
    listing = importlib.resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(listing.split()) - _NOT_ZONES


@cache
def _iana_by_lower() -> dict[str, str]:
    return {name.lower(): name for name in _iana_names()}


@cache
def _windows_by_lower() -> dict[str, str]:
    return {name.lower(): name for name in win_tz}


def require_zone(name: str) -> ZoneInfo:
    """The zone for an IANA name (exact spelling, "UTC" included); `UnknownZone` for anything else."""
    if not name.strip():
        raise UnknownZone(name, "a time zone is required (an IANA name such as Europe/Amsterdam)")
    if name not in _iana_names():
        raise UnknownZone(name, _why_not_iana(name))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # listed by tzdata but not loadable: a broken install
        raise UnknownZone(name, "no zone data for this name") from None


def _why_not_iana(name: str) -> str:
    windows = _windows_by_lower().get(name.strip().lower())
    if windows is not None:
        return f"a Windows zone name; use the IANA name instead (e.g. {win_tz[windows]})"
    spelled = _iana_by_lower().get(name.strip().lower())
    if spelled is not None:
        return f"not an IANA zone name as spelled; did you mean {spelled}?"
    return "not an IANA zone name (e.g. Europe/Amsterdam, America/New_York, UTC)"


def windows_zone(iana: str) -> str:
    """CLDR's Windows name for an IANA zone, or the IANA name itself where CLDR has none.

    CLDR lists aliases too (Asia/Calcutta and Asia/Kolkata, Etc/UTC and UTC). Its Windows zone may keep
    other clocks (America/Scoresbysund: "Azores Standard Time"), and a zone it does not map
    (Antarctica/Troll) is not a name Graph is documented to take: writes use `graph_zone`.
    """
    require_zone(iana)
    if iana in _UTC_ALIASES:
        return "UTC"
    return tz_win.get(iana, iana)


def iana_zone(name: str) -> str | None:
    """The IANA name for a Windows or IANA name as Graph reports it (case-insensitive), or None.

    An IANA name comes back in its canonical spelling; a Windows name maps through CLDR (which
    may give an older alias such as Asia/Calcutta, a valid IANA name all the same).
    """
    key = name.strip().lower()
    if not key:
        return None
    if key in _GRAPH_UTC_NAMES:
        return "UTC"
    iana = _iana_by_lower().get(key)
    if iana is not None:
        return iana
    windows = _windows_by_lower().get(key)
    return None if windows is None else win_tz[windows]


Offsets = tuple[timedelta, tuple[tuple[datetime, timedelta], ...]]  # at the start, then each change


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@cache
def _windows_rules() -> tuple[tuple[str, str], ...]:
    """(Windows name, the IANA zone whose rules it has), in name order, UTC first."""
    return tuple(sorted(win_tz.items(), key=lambda item: (item[0] != "UTC", item[0])))


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset


@cache
def _year_offsets(name: str, year: int) -> Offsets:
    """A zone's UTC offset as the UTC year `year` begins and each change within it, to the second."""
    zone = _zone(name)
    at, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    first = before = _offset(zone, at)
    changes: list[tuple[datetime, timedelta]] = []
    while at < end:
        step = min(at + _STEP, end)
        after = _offset(zone, step)
        if after != before:
            low, high = at, step  # the change lies in (low, high]
            while high - low > _SECOND:
                middle = low + (high - low) // 2
                if _offset(zone, middle) == before:
                    low = middle
                else:
                    high = middle
            changes.append((high, after))
            before = after
        at = step
    return first, tuple(changes)


def _offsets(name: str, start: datetime, end: datetime) -> Offsets:
    """A zone's offset at `start` and each change after it up to and including `end`."""
    first = _offset(_zone(name), start)
    changes = tuple(
        change
        for year in range(start.year, end.year + 1)
        for change in _year_offsets(name, year)[1]
        if start < change[0] <= end
    )
    return first, changes


@cache
def _same_years(name: str, other: str, first_year: int, last_year: int) -> bool:
    return all(
        _year_offsets(name, year) == _year_offsets(other, year) for year in range(first_year, last_year + 1)
    )


def _utc(moment: datetime) -> datetime:
    """`moment` in UTC within the years compared (zoneinfo cannot step a zone's first and last year)."""
    try:
        instant = moment.astimezone(UTC)
    except OverflowError:  # within a day of datetime's range
        return _LAST if moment.year > 1 else _FIRST
    return min(max(instant, _FIRST), _LAST)


def graph_zone(iana: str, start: datetime, end: datetime) -> str | None:
    """A Windows zone whose UTC offsets equal `iana`'s at every instant from `start` to `end`, or None.

    CLDR's name for the zone when its rules match; else a Windows zone (UTC first, then by name) with
    the same offsets over the whole UTC years of the span, so Outlook shows the event in a zone with
    the host zone's clocks; else one that matches over the span itself. Each zone's offset changes are
    found once per year and kept, so a write costs a few look-ups once a zone's years are known.
    """
    require_zone(iana)
    if start.utcoffset() is None or end.utcoffset() is None:
        raise ValueError("the span must be given as timezone-aware datetimes")
    start, end = _utc(start), _utc(end)
    end = max(start, end)
    name = "UTC" if iana in _UTC_ALIASES else iana
    cldr = tz_win.get(name)
    if cldr is not None and (
        _same_years(name, win_tz[cldr], start.year, end.year)
        or _offsets(name, start, end) == _offsets(win_tz[cldr], start, end)
    ):
        return cldr
    candidates = [
        (windows, rules)
        for windows, rules in _windows_rules()
        if windows != cldr and _offset(_zone(rules), start) == _offset(_zone(name), start)
    ]
    for windows, rules in candidates:
        if _same_years(name, rules, start.year, end.year):
            return windows
    for windows, rules in candidates:
        if _offsets(name, start, end) == _offsets(rules, start, end):
            return windows
    return None


def wall_clock(instant: datetime, windows: str) -> datetime:
    """The naive wall-clock time of an aware `instant` in a Windows zone, as Graph is given it."""
    return instant.astimezone(_zone(win_tz[windows])).replace(tzinfo=None)


def single_zone(iana: str, start: datetime | date, end: datetime | date) -> str:
    """The zone one event from `start` to `end` is written in: `graph_zone` when Graph reads its start and
    end back as these instants (not so for a time in the hour a DST change repeats), else "UTC". An
    all-day event (dates, midnight to midnight in `iana`) keeps its dates in "UTC" too."""
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        zone = require_zone(iana)
        midnights = (datetime.combine(start, time(), tzinfo=zone), datetime.combine(end, time(), tzinfo=zone))
        return graph_zone(iana, *midnights) or "UTC"
    windows = graph_zone(iana, start, end)
    if windows is None:
        return "UTC"
    rules = _zone(win_tz[windows])
    if start.astimezone(rules).fold or end.astimezone(rules).fold:  # the second of a repeated hour
        return "UTC"
    return windows


def series_zone(iana: str, start: datetime, end: datetime) -> str:
    """The zone a series whose occurrences span `start` to `end` is written in (`graph_zone`); raises
    `NoWindowsZone` when no Windows zone keeps `iana`'s offsets over it."""
    windows = graph_zone(iana, start, end)
    if windows is None:
        raise NoWindowsZone(
            iana,
            f"no Windows time zone (the zones Outlook takes) has this zone's UTC offsets from "
            f"{start:%Y-%m-%d} to {end:%Y-%m-%d}, so Outlook would move occurrences of the series; use a "
            "zone with the same clocks, or split the series where this zone's rules change",
        )
    return windows
