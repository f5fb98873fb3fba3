"""Graph free/busy: `POST /users/{id}/calendar/getSchedule` (app-only, so no `/me`).

Rules and where they come from (microsoft-graph-docs-contrib; [UNDOC] where the emulator chose):

- Body (`api/calendar-getschedule.md`): `schedules` (SMTP addresses), `startTime`/`endTime`
  (`dateTimeTimeZone`), `availabilityViewInterval` (minutes, default 30, 5-1440). Names are read
  case-insensitively (`concepts/outlook-get-free-busy-schedule.md` sends `Schedules`, `StartTime` and
  the interval as the string `"15"`, so a numeric string is taken too).
- Permission: Calendars.ReadBasic, Calendars.Read or Calendars.ReadWrite (application). With
  Calendars.ReadBasic only, items carry status and times only [UNDOC]; with Calendars.Read(Write)
  they also carry `subject`, `location` and `isPrivate` (the concept page's "Event data returned":
  only for `normal`/`personal` events; a `private` or `confidential` event shows `isPrivate` and no
  subject or location; an app has no "signed-in user" whose sharing could hide more).
- Answer: `value` holds one `scheduleInformation` per address, in the request's order
  (`resources/scheduleinformation.md`): `scheduleId` (the address as given), `availabilityView`,
  `scheduleItems`, `workingHours` (the mailbox's, `mailbox_settings.py`).
- Items (`resources/scheduleitem.md`): the calendar's expanded instances overlapping the window
  (single events, occurrences, exceptions; a cancelled occurrence is no instance), sorted by start,
  **not clipped** to the window (the example's 08:30-09:30 item in a window from 09:00). `status`
  is the event's `showAs`; `free` events are items too (the status list includes `free`); an
  attendee's copy of a meeting the organiser cancelled is left out [UNDOC]. Times are in the
  `Prefer: outlook.timezone` zone (default UTC), with `Preference-Applied` as events have it; an
  all-day event is the span of its own zone's midnights, converted like any instant [UNDOC].
- `availabilityView`: one digit per interval from `startTime`, the last interval possibly partial
  (ceil) [UNDOC]: `0` free, `1` tentative, `2` busy, `3` oof, `4` workingElsewhere (the resource
  page; the older concept page folds working elsewhere into `0`). Where items overlap, the strongest
  wins: oof > busy > tentative > workingElsewhere > free [UNDOC]; `unknown` counts as free.
- Limits (observed answers, quoted in docs issues): more than 100 addresses → 400
  `ErrorMailboxDataArrayTooBig` "There are too many target users in the EmailAddress array. The
  allowed size = 100; the actual size = N." (microsoft-graph-docs-contrib#5895; the concept page says
  20, the service allows 100); a window over 62 days → 400 `ErrorTimeIntervalTooBig` "The requested
  time duration specified for FreeBusyViewOptions.TimeWindow is too long. The allowed limit = 62
  days; the actual limit = N days." (microsoft-graph-docs#19703, which moved the concept page from
  42 to 62 days).
- An address the tenant doesn't know (or a user without a mailbox [UNDOC]) fails alone: its entry is
  `{"scheduleId", "error": {"message": "Unable to resolve e-mail address <a> to an Active Directory
  object.", "responseCode": "5009"}}` and nothing else, in a 200 (the shape observed in
  microsoft-graph-docs#11225).
- Other bad input is a 400 naming the field [UNDOC codes]: `ErrorInvalidParameter` for a missing or
  malformed `schedules`/`startTime`/`endTime`, an interval outside 5-1440, or an end not after the
  start; an unknown zone is `TimeZoneNotSupportedException` as for events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from m365emulator.calendar.model import Instance
from m365emulator.calendar.render import location_json
from m365emulator.calendar.timezones import (
    UTC_ZONE,
    find_zone,
    format_wall,
    localize,
    parse_in_zone,
    resolve_zone,
)
from m365emulator.errors import GraphError
from m365emulator.graph import claims_of, emulator_of, json_body, mailbox_user, param, respond

ROLES = ("Calendars.ReadBasic", "Calendars.Read", "Calendars.ReadWrite")
DETAIL_ROLES = ("Calendars.Read", "Calendars.ReadWrite")
MAX_SCHEDULES = 100
MAX_SPAN = timedelta(days=62)
DEFAULT_INTERVAL, MIN_INTERVAL, MAX_INTERVAL = 30, 5, 1440
DIGITS = {"free": 0, "tentative": 1, "busy": 2, "oof": 3, "workingElsewhere": 4}
STRENGTH = {"free": 0, "workingElsewhere": 1, "tentative": 2, "busy": 3, "oof": 4}
LOW_SENSITIVITY = ("normal", "personal")


@dataclass(frozen=True)
class ScheduleQuery:
    addresses: list[str]
    start: datetime  # aware UTC
    end: datetime
    interval: timedelta


def _invalid(name: str, why: str) -> GraphError:
    return GraphError(400, "ErrorInvalidParameter", f"The value of the parameter '{name}' is invalid: {why}.")


def _instant(body: dict[str, Any], name: str) -> datetime:
    raw = param(body, name)
    if not isinstance(raw, dict):
        raise _invalid(name, "a dateTimeTimeZone is required")
    fields = {str(k).lower(): v for k, v in raw.items()}
    zone = resolve_zone(fields.get("timezone"))
    if not isinstance(fields.get("datetime"), str):
        raise _invalid(name, "dateTime is required")
    return localize(parse_in_zone(fields["datetime"], zone, f"{name}.dateTime"), zone)


def _interval(body: dict[str, Any]) -> timedelta:
    raw = param(body, "availabilityViewInterval")
    if raw is None:
        return timedelta(minutes=DEFAULT_INTERVAL)
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if not isinstance(raw, int) or isinstance(raw, bool) or not MIN_INTERVAL <= raw <= MAX_INTERVAL:
        raise _invalid("availabilityViewInterval", f"minutes from {MIN_INTERVAL} to {MAX_INTERVAL}")
    return timedelta(minutes=raw)


def parse_query(body: dict[str, Any]) -> ScheduleQuery:
    addresses = param(body, "schedules")
    if not isinstance(addresses, list) or not addresses or not all(isinstance(a, str) for a in addresses):
        raise _invalid("schedules", "a non-empty collection of SMTP addresses is required")
    if len(addresses) > MAX_SCHEDULES:
        raise GraphError(
            400,
            "ErrorMailboxDataArrayTooBig",
            f"There are too many target users in the EmailAddress array. The allowed size = "
            f"{MAX_SCHEDULES}; the actual size = {len(addresses)}.",
        )
    start, end = _instant(body, "startTime"), _instant(body, "endTime")
    if end <= start:
        raise _invalid("endTime", "the end must be after the start")
    if end - start > MAX_SPAN:
        days = math.ceil((end - start) / timedelta(days=1))
        raise GraphError(
            400,
            "ErrorTimeIntervalTooBig",
            "The requested time duration specified for FreeBusyViewOptions.TimeWindow is too long. "
            f"The allowed limit = {MAX_SPAN.days} days; the actual limit = {days} days.",
        )
    return ScheduleQuery(addresses, start, end, _interval(body))


def availability_view(items: list[tuple[str, datetime, datetime]], query: ScheduleQuery) -> str:
    """One digit per interval: the strongest status among the items overlapping it."""
    slots = math.ceil((query.end - query.start) / query.interval)
    strongest = [-1] * slots
    for status, start, end in items:
        if status not in STRENGTH:
            continue
        first = max(0, math.floor((start - query.start) / query.interval))
        last = min(slots, math.ceil((end - query.start) / query.interval))
        for i in range(first, last):
            strongest[i] = max(strongest[i], STRENGTH[status])
    by_strength = {v: k for k, v in STRENGTH.items()}
    return "".join(str(DIGITS[by_strength[s]]) if s >= 0 else "0" for s in strongest)


class Renderer:
    """Schedule items as the request asks for them: output zone, and detail or free/busy only."""

    def __init__(self, zone: ZoneInfo, zone_label: str, detailed: bool) -> None:
        self.zone, self.zone_label, self.detailed = zone, zone_label, detailed

    def when(self, instant: datetime) -> dict[str, str]:
        local = instant.astimezone(self.zone).replace(tzinfo=None)
        return {"dateTime": format_wall(local), "timeZone": self.zone_label}

    def item(self, inst: Instance, status: str) -> dict[str, Any]:
        props = inst.event.props or {}
        out: dict[str, Any] = {}
        if self.detailed:
            sensitivity = props.get("sensitivity", "normal")
            out["isPrivate"] = sensitivity == "private"
            if sensitivity in LOW_SENSITIVITY:
                out["subject"] = inst.event.subject
                out["location"] = location_json(props.get("location")).get("displayName", "")
        out["status"] = status
        out["start"] = self.when(inst.start_utc)
        out["end"] = self.when(inst.end_utc)
        return out


def unresolved(address: str) -> dict[str, Any]:
    return {
        "scheduleId": address,
        "error": {
            "message": f"Unable to resolve e-mail address {address} to an Active Directory object.",
            "responseCode": "5009",
        },
    }


async def get_schedule(request: web.Request) -> web.Response:
    emu = emulator_of(request)
    caller = mailbox_user(request, request.match_info["user"], ROLES)
    query = parse_query(await json_body(request))
    claims = claims_of(request)
    label = request["prefer"].get("outlook.timezone", "")
    zone = find_zone(label) if label else None
    renderer = Renderer(zone or UTC_ZONE, label if zone else "UTC", bool(claims.roles & set(DETAIL_ROLES)))
    value: list[dict[str, Any]] = []
    for address in query.addresses:
        user = emu.directory.user_by_address(caller.tenant_id, address)
        if user is None or not user.mailbox_enabled:
            value.append(unresolved(address))
            continue
        items: list[dict[str, Any]] = []
        spans: list[tuple[str, datetime, datetime]] = []
        for inst in emu.mailboxes.store(user).view(query.start, query.end):
            props = inst.event.props or {}
            if props.get("isCancelled"):
                continue
            status = props.get("showAs", "busy")
            items.append(renderer.item(inst, status))
            spans.append((status, inst.start_utc, inst.end_utc))
        value.append(
            {
                "scheduleId": address,
                "availabilityView": availability_view(spans, query),
                "scheduleItems": items,
                "workingHours": user.working_hours.graph_json(),
            }
        )
    headers = {"Preference-Applied": f'outlook.timezone="{label}"'} if zone else None
    context = f"{emu.graph_url}/$metadata#Collection(microsoft.graph.scheduleInformation)"
    return respond({"@odata.context": context, "value": value}, headers=headers)


def add_routes(app: web.Application) -> None:
    for name in ("getSchedule", "microsoft.graph.getSchedule"):
        app.router.add_post(f"/v1.0/users/{{user}}/calendar/{name}", get_schedule)
