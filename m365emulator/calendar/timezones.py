"""Time zones at the Graph edge: Windows and IANA names in, `dateTimeTimeZone` out.

Graph accepts any Windows time-zone name and (a list of) IANA names in `start.timeZone`,
`end.timeZone`, `recurrence.range.recurrenceTimeZone` and `Prefer: outlook.timezone`. Inside the
emulator every zone is a `ZoneInfo`; the label the client used is kept for echoing back
(`originalStartTimeZone`, the `timeZone` of rendered `dateTimeTimeZone` values).

Name resolution is case-insensitive (Windows names via CLDR's mapping shipped in tzlocal). An
unknown zone in a payload is a 400 `TimeZoneNotSupportedException`; an unknown zone in `Prefer`
is ignored (UTC, and no `Preference-Applied`) [undocumented; the connector never sends one].
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from tzlocal.windows_tz import win_tz

from m365emulator.errors import GraphError

UTC_ZONE = ZoneInfo("UTC")

_EXTRA = {
    "utc": "UTC",
    "etc/utc": "UTC",
    "etc/gmt": "UTC",
    "gmt": "UTC",
    "z": "UTC",
    "coordinated universal time": "UTC",
    "tzone://microsoft/utc": "UTC",
}


@cache
def _lookup() -> dict[str, str]:
    table: dict[str, str] = {}
    for name in zoneinfo.available_timezones():
        table[name.lower()] = name
    for windows, iana in win_tz.items():
        table[windows.lower()] = iana
    table.update(_EXTRA)
    return table


@cache
def find_zone(label: str) -> ZoneInfo | None:
    """The zone for a Windows or IANA name (case-insensitive), or None."""
    key = _lookup().get(label.strip().lower())
    if key is None:
        return None
    if key == "UTC":
        return UTC_ZONE
    return ZoneInfo(key)


def resolve_zone(label: object) -> ZoneInfo:
    """A payload's zone name, or 400 like Outlook."""
    if not isinstance(label, str) or not label.strip():
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            "A valid TimeZone value must be specified. The following TimeZone value is not supported: ''.",
        )
    zone = find_zone(label)
    if zone is None:
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified. The following TimeZone value is not supported: "
            f"'{label}'.",
        )
    return zone


_FRACTION = re.compile(r"\.(\d+)")


def parse_in_zone(value: object, zone: ZoneInfo, field: str) -> datetime:
    """The wall-clock time of `value` in `zone` (naive). An explicit offset is honoured."""
    parsed = _parse_iso(value, field)
    if parsed.tzinfo is not None:
        return parsed.astimezone(zone).replace(tzinfo=None)
    return parsed


MIN_YEAR, MAX_YEAR = 1601, 4500  # Exchange's supported range


def _parse_iso(value: object, field: str) -> datetime:
    parsed = _parse_iso_any(value, field)
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise GraphError(400, "ErrorInvalidRequest", f"The value of '{field}' is out of the supported range.")
    return parsed


def _parse_iso_any(value: object, field: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise GraphError(400, "ErrorInvalidRequest", f"The property '{field}' is required.")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise GraphError(
                400, "ErrorInvalidRequest", f"Cannot convert the literal '{value}' to the expected type."
            ) from None
        return datetime.combine(day, time())


def parse_instant(value: str, field: str) -> datetime:
    """A query-string instant (`startDateTime`): with an offset as given, without one UTC."""
    parsed = _parse_iso(value, field)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def localize(wall: datetime, zone: ZoneInfo) -> datetime:
    """Wall clock in `zone` → aware UTC. Gap times resolve like zoneinfo's fold=0 (Exchange moves them on)."""
    return wall.replace(tzinfo=zone).astimezone(UTC)


def format_wall(value: datetime) -> str:
    """`2017-04-15T11:00:00.0000000` (Graph's seven fractional digits)."""
    return value.isoformat(timespec="microseconds")[:26] + "0"


def format_utc(value: datetime) -> str:
    """`createdDateTime`-style: `2017-04-15T03:00:50.7579581Z`."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:26] + "0Z"


def format_offset_z(value: datetime) -> str:
    """`originalStart`-style: `2017-09-04T18:00:00Z`."""
    return value.astimezone(UTC).isoformat(timespec="seconds")[:19] + "Z"


ONE_DAY = timedelta(days=1)
