"""One mailbox's calendar: events, series, exceptions, cancelled occurrences, and their changes.

The store speaks Graph-shaped payloads in and `StoredEvent`s out (routes render them). Every
create/update/delete of a single instance, series master, exception or cancelled occurrence
calls `on_change` with the changed item's id and appends the affected item (for anything in a
series: its master) to a change log that calendarView delta reads incrementally.

Behaviour where the contract is silent (see also NOTES.md):
- A duplicate POST with a `transactionId` already used in this mailbox answers the existing event
  (201, same id, no change, no notification) while that event exists.
- `If-Match` accepts `W/"ck"`, `"ck"`, `ck` or `*`; a mismatch is 412 `ErrorIrresolvableConflict`.
- A series master's `start`/`end` are normalised to its first occurrence (the first date on/after
  `range.startDate` matching the pattern, at the start's wall-clock time), as Outlook shows it.
- PATCH on an occurrence makes it an exception with the occurrence's id; DELETE (or cancel) on an
  occurrence or exception cancels that date. PATCHing a master's `recurrence` (or its start
  date) keeps only the exceptions and cancellations whose dates the new pattern still has.
  Exceptions are copies of the master taken when made; later master edits of other properties
  don't flow into them.
- `isOnlineMeeting: true` makes a Teams meeting whatever the provider; once on, it can't be turned
  off (the request is accepted, the meeting stays).
- Unknown properties in a payload are 400 `RequestBodyRead`; read-only ones are ignored.
- Meetings: with a `router` (attendee address → another mailbox's store of the same tenant), an
  item organised here that has attendees in the tenant is delivered to their calendars, and its
  updates, cancellations and deletion follow (invitations.py). Seeding never delivers.
"""

from __future__ import annotations

import bisect
import secrets
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from m365emulator.calendar import bodies, ids, invitations
from m365emulator.calendar.delta import DeltaTracker
from m365emulator.calendar.model import ChangeEvent, Instance, Kind, MailboxOwner, StoredEvent
from m365emulator.calendar.query import ext_key
from m365emulator.calendar.recurrence import Recurrence, expand, first_date, occurs_on, parse_recurrence
from m365emulator.calendar.render import ZERO_TIME, View, instant_span, is_organizer, occurrence_walls, render
from m365emulator.calendar.timezones import (
    ONE_DAY,
    UTC_ZONE,
    localize,
    parse_in_zone,
    resolve_zone,
)
from m365emulator.clock import Clock
from m365emulator.errors import GraphError, not_found

_ENUMS: dict[str, tuple[str, ...]] = {
    "showAs": ("unknown", "free", "tentative", "busy", "oof", "workingElsewhere"),
    "sensitivity": ("normal", "personal", "private", "confidential"),
    "importance": ("low", "normal", "high"),
}
_PASS_BOOL = ("isReminderOn", "responseRequested", "allowNewTimeProposals", "hideAttendees", "isDraft")
_READ_ONLY = {
    "@odata.etag",
    "@odata.type",
    "@odata.context",
    "id",
    "changeKey",
    "createdDateTime",
    "lastModifiedDateTime",
    "iCalUId",
    "type",
    "seriesMasterId",
    "originalStart",
    "webLink",
    "hasAttachments",
    "bodyPreview",
    "isOrganizer",
    "isCancelled",
    "onlineMeeting",
    "onlineMeetingUrl",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "responseStatus",
    "cancelledOccurrences",
    "exceptionOccurrences",
    "instances",
    "calendar",
    "attachments",
    "extensions",
    "multiValueExtendedProperties",
    "occurrenceId",
}
_WRITABLE = {
    "subject",
    "body",
    "start",
    "end",
    "isAllDay",
    "recurrence",
    "categories",
    "showAs",
    "sensitivity",
    "importance",
    "attendees",
    "location",
    "locations",
    "reminderMinutesBeforeStart",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "singleValueExtendedProperties",
    "transactionId",
    "organizer",
    *_PASS_BOOL,
}
MAX_ATTENDEES = 500


def _bad(message: str, code: str = "ErrorInvalidParameter") -> GraphError:
    return GraphError(400, code, message)


def _enum_value(field: str, value: object) -> str:
    for name in _ENUMS[field]:
        if isinstance(value, str) and name.lower() == value.lower():
            return name
    raise _bad(f"The value '{value}' is not valid for the property '{field}'.", "RequestBodyRead")


class CalendarStore:
    """The calendar of one mailbox."""

    def __init__(
        self,
        owner: MailboxOwner,
        clock: Clock,
        on_change: Callable[[ChangeEvent], None],
        *,
        delta_token_lifetime: timedelta | None = None,
        router: Callable[[str], CalendarStore | None] | None = None,
    ) -> None:
        self.owner = owner
        self.clock = clock
        self.on_change = on_change
        self.router = router  # meeting delivery; None: a calendar on its own (no invitations)
        self._received: dict[str, str] = {}  # iCalUId of a meeting organised elsewhere -> our copy
        self.delta_token_lifetime = delta_token_lifetime  # None: delta.TOKEN_LIFETIME
        self.items: dict[str, StoredEvent] = {}  # single instances and series masters
        self._by_transaction: dict[str, str] = {}
        self._ews: dict[str, str] = {}
        # change log: parallel lists, ascending sequence numbers
        self.seq = 0
        self._log_seq: list[int] = []
        self._log_ids: list[str] = []
        self.delta = DeltaTracker(self)

    # ------------------------------------------------------------------------------- seam API

    def seed_event(self, payload: dict[str, Any], *, ews_id: str | None = None) -> dict[str, Any]:
        """Create an event as a user would in Outlook; the Graph JSON (UTC) of what was created."""
        ev = self.create(payload, seeding=True)
        if ews_id:
            self._ews[ews_id] = ev.id
        return render(ev, View(self.owner))

    def find_by_ews_id(self, ews_id: str) -> str | None:
        found = self._ews.get(ews_id)
        if found is not None:
            return found if self._exists(found) else None
        candidate = ids.rest_id_from_ews(ews_id)
        try:
            return candidate if self._exists(candidate) else None
        except GraphError:
            return None

    def ews_id_of(self, event_id: str) -> str:
        for legacy, rest in self._ews.items():
            if rest == event_id:
                return legacy
        return ids.ews_id(event_id)

    def expire_delta_tokens(self) -> int:
        return self.delta.expire_all()

    def event_count(self) -> int:
        return len(self.items)

    # ------------------------------------------------------------------------------- reading

    def _exists(self, event_id: str) -> bool:
        try:
            self.get(event_id)
        except GraphError:
            return False
        return True

    def get(self, event_id: str) -> tuple[StoredEvent, date | None]:
        """(stored event, None) or (master, original date) for a live occurrence; 404 otherwise."""
        base, day = ids.parse_id(event_id)
        ev = self.items.get(base)
        if ev is None:
            raise not_found()
        if day is None:
            return ev, None
        if ev.kind != "seriesMaster" or ev.recurrence is None:
            raise not_found()
        if ev.exceptions and day in ev.exceptions:
            return ev.exceptions[day], None
        if (ev.cancelled and day in ev.cancelled) or not occurs_on(ev.recurrence, day):
            raise not_found()
        return ev, day

    def list_events(self) -> list[StoredEvent]:
        return list(self.items.values())

    def view(self, start: datetime, end: datetime) -> list[Instance]:
        out: list[Instance] = []
        for ev in self.items.values():
            out.extend(self.instances_of(ev, start, end))
        out.sort(key=lambda i: (i.start_utc, i.id))
        return out

    def instances_of(self, ev: StoredEvent, start: datetime, end: datetime) -> list[Instance]:
        """The calendar-view instances of one stored item within [start, end)."""
        if ev.kind != "seriesMaster" or ev.recurrence is None:
            s, e = instant_span(ev, ev.start, ev.end)
            return [Instance(ev, ev.id, s, e)] if _overlaps(s, e, start, end) else []
        out: list[Instance] = []
        zone = ev.start_zone
        span_days = (ev.end - ev.start).days + 2
        since = start.astimezone(zone).date() - timedelta(days=span_days)
        until = end.astimezone(zone).date() + ONE_DAY
        skip = set(ev.cancelled or ())
        if ev.exceptions:
            skip.update(ev.exceptions)
        for day in expand(ev.recurrence, until, since=since):
            if day in skip:
                continue
            sw, ew = occurrence_walls(ev, day)
            s, e = instant_span(ev, sw, ew)
            if _overlaps(s, e, start, end):
                out.append(Instance(ev, ids.occurrence_id(ev.id, day), s, e, day))
        for day, exc in (ev.exceptions or {}).items():
            s, e = instant_span(exc, exc.start, exc.end)
            if _overlaps(s, e, start, end):
                out.append(Instance(exc, exc.id, s, e, day))
        return out

    # ------------------------------------------------------------------------------- writing

    def create(self, payload: dict[str, Any], *, seeding: bool = False) -> StoredEvent:
        if not isinstance(payload, dict):
            raise _bad("Empty Payload. JSON content expected.", "BadRequest")
        transaction = payload.get("transactionId")
        if transaction is not None:
            if not isinstance(transaction, str):
                raise _bad("The value of 'transactionId' is not valid.", "RequestBodyRead")
            existing = self._by_transaction.get(transaction)
            if existing is not None and existing in self.items:
                return self.items[existing]
        if payload.get("start") is None or payload.get("end") is None:
            raise _bad("The event must have a start and an end.", "ErrorInvalidRequest")
        now = self.clock.now()
        ev = StoredEvent(
            id=ids.new_event_id(),
            kind="singleInstance",
            change_key=ids.new_change_key(),
            created=now,
            modified=now,
            start=now.replace(tzinfo=None),
            end=now.replace(tzinfo=None),
            start_zone=UTC_ZONE,
            end_zone=UTC_ZONE,
            start_zone_label="UTC",
            end_zone_label="UTC",
        )
        self._apply(ev, payload, creating=True, seeding=seeding)
        if transaction is not None:
            ev.transaction_id = transaction
            self._by_transaction[transaction] = ev.id
        self.items[ev.id] = ev
        self._changed(ev.id)
        self._notify("created", ev.id, ev.etag)
        if not seeding and ev.props and ev.props.get("attendees") and invitations.organises(self, ev):
            invitations.after_create(self, ev, now)
        return ev

    def update(
        self, event_id: str, payload: dict[str, Any], if_match: str | None
    ) -> tuple[StoredEvent, None]:
        if not isinstance(payload, dict):
            raise _bad("Empty Payload. JSON content expected.", "BadRequest")
        target, day = self.get(event_id)
        _check_etag(target, if_match)
        now = self.clock.now()
        if day is not None:  # an occurrence becomes an exception
            master = target
            if "recurrence" in payload and payload["recurrence"] is not None:
                raise _bad("An occurrence of a series can't have a recurrence.")
            exc = self._make_exception(master, day, now)
            self._apply(exc, payload, creating=False, seeding=False)
            master.exceptions = master.exceptions or {}
            master.exceptions[day] = exc
            self._touch(master, now)
            self._changed(master.id)
            self._notify("updated", exc.id, exc.etag)
            self._notify("updated", master.id, master.etag)
            self._meeting_changed(master, invitations.attendees_of(master), now, days=(day,))
            return exc, None
        if target.kind == "exception" and payload.get("recurrence") is not None:
            raise _bad("An occurrence of a series can't have a recurrence.")
        before = invitations.attendees_of(target)
        schedule = invitations.schedule_of(target) if before or "attendees" in payload else None
        self._apply(target, payload, creating=False, seeding=False)
        self._touch(target, now)
        if target.kind == "exception":
            master = self.items[target.master_id or ""]
            self._touch(master, now)
            self._changed(master.id)
            self._notify("updated", target.id, target.etag)
            self._notify("updated", master.id, master.etag)
            day = target.original_date
            self._meeting_changed(master, invitations.attendees_of(master), now, days=(day,) if day else ())
        else:
            self._changed(target.id)
            self._notify("updated", target.id, target.etag)
            if schedule is not None:
                moved = schedule != invitations.schedule_of(target)
                self._meeting_changed(target, before, now, rescheduled=moved)
        return target, None

    def _meeting_changed(
        self,
        ev: StoredEvent,
        before: tuple[Any, ...],
        now: datetime,
        *,
        rescheduled: bool = False,
        days: tuple[date, ...] = (),
    ) -> None:
        """Tell the attendees' calendars, if `ev` is a meeting organised here (cheap when it isn't)."""
        if (before or invitations.attendees_of(ev)) and invitations.organises(self, ev):
            invitations.after_update(self, ev, before, now, rescheduled=rescheduled, days=days)

    def respond(self, event_id: str, action: str, body: dict[str, Any]) -> None:
        """`accept`, `tentativelyAccept` or `decline` an invitation (see invitations.py)."""
        invitations.respond(self, event_id, action, body)

    def delete(self, event_id: str, if_match: str | None = None) -> None:
        target, day = self.get(event_id)
        _check_etag(target, if_match)
        now = self.clock.now()
        if day is None and target.kind != "exception":
            del self.items[target.id]
            if target.transaction_id:
                self._by_transaction.pop(target.transaction_id, None)
            if target.meeting is not None and self._received.get(target.meeting.uid) == target.id:
                del self._received[target.meeting.uid]
            self._changed(target.id)
            self._notify("deleted", target.id, None)
            if invitations.attendees_of(target) and invitations.organises(self, target):
                invitations.after_delete(self, target, now)
            return
        master = target if day is not None else self.items[target.master_id or ""]
        original = day if day is not None else target.original_date
        assert original is not None
        if master.exceptions:
            master.exceptions.pop(original, None)
        master.cancelled = master.cancelled or set()
        master.cancelled.add(original)
        self._touch(master, now)
        self._changed(master.id)
        self._notify("deleted", ids.occurrence_id(master.id, original), None)
        self._notify("updated", master.id, master.etag)
        self._meeting_changed(master, invitations.attendees_of(master), now, days=(original,))

    def cancel(self, event_id: str) -> None:
        target, _ = self.get(event_id)
        owner_item = target if target.kind != "exception" else self.items[target.master_id or ""]
        if not is_organizer(owner_item, self.owner):
            raise GraphError(
                400,
                "ErrorAccessDenied",
                "Your request can't be completed. You need to be an organizer to cancel a meeting.",
            )
        self.delete(event_id)

    # ------------------------------------------------------------------------------- internals

    def _touch(self, ev: StoredEvent, now: datetime) -> None:
        ev.change_key = ids.new_change_key()
        ev.modified = now

    def _notify(self, kind: Any, event_id: str, etag: str | None) -> None:
        self.on_change(ChangeEvent(kind, event_id, etag))

    def _changed(self, entity_id: str) -> None:
        self.seq += 1
        self._log_seq.append(self.seq)
        self._log_ids.append(entity_id)
        if len(self._log_seq) > 4096:
            self._trim_log(self.delta.oldest_live_seq())

    def _trim_log(self, keep_after: int) -> None:
        cut = bisect.bisect_right(self._log_seq, keep_after)
        if cut:
            del self._log_seq[:cut]
            del self._log_ids[:cut]

    def changed_since(self, seq: int) -> list[str]:
        """Distinct ids of items changed after `seq`, oldest change first."""
        start = bisect.bisect_right(self._log_seq, seq)
        seen: dict[str, None] = {}
        for entity in self._log_ids[start:]:
            seen.pop(entity, None)
            seen[entity] = None
        return list(seen)

    def _make_exception(self, master: StoredEvent, day: date, now: datetime) -> StoredEvent:
        sw, ew = occurrence_walls(master, day)
        return StoredEvent(
            id=ids.occurrence_id(master.id, day),
            kind="exception",
            change_key=ids.new_change_key(),
            created=now,
            modified=now,
            start=sw,
            end=ew,
            start_zone=master.start_zone,
            end_zone=master.end_zone,
            start_zone_label=master.start_zone_label,
            end_zone_label=master.end_zone_label,
            is_all_day=master.is_all_day,
            subject=master.subject,
            body_type=master.body_type,
            body=master.body,
            props=dict(master.props) if master.props else None,
            ext=dict(master.ext) if master.ext else None,
            online=master.online,
            organizer=master.organizer,
            meeting=master.meeting,
            master_id=master.id,
            original_date=day,
            original_start=localize(sw, master.start_zone),
        )

    def _apply(self, ev: StoredEvent, payload: dict[str, Any], *, creating: bool, seeding: bool) -> None:
        """Validate everything first, then write: a bad request changes nothing."""
        _check_keys(payload)
        updates = _content(payload, seeding)
        props = dict(ev.props or {})
        _scalar_props(props, payload)
        _people_and_places(props, payload, seeding)
        ext = _extended(ev, payload)
        online = ev.online
        if payload.get("isOnlineMeeting") is True and online is None:
            online = self._teams_meeting()
        timing, kind, recurrence = self._schedule(ev, payload, creating)

        for key, value in updates.items():
            setattr(ev, key, value)
        ev.props = {k: v for k, v in props.items() if v is not None} or None
        ev.ext = ext or None
        ev.online = online
        (
            ev.start,
            ev.end,
            ev.start_zone,
            ev.end_zone,
            ev.start_zone_label,
            ev.end_zone_label,
            ev.is_all_day,
        ) = timing
        if ev.kind != "exception":
            ev.kind = kind
            ev.recurrence = recurrence if kind == "seriesMaster" else None
            if kind == "seriesMaster" and recurrence is not None:
                self._prune_series(ev, recurrence)
            else:
                ev.exceptions = None
                ev.cancelled = None

    def _schedule(
        self, ev: StoredEvent, payload: dict[str, Any], creating: bool
    ) -> tuple[Timing, Kind, Recurrence | None]:
        start, end, start_zone, end_zone, start_label, end_label, all_day = self._timing(
            ev, payload, creating
        )
        recurrence = ev.recurrence
        kind: Kind = ev.kind
        if "recurrence" in payload:
            if ev.kind == "exception":
                if payload["recurrence"] is not None:
                    raise _bad("An occurrence of a series can't have a recurrence.")
            else:
                recurrence = parse_recurrence(payload["recurrence"])
                kind = "seriesMaster" if recurrence is not None else "singleInstance"
        if recurrence is not None and kind == "seriesMaster":
            if "recurrence" not in payload and "start" in payload and start.date() != ev.start.date():
                recurrence = recurrence.with_start_date(start.date())
            if recurrence.range.time_zone is not None:
                resolve_zone(recurrence.range.time_zone)
            first = first_date(recurrence)
            if first is None:
                raise _bad("The recurrence pattern and range don't produce any occurrence.")
            shift = datetime.combine(first, start.time()) - start
            start, end = start + shift, end + shift
        return (start, end, start_zone, end_zone, start_label, end_label, all_day), kind, recurrence

    def _prune_series(self, ev: StoredEvent, recurrence: Recurrence) -> None:
        if ev.exceptions:
            ev.exceptions = {d: x for d, x in ev.exceptions.items() if occurs_on(recurrence, d)} or None
        if ev.cancelled:
            ev.cancelled = {d for d in ev.cancelled if occurs_on(recurrence, d)} or None

    def _timing(
        self, ev: StoredEvent, payload: dict[str, Any], creating: bool
    ) -> tuple[datetime, datetime, ZoneInfo, ZoneInfo, str, str, bool]:
        start, end = ev.start, ev.end
        start_zone, end_zone = ev.start_zone, ev.end_zone
        start_label, end_label = ev.start_zone_label, ev.end_zone_label
        if payload.get("start") is not None:
            start, start_zone, start_label = _dtz(payload["start"], "start")
        if payload.get("end") is not None:
            end, end_zone, end_label = _dtz(payload["end"], "end")
        all_day = ev.is_all_day
        if payload.get("isAllDay") is not None:
            if not isinstance(payload["isAllDay"], bool):
                raise _bad("The value of 'isAllDay' is not valid.", "RequestBodyRead")
            all_day = payload["isAllDay"]
        if all_day:
            midnight = start.time() == end.time() == datetime.min.time()
            same_zone = start_zone.key == end_zone.key
            if not midnight or not same_zone or end <= start:
                raise _bad(
                    "When isAllDay is true, start and end must be set to midnight in the same time zone "
                    "and end must be after start."
                )
        elif localize(end, end_zone) < localize(start, start_zone):
            raise _bad("The end of the event can't be before its start.", "ErrorInvalidRequest")
        return start, end, start_zone, end_zone, start_label, end_label, all_day

    def _teams_meeting(self) -> dict[str, Any]:
        thread = secrets.token_urlsafe(36).replace("-", "a").replace("_", "b")[:48]
        context = quote(f'{{"Tid":"{self.owner.tenant_id}","Oid":"{self.owner.user_id}"}}', safe="").lower()
        context = context.replace(self.owner.tenant_id.lower(), self.owner.tenant_id).replace(
            self.owner.user_id.lower(), self.owner.user_id
        )
        return {
            "joinUrl": f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{thread}%40thread.v2/0?context={context}",
            "conferenceId": str(100_000_000 + secrets.randbelow(900_000_000)),
            "tollNumber": "+1 425 555 0123",
        }


Timing = tuple[datetime, datetime, ZoneInfo, ZoneInfo, str, str, bool]


def _invalid(field: str) -> GraphError:
    return _bad(f"The value of '{field}' is not valid.", "RequestBodyRead")


def _check_keys(payload: dict[str, Any]) -> None:
    for key in payload:
        if key not in _WRITABLE and key not in _READ_ONLY and not key.startswith("@"):
            raise _bad(
                f"The property '{key}' does not exist on type 'microsoft.graph.event'. Make sure to only "
                "use property names that are defined by the type or mark the type as open type.",
                "RequestBodyRead",
            )


def _content(payload: dict[str, Any], seeding: bool) -> dict[str, Any]:
    updates: dict[str, Any] = {}
    if "subject" in payload:
        updates["subject"] = str(payload["subject"] or "")
    if "body" in payload:
        body = payload["body"] or {}
        if not isinstance(body, dict):
            raise _invalid("body")
        kind = str(body.get("contentType") or "text").lower()
        if kind not in ("text", "html"):
            raise _invalid("body.contentType")
        updates["body_type"] = kind
        updates["body"] = bodies.stored(kind, str(body.get("content") or ""))
    if seeding and isinstance(payload.get("organizer"), dict):
        updates["organizer"] = dict(payload["organizer"])
    return updates


def _scalar_props(props: dict[str, Any], payload: dict[str, Any]) -> None:
    for field in _ENUMS:
        if payload.get(field) is not None:
            props[field] = _enum_value(field, payload[field])
    for field in _PASS_BOOL:
        if payload.get(field) is not None:
            if not isinstance(payload[field], bool):
                raise _invalid(field)
            props[field] = payload[field]
    if payload.get("reminderMinutesBeforeStart") is not None:
        value = payload["reminderMinutesBeforeStart"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid("reminderMinutesBeforeStart")
        props["reminderMinutesBeforeStart"] = value
    if "categories" in payload:
        cats = payload["categories"] or []
        if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
            raise _invalid("categories")
        props["categories"] = tuple(sys.intern(c) for c in cats)


def _people_and_places(props: dict[str, Any], payload: dict[str, Any], seeding: bool) -> None:
    if "attendees" in payload:
        props["attendees"] = _attendees(payload["attendees"])
    if "location" in payload:
        props["location"] = _location(payload["location"], "private")
        if "locations" not in payload:
            props.pop("locations", None)  # derived from location when rendering
    if "locations" in payload:
        raw = payload["locations"] or []
        if not isinstance(raw, list):
            raise _invalid("locations")
        props["locations"] = tuple(_location(x, "unknown") for x in raw if x)
    if seeding and isinstance(payload.get("responseStatus"), dict):
        props["responseStatus"] = dict(payload["responseStatus"])


def _extended(ev: StoredEvent, payload: dict[str, Any]) -> dict[str, tuple[str, str]]:
    ext = dict(ev.ext or {})
    raw = payload.get("singleValueExtendedProperties")
    if raw is None:
        return ext
    if not isinstance(raw, list):
        raise _invalid("singleValueExtendedProperties")
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"].strip():
            raise _bad("An extended property must have an id.", "ErrorInvalidExtendedProperty")
        value = item.get("value")
        ext[sys.intern(ext_key(item["id"]))] = (sys.intern(item["id"]), "" if value is None else str(value))
    return ext


def _overlaps(s: datetime, e: datetime, ws: datetime, we: datetime) -> bool:
    if s == e:
        return ws <= s < we
    return s < we and e > ws


def _check_etag(ev: StoredEvent, if_match: str | None) -> None:
    if if_match is None:
        return
    wanted = [t.strip() for t in if_match.split(",") if t.strip()]
    if not wanted or "*" in wanted:
        return
    for tag in wanted:
        bare = tag[2:] if tag.startswith("W/") else tag
        if bare.strip('"') == ev.change_key:
            return
    raise GraphError(
        412,
        "ErrorIrresolvableConflict",
        "The send or update operation could not be performed because the change key passed in the request "
        "does not match the current change key for the item.",
    )


def _dtz(raw: object, field: str) -> tuple[datetime, ZoneInfo, str]:
    if not isinstance(raw, dict):
        raise _bad(f"The value of '{field}' is not valid.", "RequestBodyRead")
    label = raw.get("timeZone")
    if label is None or label == "":
        label = "UTC"
    zone = resolve_zone(label)
    wall = parse_in_zone(raw.get("dateTime"), zone, f"{field}.dateTime")
    return wall, zone, sys.intern(str(label))


def _attendees(raw: object) -> tuple[tuple[str, str, str, str, str | None], ...]:
    """Compact attendees: (type, response, response time, name, address), strings interned."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _invalid("attendees")
    if len(raw) > MAX_ATTENDEES:
        raise _bad(f"An event can have at most {MAX_ATTENDEES} attendees.", "ErrorInvalidRecipients")
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise _invalid("attendees")
        email = item.get("emailAddress") or {}
        if not isinstance(email, dict):
            raise _invalid("attendees.emailAddress")
        kind = str(item.get("type") or "required")
        if kind not in ("required", "optional", "resource"):
            raise _bad(f"The value '{kind}' is not valid for an attendee type.", "RequestBodyRead")
        status = item.get("status") if isinstance(item.get("status"), dict) else {}
        address = email.get("address")
        out.append(
            (
                sys.intern(kind),
                sys.intern(str((status or {}).get("response") or "none")),
                sys.intern(str((status or {}).get("time") or ZERO_TIME)),
                sys.intern(str(email.get("name") or address or "")),
                sys.intern(address) if isinstance(address, str) else None,
            )
        )
    return tuple(out)


def _location(raw: object, unique_type: str) -> dict[str, Any] | str | None:
    """A location: just its name (interned) when that's all there is, else the normalised dict."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _invalid("location")
    name = raw.get("displayName") or ""
    if not name and not raw.get("address"):
        return None
    extras = {
        k: raw[k] for k in ("address", "coordinates", "locationEmailAddress", "locationUri") if raw.get(k)
    }
    unique_id = raw.get("uniqueId") or name
    if (
        not extras
        and unique_id == name
        and raw.get("locationType") in (None, "default")
        and not raw.get("uniqueIdType")
    ):
        return sys.intern(str(name))
    out: dict[str, Any] = {"displayName": name, "locationType": raw.get("locationType") or "default"}
    if unique_type == "private":
        out["uniqueId"] = unique_id
    out["uniqueIdType"] = raw.get("uniqueIdType") or unique_type
    out.update(extras)
    return out
