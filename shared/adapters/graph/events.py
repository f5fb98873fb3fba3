"""Graph's event JSON into the connector's models: the hot path of every delta read.

msgraph-sdk's generated deserialisers cost milliseconds per event, so the delta pages are taken as raw
bytes and parsed here (about 20 µs per event, `json.loads` included; `benchmarks/parse_bench.py`).

Requests carry `Prefer: outlook.timezone="UTC"`, so `start`/`end` arrive as UTC wall clocks with seven
fractional digits (`2026-11-22T09:00:00.0000000`). Timed events become aware UTC datetimes; all-day
events become dates (the date part as Outlook shows it, never shifted by a zone). A `dateTimeTimeZone`
in another zone (the preference not honoured) is converted, Windows zone names included. Graph leaves
properties out freely (delta samples carry a handful), so everything but `id`, `start` and `end` has a
default.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.domain.calendar import Attendee, DeltaItem, EventKind, OutlookEvent, Person, RemovedEvent

_KINDS: Final = {kind.value: kind for kind in EventKind}
_UTC_NAMES: Final = frozenset(
    {"UTC", "utc", "Etc/UTC", "Etc/GMT", "tzone://Microsoft/Utc", "Coordinated Universal Time"}
)
_EMPTY: Final[dict[str, Any]] = {}


class EventPayloadError(ValueError):
    """Graph sent an event the connector cannot read (no id, no start or end, an unknown zone)."""


def parse_delta_page(body: bytes) -> tuple[list[DeltaItem], str | None, str | None]:
    """One page of `calendarView/delta`: (items in page order, `@odata.nextLink`, `@odata.deltaLink`).
    `@removed` entries become `RemovedEvent`s."""
    page = json.loads(body)
    items: list[DeltaItem] = [
        RemovedEvent(raw["id"]) if "@removed" in raw else parse_event(raw) for raw in page.get("value") or ()
    ]
    return items, page.get("@odata.nextLink"), page.get("@odata.deltaLink")


def parse_event(raw: dict[str, Any]) -> OutlookEvent:
    """One `microsoft.graph.event` (a calendarView instance) as the connector's model."""
    get = raw.get
    event_id = get("id")
    if not event_id:
        raise EventPayloadError("an event without an id")
    all_day = get("isAllDay") is True
    start = _when(get("start"), all_day, event_id, "start")
    end = _when(get("end"), all_day, event_id, "end")
    body = get("body") or _EMPTY
    location = get("location") or _EMPTY
    organizer = get("organizer")
    online = get("onlineMeeting")
    modified = get("lastModifiedDateTime")
    original = get("originalStart")
    response = get("responseStatus") or _EMPTY
    recurrence = get("recurrence")
    return OutlookEvent(
        id=event_id,
        change_key=get("changeKey"),
        ical_uid=get("iCalUId"),
        kind=_KINDS.get(get("type") or "", EventKind.SINGLE),
        series_master_id=get("seriesMasterId"),
        subject=get("subject") or "",
        body=body.get("content") or "",
        body_type=(body.get("contentType") or "text").lower(),
        location=location.get("displayName") or "",
        start=start,
        end=end,
        all_day=all_day,
        show_as=get("showAs") or "busy",
        sensitivity=get("sensitivity") or "normal",
        categories=tuple(get("categories") or ()),
        cancelled=get("isCancelled") is True,
        organizer=_person(organizer) if organizer else None,
        attendees=tuple(_attendee(a) for a in get("attendees") or ()),
        join_url=(online.get("joinUrl") if online else None) or get("onlineMeetingUrl") or None,
        original_time_zone=get("originalStartTimeZone") or None,
        last_modified=parse_graph_datetime(modified) if modified else None,
        transaction_id=get("transactionId"),
        original_start=parse_graph_datetime(original) if original else None,
        is_organizer=get("isOrganizer") if isinstance(get("isOrganizer"), bool) else None,
        response=response.get("response") or None,
        recurrence=recurrence if isinstance(recurrence, dict) else None,
        cancelled_dates=_cancelled_dates(get("cancelledOccurrences")),
    )


def _cancelled_dates(values: Any) -> tuple[date, ...]:
    """A series master's `cancelledOccurrences`, `OID.{masterId}.{yyyy-MM-dd}` (the occurrence's original
    local date, as the beta `occurrenceId` format shows): the dates, in order."""
    found: set[date] = set()
    for value in values or ():
        try:
            found.add(date.fromisoformat(str(value)[-10:]))
        except ValueError:
            continue  # an id in a form not known here names no date the connector can use
    return tuple(sorted(found))


def parse_graph_datetime(text: str) -> datetime:
    """A Graph date-time (`2026-11-22T09:00:00.0000000`, `…Z`, or with an offset) as an aware UTC datetime.
    Without an offset it is UTC (what `Prefer: outlook.timezone="UTC"` gives)."""
    value = datetime.fromisoformat(_trim(text))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _trim(text: str) -> str:
    """Seven fractional digits (Graph) down to six (Python); a trailing `Z` to an offset."""
    if len(text) == 27 and text[19] == ".":  # the usual shape: cut the seventh digit
        return text[:26]
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if len(text) > 26 and text[19] == ".":
        digits = 20
        while digits < len(text) and text[digits].isdigit():
            digits += 1
        if digits > 26:
            text = text[:26] + text[digits:]
    return text


def _when(value: Any, all_day: bool, event_id: str, name: str) -> datetime | date:
    if not value:
        raise EventPayloadError(f"event {event_id} has no {name}")
    text = value.get("dateTime") or value.get("DateTime")
    if not text:
        raise EventPayloadError(f"event {event_id} has no {name}.dateTime")
    if all_day:
        return date.fromisoformat(text[:10])  # the date as Outlook shows it, in any zone
    zone_name = value.get("timeZone") or value.get("TimeZone") or "UTC"
    if zone_name in _UTC_NAMES:
        return parse_graph_datetime(text)
    wall = datetime.fromisoformat(_trim(text))
    if wall.tzinfo is not None:
        return wall.astimezone(UTC)
    return wall.replace(tzinfo=_zone(zone_name, event_id)).astimezone(UTC)


@lru_cache(maxsize=256)
def _zone_named(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    from tzlocal.windows_tz import win_tz  # Windows zone names (as Exchange reports them) to IANA

    iana = win_tz.get(name)
    return ZoneInfo(iana) if iana else None


def _zone(name: str, event_id: str) -> tzinfo:
    zone = _zone_named(name)
    if zone is None:
        raise EventPayloadError(f"event {event_id} is in an unknown time zone {name!r}")
    return zone


def _person(raw: dict[str, Any]) -> Person | None:
    email = raw.get("emailAddress")
    if not email:
        return None
    return Person(email.get("name") or "", email.get("address") or "")


def _attendee(raw: dict[str, Any]) -> Attendee:
    email = raw.get("emailAddress") or _EMPTY
    status = raw.get("status") or _EMPTY
    return Attendee(
        email.get("name") or "",
        email.get("address") or "",
        raw.get("type") or "required",
        status.get("response") or "none",
    )
