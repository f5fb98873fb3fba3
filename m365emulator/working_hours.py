"""A mailbox's working hours (`microsoft.graph.workingHours`): the stored form, Graph's JSON, and the
validation `PATCH /users/{id}/mailboxSettings` applies.

Sources (microsoft-graph-docs-contrib): `resources/workinghours.md` (daysOfWeek, startTime, endTime as
`Edm.TimeOfDay`, timeZone a `timeZoneBase`), `api/user-get-mailboxsettings.md` (answers
`"startTime": "08:00:00.0000000"`, `"timeZone": {"name": "Pacific Standard Time"}` or a
`#microsoft.graph.customTimeZone`), `api/user-update-mailboxsettings.md` (a PATCH keeps what it does
not name; its error table: `RequestBodyRead` for a bad time, `ErrorInvalidTimeSettings` when the
start is not before the end, `InvalidArguments` for a bad day, `InvalidTimeZone` for a bad zone).

A mailbox nobody set working hours on works Monday to Friday, 08:00 to 17:00, in its own time zone
(the docs' examples; Outlook's default work week).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import time
from typing import Any

from m365emulator.errors import GraphError

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
CUSTOM_ZONE_TYPE = "#microsoft.graph.customTimeZone"
_TIME_OF_DAY = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?$")


@dataclass(frozen=True, slots=True)
class WorkingHours:
    days: tuple[str, ...]  # lower-case day names, in the order given
    start: time
    end: time
    time_zone: str  # a Windows or IANA name (the custom zone's `name` when `custom_zone` is set)
    custom_zone: dict[str, Any] | None = None  # a customTimeZone as given (day names lower-cased)

    def graph_json(self) -> dict[str, Any]:
        zone: dict[str, Any] = (
            dict(self.custom_zone) if self.custom_zone is not None else {"name": self.time_zone}
        )
        return {
            "daysOfWeek": list(self.days),
            "startTime": format_time_of_day(self.start),
            "endTime": format_time_of_day(self.end),
            "timeZone": zone,
        }


def default_working_hours(time_zone: str) -> WorkingHours:
    return WorkingHours(WEEKDAYS, time(8), time(17), time_zone)


def format_time_of_day(value: time) -> str:
    """`08:00:00.0000000`, as Graph writes an `Edm.TimeOfDay`."""
    return value.strftime("%H:%M:%S") + f".{value.microsecond:06d}0"


def parse_time_of_day(raw: object) -> time:
    """An `Edm.TimeOfDay` literal (`hh:mm`, `hh:mm:ss`, `hh:mm:ss.fffffff`), else Graph's 400."""
    bad = GraphError(
        400, "RequestBodyRead", f"Cannot convert the literal '{raw}' to the expected type 'Edm.TimeOfDay'."
    )
    match = _TIME_OF_DAY.match(raw) if isinstance(raw, str) else None
    if match is None:
        raise bad
    hours, minutes, seconds, fraction = match.groups()
    try:
        return time(int(hours), int(minutes), int(seconds or 0), int(((fraction or "") + "000000")[:6]))
    except ValueError:
        raise bad from None


def invalid_time_zone() -> GraphError:
    return GraphError(400, "InvalidTimeZone", "Time Zone settings provided are invalid.")


def _days(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise GraphError(400, "InvalidArguments", f"Requested value '{raw}' was not found.")
    out: list[str] = []
    for day in raw:
        if not isinstance(day, str) or day.lower() not in DAYS:
            raise GraphError(400, "InvalidArguments", f"Requested value '{day}' was not found.")
        if day.lower() not in out:
            out.append(day.lower())
    return tuple(out)


def _custom_zone(raw: dict[str, Any]) -> dict[str, Any]:
    """A customTimeZone (`resources/customtimezone.md`): `bias` (minutes), `name`, and the
    `standardOffset`/`daylightOffset` transitions. Kept as given and echoed; free/busy never needs it
    (availabilityView is computed from instants), so its rules are checked for shape only."""
    bias = raw.get("bias")
    if not isinstance(bias, int) or isinstance(bias, bool):
        raise invalid_time_zone()
    out: dict[str, Any] = {"@odata.type": CUSTOM_ZONE_TYPE, "bias": bias, "name": raw.get("name") or ""}
    for key in ("standardOffset", "daylightOffset"):
        offset = raw.get(key)
        if offset is None:
            continue
        if not isinstance(offset, dict):
            raise invalid_time_zone()
        shaped = dict(offset)
        day = shaped.get("dayOfWeek")
        if day is not None:
            if not isinstance(day, str) or day.lower() not in DAYS:
                raise GraphError(400, "InvalidArguments", f"Requested value '{day}' was not found.")
            shaped["dayOfWeek"] = day.lower()
        if "time" in shaped:
            shaped["time"] = format_time_of_day(parse_time_of_day(shaped["time"]))
        out[key] = shaped
    return out


def patched(current: WorkingHours, raw: object, known_zone: Any) -> WorkingHours:
    """`current` with what a PATCH's `workingHours` names changed (what it leaves out is kept).

    `known_zone(name)` says whether a zone name is a Windows or IANA name the service knows.
    """
    if not isinstance(raw, dict):
        raise GraphError(400, "RequestBodyRead", "Cannot read the value of 'workingHours'.")
    unknown = set(raw) - {"daysOfWeek", "startTime", "endTime", "timeZone", "@odata.type"}
    if unknown:
        name = sorted(unknown)[0]
        raise GraphError(
            400,
            "RequestBodyRead",
            f"The property '{name}' does not exist on type 'microsoft.graph.workingHours'. Make sure to "
            "only use property names that are defined by the type.",
        )
    out = current
    if "daysOfWeek" in raw:
        out = replace(out, days=_days(raw["daysOfWeek"]))
    if "startTime" in raw:
        out = replace(out, start=parse_time_of_day(raw["startTime"]))
    if "endTime" in raw:
        out = replace(out, end=parse_time_of_day(raw["endTime"]))
    if "timeZone" in raw:
        zone = raw["timeZone"]
        if not isinstance(zone, dict):
            raise invalid_time_zone()
        if str(zone.get("@odata.type", "")).lstrip("#").lower() == CUSTOM_ZONE_TYPE.lstrip("#").lower():
            custom = _custom_zone(zone)
            out = replace(out, time_zone=custom["name"], custom_zone=custom)
        else:
            name = zone.get("name")
            if not isinstance(name, str) or not known_zone(name):
                raise invalid_time_zone()
            out = replace(out, time_zone=name, custom_zone=None)
    if out.start >= out.end:
        raise GraphError(400, "ErrorInvalidTimeSettings", "Start Time should occur before End Time.")
    return out
