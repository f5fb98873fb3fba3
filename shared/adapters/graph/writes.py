"""Appointments written into mailbox calendars through Graph (`CalendarWriter`).

The connector's `EventDraft` becomes Graph's event JSON here and nowhere else: IANA zones become Windows
names with the same UTC offsets over the event or series, else "UTC" (`shared/domain/timezones.py`), an
all-day appointment is written as midnight-to-midnight in its zone, the RRULE becomes `patternedRecurrence`
(`shared/domain/recurrence.py`). Every create carries
the copy's `transactionId` (Graph answers a retried create with the event made the first time) and every
event the connector's extended property (the host appointment id), so a lost answer never makes a second
event and migration finds the connector's events again. Requests carry `Prefer: outlook.timezone="UTC"`
and immutable ids, so the answers parse into the same `OutlookEvent`s (and ids) as a delta read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from urllib.parse import quote

from shared.adapters.graph.calendar import (
    IMMUTABLE_IDS,
    MAX_PAGES,
    NO_MAILBOX,
    NO_USER,
    UTC_TIMES,
    GraphPort,
    user_path,
)
from shared.adapters.graph.errors import GraphError, GraphNotFound, GraphPreconditionFailed
from shared.adapters.graph.events import parse_event, parse_graph_datetime
from shared.domain import recurrence as rules
from shared.domain.appointments import EventDraft, Override, WrittenShape, shape_of
from shared.domain.calendar import APPOINTMENT_PROPERTY_ID, OutlookEvent
from shared.domain.tenants import Tenant
from shared.domain.timezones import require_zone, single_zone, wall_clock
from shared.service.errors import EventChanged, EventMissing, EventRejected
from shared.service.records import WrittenEvent

PREFER: Final = {"Prefer": f"{UTC_TIMES}, {IMMUTABLE_IDS}"}
WRITTEN_FIELDS: Final = "id,changeKey,iCalUId,onlineMeeting"
_MAILBOX_GONE: Final = NO_USER | NO_MAILBOX


def event_payload(draft: EventDraft) -> dict[str, Any]:
    """Graph's JSON for a draft (everything the connector owns; PATCH sends the same, so an Outlook edit to
    any of it is put back)."""
    recurrence = (
        rules.to_graph(draft.recurrence.rrule, draft.start, draft.time_zone, draft.end)
        if draft.recurrence
        else None
    )  # a series is written in its recurrence's zone, one event in a zone exact over its own span
    if recurrence is not None:
        zone = recurrence["range"]["recurrenceTimeZone"]
    else:
        zone = single_zone(draft.time_zone, draft.start, draft.end)
    payload: dict[str, Any] = {
        "subject": draft.subject,
        "body": {"contentType": draft.body_type, "content": draft.body},
        "location": {"displayName": draft.location},
        "start": _graph_time(draft.start, zone),
        "end": _graph_time(draft.end, zone),
        "isAllDay": draft.all_day,
        "showAs": draft.show_as,
        "sensitivity": draft.sensitivity,
        "categories": list(draft.categories),
        "attendees": [
            {"type": "required", "emailAddress": {"name": a.name, "address": a.address}}
            for a in draft.attendees
        ],
        "recurrence": recurrence,
        "singleValueExtendedProperties": [{"id": APPOINTMENT_PROPERTY_ID, "value": draft.appointment_id}],
    }
    if draft.online_meeting:
        payload["isOnlineMeeting"] = True
        payload["onlineMeetingProvider"] = "teamsForBusiness"
    return payload


def occurrence_payload(draft: EventDraft, override: Override) -> dict[str, Any]:
    zone = single_zone(draft.time_zone, override.start, override.end)
    payload: dict[str, Any] = {
        "start": _graph_time(override.start, zone),
        "end": _graph_time(override.end, zone),
    }
    if override.subject is not None:
        payload["subject"] = override.subject
    if override.location is not None:
        payload["location"] = {"displayName": override.location}
    if override.body is not None:
        payload["body"] = {"contentType": draft.body_type, "content": override.body}
    return payload


def _graph_time(value: datetime | date, windows: str) -> dict[str, str]:
    if isinstance(value, datetime):
        return {"dateTime": wall_clock(value, windows).isoformat(timespec="seconds"), "timeZone": windows}
    return {"dateTime": f"{value.isoformat()}T00:00:00", "timeZone": windows}


def _written(raw: dict[str, Any]) -> WrittenEvent:
    online = raw.get("onlineMeeting") or {}
    event = parse_event(raw) if raw.get("start") and raw.get("end") else None
    written_hash = None
    if event is not None:
        shape = [raw.get("recurrence"), sorted(raw.get("cancelledOccurrences") or ())]
        series = json.dumps(shape, sort_keys=True) if raw.get("recurrence") else ""
        written_hash = hashlib.blake2b(f"{event.written_hash()}{series}".encode(), digest_size=16).hexdigest()
    return WrittenEvent(
        id=str(raw["id"]),
        change_key=raw.get("changeKey"),
        ical_uid=raw.get("iCalUId"),
        join_url=online.get("joinUrl") or None,
        event=event,
        written_hash=written_hash,
        shape=_shape(event, raw) if event is not None else None,
        conference_id=online.get("conferenceId") or None,
        toll_number=online.get("tollNumber") or None,
        original_start=parse_graph_datetime(str(raw["originalStart"])) if raw.get("originalStart") else None,
    )


def _shape(event: OutlookEvent, raw: dict[str, Any]) -> WrittenShape | None:
    """What Outlook holds, comparable with a draft: a series' pattern read back as an RRULE, and the dates of
    its cancelled occurrences (`OID.{masterId}.{yyyy-MM-dd}`)."""
    rrule = None
    if raw.get("recurrence"):
        try:
            rrule = rules.from_graph(raw["recurrence"], all_day=event.all_day)
        except ValueError:
            return None
    cancelled = []
    for oid in raw.get("cancelledOccurrences") or ():
        try:
            cancelled.append(date.fromisoformat(str(oid).rsplit(".", 1)[-1]))
        except ValueError:
            return None
    return shape_of(event, rrule, cancelled)


def _if_match(change_key: str | None) -> dict[str, str]:
    return {**PREFER, "If-Match": f'W/"{change_key}"'} if change_key else PREFER


class GraphCalendarWriter(GraphPort):
    """`CalendarWriter` over Graph."""

    async def _send(
        self,
        tenant: Tenant,
        method: str,
        url: str,
        graph_user_id: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        graph = await self._graph(tenant)
        try:
            return await graph.request_json(method, url, body, headers=headers or PREFER)
        except GraphPreconditionFailed as error:
            raise EventChanged(f"{error.code}: {error.message}") from error
        except GraphNotFound as error:
            if "/events/" in url and error.code.lower() not in _MAILBOX_GONE:
                raise EventMissing(url) from error
            raise await self._translated(graph, error, graph_user_id) from error
        except GraphError as error:
            if error.status == 400:
                raise EventRejected(f"Graph refused the event ({error.code}): {error.message}") from error
            raise await self._translated(graph, error, graph_user_id) from error

    def _events(self, graph_user_id: str, event_id: str | None = None) -> str:
        base = f"{user_path(graph_user_id)}/events"
        return f"{base}/{quote(event_id, safe='')}" if event_id else base

    async def create(
        self, tenant: Tenant, graph_user_id: str, draft: EventDraft, transaction_id: str
    ) -> WrittenEvent:
        body = {**event_payload(draft), "transactionId": transaction_id}
        if not draft.recurrence:
            body.pop("recurrence")
        raw = await self._send(tenant, "POST", self._events(graph_user_id), graph_user_id, body=body)
        return _written(raw)

    async def update(
        self, tenant: Tenant, graph_user_id: str, event_id: str, draft: EventDraft, if_match: str | None
    ) -> WrittenEvent:
        url = self._events(graph_user_id, event_id)
        body = event_payload(draft)
        if draft.attendees and await self._same_attendees(tenant, graph_user_id, url, draft):
            # The attendee list is sent whole, each with the status it carries: sent again unchanged it would
            # answer every attendee's response with `none`. Left out, the meeting keeps its responses.
            body.pop("attendees")
        raw = await self._send(tenant, "PATCH", url, graph_user_id, body=body, headers=_if_match(if_match))
        return _written(raw)

    async def _same_attendees(self, tenant: Tenant, graph_user_id: str, url: str, draft: EventDraft) -> bool:
        """Whether the meeting already invites exactly the draft's attendees (by address)."""
        current = await self._send(tenant, "GET", f"{url}?$select=attendees", graph_user_id)
        held = {
            str((a.get("emailAddress") or {}).get("address") or "").lower()
            for a in (current or {}).get("attendees") or ()
        }
        return held == {a.address.lower() for a in draft.attendees}

    async def update_occurrence(
        self, tenant: Tenant, graph_user_id: str, occurrence_id: str, draft: EventDraft, override: Override
    ) -> WrittenEvent:
        url = self._events(graph_user_id, occurrence_id)
        raw = await self._send(tenant, "PATCH", url, graph_user_id, body=occurrence_payload(draft, override))
        return _written(raw)

    async def delete(self, tenant: Tenant, graph_user_id: str, event_id: str) -> None:
        try:
            await self._send(tenant, "DELETE", self._events(graph_user_id, event_id), graph_user_id)
        except EventMissing:
            return

    async def read(self, tenant: Tenant, graph_user_id: str, event_id: str) -> WrittenEvent:
        raw = await self._send(tenant, "GET", self._events(graph_user_id, event_id), graph_user_id)
        return _written(raw)

    async def occurrences(
        self, tenant: Tenant, graph_user_id: str, master_id: str, days: Sequence[date], time_zone: str
    ) -> dict[date, WrittenEvent]:
        if not days:
            return {}
        zone = require_zone(time_zone)
        start = datetime.combine(min(days) - timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
        end = datetime.combine(max(days) + timedelta(days=2), time(), tzinfo=zone).astimezone(UTC)
        wanted = set(days)
        url: str | None = (
            f"{self._events(graph_user_id, master_id)}/instances"
            f"?startDateTime={start:%Y-%m-%dT%H:%M:%SZ}&endDateTime={end:%Y-%m-%dT%H:%M:%SZ}"
            f"&$select={WRITTEN_FIELDS},originalStart,start,end,isAllDay,type,seriesMasterId&$top=1000"
        )
        found: dict[date, WrittenEvent] = {}
        pages = 0
        while url and pages < MAX_PAGES:
            pages += 1
            page = await self._send(tenant, "GET", url, graph_user_id)
            for raw in page.get("value") or ():
                original = raw.get("originalStart")
                if not original:
                    continue
                day = parse_graph_datetime(str(original)).astimezone(zone).date()
                if day in wanted:
                    found[day] = _written(raw)
            url = page.get("@odata.nextLink")
        return found

    async def find_by_ical_uid(
        self, tenant: Tenant, graph_user_id: str, ical_uid: str
    ) -> WrittenEvent | None:
        condition = quote(f"iCalUId eq '{ical_uid.replace(chr(39), chr(39) * 2)}'", safe="")
        url = f"{self._events(graph_user_id)}?$filter={condition}&$select={WRITTEN_FIELDS}"
        page = await self._send(tenant, "GET", url, graph_user_id)
        for raw in page.get("value") or ():
            return _written(raw)
        return None
