"""Zone names: IANA in from the host, Windows out to Graph, either back from Graph."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from tzlocal.windows_tz import win_tz

from shared.domain.timezones import UnknownZone, iana_zone, require_zone, windows_zone

pytestmark = pytest.mark.unit

ZONES = [
    "Europe/Amsterdam",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "UTC",
]


@pytest.mark.parametrize("name", [*ZONES, "Etc/UTC", "Asia/Calcutta", "Europe/Kiev", "Etc/GMT+5"])
def test_iana_names_are_zones(name):
    assert require_zone(name) == ZoneInfo(name)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("", "required"),
        ("   ", "required"),
        ("W. Europe Standard Time", "Windows zone name; use the IANA name instead (e.g. Europe/Berlin)"),
        ("Eastern Standard Time", "America/New_York"),
        ("europe/amsterdam", "did you mean Europe/Amsterdam?"),
        ("Mars/Olympus_Mons", "not an IANA zone name"),
        ("localtime", "not an IANA zone name"),
        ("Factory", "not an IANA zone name"),
        ("../../etc/passwd", "not an IANA zone name"),
        ("Europe/Amsterdam ", "not an IANA zone name as spelled; did you mean Europe/Amsterdam?"),
    ],
)
def test_anything_but_an_iana_name_is_refused_with_a_reason(name, hint):
    with pytest.raises(UnknownZone) as caught:
        require_zone(name)

    assert isinstance(caught.value, ValueError)
    assert caught.value.name == name
    assert hint in caught.value.reason


@pytest.mark.parametrize(
    ("iana", "windows"),
    [
        ("Europe/Amsterdam", "W. Europe Standard Time"),
        ("America/New_York", "Eastern Standard Time"),
        ("Australia/Sydney", "AUS Eastern Standard Time"),
        ("Asia/Kolkata", "India Standard Time"),
        ("Asia/Calcutta", "India Standard Time"),
        ("America/Sao_Paulo", "E. South America Standard Time"),
        ("UTC", "UTC"),
        ("Etc/UTC", "UTC"),
        ("GMT", "UTC"),
        ("Europe/London", "GMT Standard Time"),
    ],
)
def test_graph_gets_the_windows_name(iana, windows):
    assert windows_zone(iana) == windows


def test_a_zone_cldr_does_not_map_goes_to_graph_by_its_iana_name():
    assert windows_zone("Antarctica/Troll") == "Antarctica/Troll"


def test_windows_zone_takes_iana_names_only():
    with pytest.raises(UnknownZone):
        windows_zone("W. Europe Standard Time")


def test_every_iana_zone_has_a_name_graph_takes():
    from shared.domain import timezones

    for name in timezones._iana_names():
        label = windows_zone(name)
        assert label in win_tz or label == name


@pytest.mark.parametrize(
    ("reported", "iana"),
    [
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("w. europe standard time", "Europe/Berlin"),
        ("India Standard Time", "Asia/Calcutta"),
        ("Eastern Standard Time", "America/New_York"),
        ("UTC", "UTC"),
        ("tzone://Microsoft/Utc", "UTC"),
        ("Europe/Amsterdam", "Europe/Amsterdam"),
        ("europe/amsterdam", "Europe/Amsterdam"),
        ("UTC+12", "Etc/GMT-12"),
    ],
)
def test_what_graph_reports_maps_back_to_iana(reported, iana):
    assert iana_zone(reported) == iana


@pytest.mark.parametrize("reported", ["", "  ", "Customized Time Zone", "Mars Standard Time"])
def test_unknown_reported_zones_are_none(reported):
    assert iana_zone(reported) is None


@pytest.mark.parametrize("name", ZONES)
def test_there_and_back_keeps_the_offsets(name):
    back = iana_zone(windows_zone(name))
    assert back is not None
    for month in range(1, 13):
        instant = datetime(2026, month, 15, tzinfo=UTC)
        assert (
            instant.astimezone(ZoneInfo(back)).utcoffset() == instant.astimezone(ZoneInfo(name)).utcoffset()
        )
