"""Time-zone names: IANA inside the connector, Windows names at the Graph edge.

The host API speaks IANA only (`require_zone`). Graph is written with Windows names
(`windows_zone`, through CLDR's windowsZones mapping shipped in tzlocal) and reports either kind
(`iana_zone`). Zone data comes from zoneinfo with the tzdata package, so every worker agrees.
"""

from __future__ import annotations

import importlib.resources
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import tz_win, win_tz

# IANA names CLDR does not map but that mean UTC (CLDR maps Etc/GMT, Etc/UTC, UTC, Zulu, ...).
_UTC_ALIASES = frozenset({"GMT"})
# Names Outlook reports for UTC besides "UTC" itself.
_GRAPH_UTC_NAMES = frozenset({"tzone://microsoft/utc", "coordinated universal time"})
_NOT_ZONES = frozenset({"Factory"})  # in tzdata, but a placeholder, not a place


class UnknownZone(ValueError):
    """A time-zone name the connector cannot use; `reason` says why."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name!r}: {reason}")
        self.name = name
        self.reason = reason


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
    """The Windows name Graph should be given for an IANA zone.

    CLDR lists aliases too (Asia/Calcutta and Asia/Kolkata, Etc/UTC and UTC). A zone CLDR does not
    map (Antarctica/Troll, a link created after the CLDR release) is returned as its IANA name,
    which Graph accepts as well.
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
