"""Stored events → Graph JSON (`microsoft.graph.event`, v1.0 wire names and defaults).

- `body` as Exchange answers it (bodies.py): HTML unless `Prefer: outlook.body-content-type="text"`.
- `start`/`end` are rendered in the requested zone (`Prefer: outlook.timezone`, default UTC)
  with seven fractional digits; all-day events keep their dates (midnight to midnight in the
  requested zone, never shifted by the zone difference), like Outlook.
- `iCalUId` derives from the id, except on attendee copies of a meeting (the organiser's);
  `isCancelled` is true only on attendee copies the organiser cancelled (invitations.py).
- `singleValueExtendedProperties` only when expanded; `transactionId` only when set;
  `cancelledOccurrences` (`OID.{masterId}.{yyyy-MM-dd}`, the original local date) only on series
  masters.
- Occurrences carry the master's data and change key, their own id and iCalUId, `type`
  `occurrence`, `seriesMasterId`, `originalStart` (UTC, `...Z`) and `recurrence: null`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from m365emulator.calendar import bodies, ids
from m365emulator.calendar.model import MailboxOwner, StoredEvent
from m365emulator.calendar.timezones import UTC_ZONE, format_offset_z, format_utc, format_wall, localize

PROP_DEFAULTS: dict[str, Any] = {
    "reminderMinutesBeforeStart": 15,
    "isReminderOn": True,
    "hideAttendees": False,
    "importance": "normal",
    "sensitivity": "normal",
    "isDraft": False,
    "responseRequested": True,
    "showAs": "busy",
    "allowNewTimeProposals": True,
}
ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class View:
    """How to render: output zone, extended-property expansion, and the owner (the organizer)."""

    owner: MailboxOwner
    zone: ZoneInfo = UTC_ZONE
    zone_label: str = "UTC"
    expand_ext: frozenset[str] | None = None  # normalised ids; empty set = all
    ext_all: bool = False
    body_type: str | None = None  # `Prefer: outlook.body-content-type` (None: HTML, Graph's default)
    immutable_ids: bool = False  # `Prefer: IdType="ImmutableId"`: ids are the items' immutable ids


def occurrence_walls(master: StoredEvent, day: date) -> tuple[datetime, datetime]:
    """Start wall (master's start zone) and end wall (its end zone) of the occurrence on `day`."""
    start = datetime.combine(day, master.start.time())
    if master.is_all_day or master.start_zone is master.end_zone:
        return start, start + (master.end - master.start)
    length = localize(master.end, master.end_zone) - localize(master.start, master.start_zone)
    end_utc = localize(start, master.start_zone) + length
    return start, end_utc.astimezone(master.end_zone).replace(tzinfo=None)


def instant_span(ev: StoredEvent, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """UTC instants of a wall span (all-day events: midnights in the event's own zone)."""
    return localize(start, ev.start_zone), localize(end, ev.end_zone)


def _dtz(wall: datetime, zone: ZoneInfo, ev: StoredEvent, view: View) -> dict[str, str]:
    if ev.is_all_day:
        return {"dateTime": format_wall(wall), "timeZone": view.zone_label}
    local = localize(wall, zone).astimezone(view.zone).replace(tzinfo=None)
    return {"dateTime": format_wall(local), "timeZone": view.zone_label}


def body_preview(ev: StoredEvent) -> str:
    return bodies.preview(ev.body_type, ev.body)


def organizer_of(ev: StoredEvent, owner: MailboxOwner) -> dict[str, Any]:
    if ev.organizer is not None:
        return ev.organizer
    return {"emailAddress": {"name": owner.display_name, "address": owner.mail or owner.upn}}


def is_organizer(ev: StoredEvent, owner: MailboxOwner) -> bool:
    if ev.organizer is None:
        return True
    address = str(ev.organizer.get("emailAddress", {}).get("address", "")).lower()
    return address in {owner.upn.lower(), (owner.mail or "").lower()}


def location_json(value: dict[str, Any] | str | None, unique_type: str = "private") -> dict[str, Any]:
    if value is None:
        return {
            "displayName": "",
            "locationType": "default",
            "uniqueIdType": "unknown",
            "address": {},
            "coordinates": {},
        }
    if isinstance(value, str):
        if unique_type == "private":
            return {
                "displayName": value,
                "locationType": "default",
                "uniqueId": value,
                "uniqueIdType": "private",
            }
        return {"displayName": value, "locationType": "default", "uniqueIdType": "unknown"}
    return dict(value)


def _locations(props: dict[str, Any]) -> list[dict[str, Any]]:
    if "locations" in props:
        return [location_json(x, "unknown") for x in props["locations"]]
    loc = props.get("location")
    return [location_json(loc, "unknown")] if loc else []


def _attendees(props: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "type": kind,
            "status": {"response": response, "time": at},
            "emailAddress": {"name": name, "address": address},
        }
        for kind, response, at, name, address in props.get("attendees", ())
    ]


def shown_id(rest_id: str, view: View) -> str:
    """An id as the request asked for it: the REST id, or the immutable one."""
    return ids.immutable_id(rest_id) if view.immutable_ids else rest_id


def render(
    ev: StoredEvent,
    view: View,
    *,
    occurrence_of: date | None = None,
) -> dict[str, Any]:
    """The Graph JSON of a single instance, master or exception, or of the occurrence of `ev`
    (a master) on `occurrence_of`."""
    props = ev.props or {}
    kind: str = ev.kind
    event_id = ev.id
    start, end = ev.start, ev.end
    original: date | None = ev.original_date
    master_id = ev.master_id
    if occurrence_of is not None:
        kind = "occurrence"
        event_id = ids.occurrence_id(ev.id, occurrence_of)
        start, end = occurrence_walls(ev, occurrence_of)
        original = occurrence_of
        master_id = ev.id
    out: dict[str, Any] = {
        "@odata.etag": ev.etag,
        "id": shown_id(event_id, view),
        "createdDateTime": format_utc(ev.created),
        "lastModifiedDateTime": format_utc(ev.modified),
        "changeKey": ev.change_key,
        "categories": list(props.get("categories", ())),
    }
    if ev.transaction_id is not None:
        out["transactionId"] = ev.transaction_id
    out["originalStartTimeZone"] = ev.start_zone_label
    out["originalEndTimeZone"] = ev.end_zone_label
    out["iCalUId"] = _ical_uid(ev, event_id, occurrence_of)
    for key in ("reminderMinutesBeforeStart", "isReminderOn"):
        out[key] = props.get(key, PROP_DEFAULTS[key])
    out["hasAttachments"] = False
    out["subject"] = ev.subject
    out["bodyPreview"] = body_preview(ev)
    for key in ("importance", "sensitivity"):
        out[key] = props.get(key, PROP_DEFAULTS[key])
    out["isAllDay"] = ev.is_all_day
    out["isCancelled"] = props.get("isCancelled", False)
    out["isOrganizer"] = is_organizer(ev, view.owner)
    for key in ("hideAttendees", "isDraft", "responseRequested", "showAs", "allowNewTimeProposals"):
        out[key] = props.get(key, PROP_DEFAULTS[key])
    out["seriesMasterId"] = shown_id(master_id, view) if master_id is not None else None
    out["type"] = kind
    if original is not None and master_id is not None:
        out["originalStart"] = format_offset_z(_original_start(ev, original, occurrence_of is not None))
    out["webLink"] = (
        f"https://outlook.office365.com/owa/?itemid={quote(event_id, safe='')}&exvsurl=1&path=/calendar/item"
    )
    out.update(_online(ev))
    out["responseStatus"] = props.get(
        "responseStatus",
        {"response": "organizer", "time": ZERO_TIME}
        if out["isOrganizer"]
        else {"response": "none", "time": ZERO_TIME},
    )
    body_type, content = bodies.rendered(ev.body_type, ev.body, view.body_type)
    out["body"] = {"contentType": body_type, "content": content}
    out["start"] = _dtz(start, ev.start_zone, ev, view)
    out["end"] = _dtz(end, ev.end_zone, ev, view)
    out["location"] = location_json(props.get("location"))
    out["locations"] = _locations(props)
    out["recurrence"] = (
        ev.recurrence.to_graph(ev.start_zone_label)
        if ev.recurrence is not None and occurrence_of is None and kind == "seriesMaster"
        else None
    )
    if kind == "seriesMaster":
        out["cancelledOccurrences"] = [f"OID.{ev.id}.{day.isoformat()}" for day in sorted(ev.cancelled or ())]
    out["attendees"] = _attendees(props)
    out["organizer"] = organizer_of(ev, view.owner)
    if view.expand_ext is not None:
        out["singleValueExtendedProperties"] = [
            {"id": given, "value": value}
            for key, (given, value) in (ev.ext or {}).items()
            if view.ext_all or key in view.expand_ext
        ]
    return out


def _ical_uid(ev: StoredEvent, event_id: str, occurrence_of: date | None) -> str:
    """Derived from the id, except on an attendee's copy of a meeting: the organiser's."""
    if ev.meeting is None:
        return ids.ical_uid_of(event_id)
    if occurrence_of is not None:
        return ids.occurrence_ical_uid(ev.meeting.uid, occurrence_of)
    return ev.ical_uid


def _online(ev: StoredEvent) -> dict[str, Any]:
    online = ev.online
    return {
        "onlineMeetingUrl": None,
        "isOnlineMeeting": online is not None,
        "onlineMeetingProvider": "teamsForBusiness" if online is not None else "unknown",
        "onlineMeeting": dict(online) if online is not None else None,
    }


def _original_start(ev: StoredEvent, day: date, is_occurrence: bool) -> datetime:
    """The UTC instant the occurrence was scheduled at (an exception recorded it when it was made)."""
    if is_occurrence:
        start, _ = occurrence_walls(ev, day)
        return localize(start, ev.start_zone)
    if ev.original_start is not None:
        return ev.original_start
    return localize(datetime.combine(day, ev.start.time()), ev.start_zone)
