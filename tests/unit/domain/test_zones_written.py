"""Every IANA zone the host may give is written to Graph so that Graph stores the host's instants.

Graph reads a Windows zone by its rules; here, as in the emulator, a Windows name means the IANA zone
CLDR names for it worldwide (tzlocal's `win_tz`). CLDR's own IANA-to-Windows mapping is not enough:
America/Scoresbysund, Antarctica/Casey and Antarctica/Vostok map to Windows zones with other clocks.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from tzlocal.windows_tz import win_tz

from shared.adapters.graph.writes import event_payload, occurrence_payload
from shared.domain import recurrence as rules
from shared.domain.appointments import Appointment, CopyRole, Override, Recurrence, draft_for
from shared.domain.timezones import NoWindowsZone, UnknownZone, require_zone

pytestmark = pytest.mark.unit

YEAR = 2027
HOUR = timedelta(hours=1)


def _host_zones() -> list[str]:
    names = []
    for name in sorted(zoneinfo.available_timezones()):
        try:
            require_zone(name)
        except UnknownZone:
            assert name in {"Factory", "localtime"}  # tzdata's placeholder, the system's alias
            continue
        names.append(name)
    return names


ZONES = _host_zones()


def _transitions(zone: ZoneInfo, year: int) -> list[datetime]:
    """The first UTC hour of each new offset in `year` (a day's look, then its hours)."""
    found = []
    day = datetime(year, 1, 1, tzinfo=UTC)
    while day.year == year:
        following = day + timedelta(days=1)
        if day.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            hour = day
            while hour.astimezone(zone).utcoffset() == day.astimezone(zone).utcoffset():
                hour += HOUR
            found.append(hour)
        day = following
    return found


@cache
def _instants(name: str) -> list[datetime]:
    """10:00 local on the 1st and 15th of each month, and each hour around each offset change."""
    zone = ZoneInfo(name)
    mornings = [datetime(YEAR, month, day, 10, tzinfo=zone) for month in range(1, 13) for day in (1, 15)]
    around = [
        change + timedelta(minutes=minutes)
        for change in _transitions(zone, YEAR)
        for minutes in (-90, -60, -30, 0, 30, 60, 90)
    ]
    return [*mornings, *(instant.astimezone(zone) for instant in around)]


def _read_by_graph(value: dict[str, str]) -> datetime:
    """The instant Graph stores for a written `dateTimeTimeZone` (a Windows name, by its rules)."""
    assert value["timeZone"] in win_tz, f"{value['timeZone']!r} is not a Windows zone name"
    wall = datetime.fromisoformat(value["dateTime"])
    return wall.replace(tzinfo=ZoneInfo(win_tz[value["timeZone"]])).astimezone(UTC)


def _appointment(name: str, start: datetime, end: datetime, rrule: str | None = None) -> Appointment:
    recurrence = Recurrence(rrule) if rrule else None
    return Appointment("a-1", "Visit", start, end, name, False, ("s-1",), recurrence=recurrence)


def test_every_zone_is_written_at_the_hosts_instants():
    wrong = []
    for name in ZONES:
        for start in _instants(name):
            payload = event_payload(draft_for(_appointment(name, start, start + HOUR), CopyRole.COPY))
            if payload["start"]["timeZone"] not in win_tz:  # Graph takes only a few IANA names
                wrong.append(f"{name} {start.isoformat()} as {payload['start']['timeZone']}: not Windows")
                continue
            got = (_read_by_graph(payload["start"]), _read_by_graph(payload["end"]))
            if got != (start.astimezone(UTC), (start + HOUR).astimezone(UTC)):
                wrong.append(f"{name} {start.isoformat()} as {payload['start']['timeZone']}: {got[0]}")
    assert wrong == []


def test_every_zones_weekly_series_lands_on_the_hosts_instants():
    wrong, refused = [], []
    for name in ZONES:
        start = datetime(YEAR, 1, 4, 10, tzinfo=ZoneInfo(name))
        appointment = _appointment(name, start, start + HOUR, "FREQ=WEEKLY;COUNT=52")
        try:
            payload = event_payload(draft_for(appointment, CopyRole.COPY))
        except NoWindowsZone:
            refused.append(name)  # refused when the host gives the series, never written
            continue
        zone = payload["recurrence"]["range"]["recurrenceTimeZone"]
        assert payload["start"]["timeZone"] == zone
        wall = datetime.fromisoformat(payload["start"]["dateTime"])
        host = rules.expand(appointment.recurrence.rrule, start, name, start, start + timedelta(days=400))
        assert len(host) == 52
        for occurrence in host:
            graph = _read_by_graph({"dateTime": f"{occurrence.date()}T{wall.time()}", "timeZone": zone})
            if graph != occurrence.astimezone(UTC):
                wrong.append(f"{name} {occurrence.isoformat()} as {zone}: {graph}")
    assert wrong == []
    assert refused == ["Antarctica/Troll"]  # +00/+02 (tzdata 2026): no Windows zone has its clocks


@pytest.mark.parametrize(
    ("name", "windows"),
    [
        ("America/Scoresbysund", "Greenland Standard Time"),  # -02/-01 since 2024, as Nuuk
        ("Antarctica/Casey", "China Standard Time"),  # +08, no DST (CLDR: Central Pacific, +11)
        ("Antarctica/Vostok", "Ekaterinburg Standard Time"),  # +05 since 2023 (CLDR: Central Asia, +06)
        ("Europe/Amsterdam", "W. Europe Standard Time"),  # CLDR's name where its rules match
    ],
)
def test_the_three_zones_cldr_maps_to_other_clocks_get_a_windows_zone_with_theirs(name, windows):
    start = datetime(YEAR, 7, 1, 10, tzinfo=ZoneInfo(name))
    single = event_payload(draft_for(_appointment(name, start, start + HOUR), CopyRole.COPY))
    series = event_payload(draft_for(_appointment(name, start, start + HOUR, "FREQ=DAILY"), CopyRole.COPY))

    assert single["start"] == {"dateTime": f"{YEAR}-07-01T10:00:00", "timeZone": windows}
    assert series["recurrence"]["range"]["recurrenceTimeZone"] == windows


def test_a_time_in_a_repeated_hour_is_written_in_utc():
    zone = ZoneInfo("Europe/Amsterdam")
    second = datetime(YEAR, 10, 31, 2, 30, fold=1, tzinfo=zone)  # 01:30 UTC, the second 02:30

    payload = event_payload(draft_for(_appointment("Europe/Amsterdam", second, second + HOUR), CopyRole.COPY))

    assert payload["start"] == {"dateTime": f"{YEAR}-10-31T01:30:00", "timeZone": "UTC"}


def test_a_zone_no_windows_zone_keeps_is_written_in_utc_across_its_change_and_refused_for_a_series():
    name = "Antarctica/Troll"  # +00 in winter, +02 in summer: no Windows zone has both
    zone = ZoneInfo(name)
    summer = datetime(YEAR, 7, 1, 10, tzinfo=zone)
    across = datetime(YEAR, 3, 28, 0, 30, tzinfo=UTC).astimezone(zone)  # the change is at 01:00 UTC

    within = event_payload(draft_for(_appointment(name, summer, summer + HOUR), CopyRole.COPY))
    changing = event_payload(draft_for(_appointment(name, across, across + HOUR), CopyRole.COPY))

    assert _read_by_graph(within["start"]) == summer.astimezone(UTC)  # a +02 Windows zone will do
    assert changing["start"] == {"dateTime": f"{YEAR}-03-28T00:30:00", "timeZone": "UTC"}
    assert changing["end"] == {"dateTime": f"{YEAR}-03-28T01:30:00", "timeZone": "UTC"}
    with pytest.raises(NoWindowsZone) as refused:
        rules.to_graph("FREQ=WEEKLY", summer, name, summer + HOUR)
    assert "no Windows time zone" in refused.value.reason


def test_an_all_day_series_in_such_a_zone_keeps_its_dates_in_utc():
    recurrence = rules.to_graph("FREQ=WEEKLY", date(YEAR, 7, 5), "Antarctica/Troll", date(YEAR, 7, 6))

    assert recurrence["range"]["recurrenceTimeZone"] == "UTC"


def test_a_series_is_checked_over_its_own_span_only():
    # Scoresbysund kept the Azores' clocks until March 2024 and Greenland's after: a series within either
    # period has a Windows zone, one across the change has none.
    zone = ZoneInfo("America/Scoresbysund")
    before = datetime(2023, 1, 2, 10, tzinfo=zone)
    assert rules.to_graph("FREQ=WEEKLY;COUNT=10", before, zone.key, before + HOUR)["range"][
        "recurrenceTimeZone"
    ] == ("Azores Standard Time")
    with pytest.raises(NoWindowsZone):
        rules.to_graph("FREQ=WEEKLY;UNTIL=20240601", before, zone.key, before + HOUR)


def test_an_override_is_written_at_its_own_instants():
    zone = ZoneInfo("America/Scoresbysund")
    start = datetime(YEAR, 1, 4, 10, tzinfo=zone)
    draft = draft_for(_appointment(zone.key, start, start + HOUR, "FREQ=WEEKLY;COUNT=5"), CopyRole.COPY)
    moved = datetime(YEAR, 1, 12, 15, tzinfo=zone)

    payload = occurrence_payload(draft, Override(date(YEAR, 1, 11), moved, moved + HOUR))

    assert _read_by_graph(payload["start"]) == moved.astimezone(UTC)
    assert _read_by_graph(payload["end"]) == (moved + HOUR).astimezone(UTC)


@pytest.mark.parametrize("year", [1, 9995, 9999])
def test_a_series_near_the_ends_of_the_calendar_gets_a_zone_without_overflowing(year):
    start = datetime(year, 1, 1 if year == 1 else 30, 12, tzinfo=ZoneInfo("Asia/Kolkata"))
    if year == 9999:
        start = start.replace(month=12)

    recurrence = rules.to_graph("FREQ=DAILY", start, "Asia/Kolkata", start + HOUR)

    assert recurrence["range"]["recurrenceTimeZone"] == "India Standard Time"
