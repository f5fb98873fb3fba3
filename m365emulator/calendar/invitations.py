"""Meetings between mailboxes of one tenant: invitations, updates, cancellations and responses.

What Exchange Online does with an organiser's event whose attendees include mailboxes of the same
tenant (sources in NOTES.md, "Meetings"). A store gets a `router` (attendee address → the calendar
of the tenant's mailbox receiving mail there, or None); only stores with one deliver anything, and
only for items they organise. External addresses, unknown ones, mailbox-less users and the
organiser's own address get nothing.

- **Invitation** (create, or an attendee added later): the attendee's calendar gets a copy with its
  own id and change key, the organiser's `iCalUId` (per occurrence for occurrences), `organizer` =
  the organiser, `responseStatus` `notResponded`, and `showAs` `tentative` until accepted (`free`
  stays `free`); everything else (subject, body, location(s), times, all-day, sensitivity,
  importance, attendees, recurrence with its exceptions, Teams meeting) as the organiser's. Never
  copied: `transactionId`, the organiser's extended properties (per item), categories.
- **Update** of the organiser's item (master, occurrence, exception, pattern): each copy is
  overwritten from the organiser's item (the attendee's own categories, reminder, extended
  properties and response are kept; a new start/end/pattern resets the response to `notResponded`
  here and to `none` on the organiser's attendee list). Each copy gets a new change key and an
  `updated` notification (also for the occurrence concerned).
- **Cancellation** (organiser deletes or cancels the item, or removes the attendee): the copy stays,
  with `isCancelled: true`, subject prefixed "Canceled: " and `showAs: free`, until the attendee
  deletes it. A cancelled occurrence becomes a cancelled exception in the copies.
- **Responses** (`accept`, `tentativelyAccept`, `decline` on the copy): the copy's `responseStatus`
  (and `showAs`) change; with `sendResponse` (default true) the organiser's attendee list records
  the response for a whole meeting (not for single occurrences). `decline` removes the copy (or
  the occurrence) from the attendee's calendar, as Outlook does.

Attendee copies are linked by the meeting's iCalUId (`CalendarStore._received`), so finding one is
O(1), and nothing is stored on events without internal attendees.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from m365emulator.calendar import ids
from m365emulator.calendar.model import MeetingLink, StoredEvent
from m365emulator.calendar.recurrence import occurs_on
from m365emulator.calendar.render import ZERO_TIME, is_organizer, organizer_of
from m365emulator.calendar.timezones import format_utc, localize
from m365emulator.errors import GraphError

if TYPE_CHECKING:
    from m365emulator.calendar.store import CalendarStore

CANCELED_PREFIX = "Canceled: "
NOT_RESPONDED = "notResponded"
# what an attendee may change on their copy that the organiser's updates leave alone (Outlook's own)
PERSONAL = ("categories", "isReminderOn", "reminderMinutesBeforeStart")
_NOT_COPIED = (*PERSONAL, "responseStatus", "isCancelled")
RESPONSES = {"accept": "accepted", "tentativelyaccept": "tentativelyAccepted", "decline": "declined"}
_ORGANIZER_CODES = {
    "accepted": "ErrorCalendarIsOrganizerForAccept",
    "tentativelyAccepted": "ErrorCalendarIsOrganizerForTentative",
    "declined": "ErrorCalendarIsOrganizerForDecline",
}

Attendee = tuple[str, str, str, str, str | None]  # type, response, time, name, address (store.py)
Targets = dict[str, tuple["CalendarStore", frozenset[str]]]  # user id -> (calendar, addresses used)


# ------------------------------------------------------------------------------------- who gets what


def attendees_of(ev: StoredEvent) -> tuple[Attendee, ...]:
    return ev.props.get("attendees", ()) if ev.props else ()


def organises(store: CalendarStore, ev: StoredEvent) -> bool:
    """Whether changes to `ev` (a single instance or series master) go to attendees' calendars."""
    return store.router is not None and is_organizer(ev, store.owner)


def schedule_of(ev: StoredEvent) -> tuple[Any, ...]:
    """What, when changed by the organiser, asks attendees to respond again."""
    return (localize(ev.start, ev.start_zone), localize(ev.end, ev.end_zone), ev.is_all_day, ev.recurrence)


def targets(store: CalendarStore, attendees: Iterable[Attendee]) -> Targets:
    """The other mailboxes of the tenant among `attendees` (one entry per mailbox, whatever alias)."""
    router = store.router
    found: dict[str, tuple[CalendarStore, set[str]]] = {}
    if router is None:
        return {}
    for attendee in attendees:
        address = attendee[4]
        if not address:
            continue
        calendar = router(address)
        if calendar is None or calendar is store:
            continue
        entry = found.get(calendar.owner.user_id)
        if entry is None:
            found[calendar.owner.user_id] = (calendar, {address.lower()})
        else:
            entry[1].add(address.lower())
    return {key: (calendar, frozenset(addresses)) for key, (calendar, addresses) in found.items()}


def shown_as(intended: str, response: str) -> str:
    """An attendee's free/busy for a meeting: tentative until accepted, unless the organiser said free."""
    if intended == "free" or response == "accepted":
        return intended
    return "tentative"


# ------------------------------------------------------------------------------- organiser changes


def after_create(org: CalendarStore, ev: StoredEvent, now: datetime) -> None:
    for calendar, addresses in targets(org, attendees_of(ev)).values():
        _sync(org, ev, calendar, addresses, now, reset=True)


def after_update(
    org: CalendarStore,
    ev: StoredEvent,
    before: tuple[Attendee, ...],
    now: datetime,
    *,
    rescheduled: bool = False,
    days: tuple[date, ...] = (),
) -> None:
    """`ev` (single instance or master) changed; `before` = its attendees before the change;
    `days` = occurrences concerned (exception made or changed, occurrence cancelled)."""
    if rescheduled and attendees_of(ev):
        props = dict(ev.props or {})
        props["attendees"] = tuple((k, "none", ZERO_TIME, n, a) for k, _, _, n, a in attendees_of(ev))
        ev.props = props
    now_invited = targets(org, attendees_of(ev))
    for calendar, addresses in now_invited.values():
        _sync(org, ev, calendar, addresses, now, reset=rescheduled, days=days)
    if before:
        for key, (calendar, _) in targets(org, before).items():
            if key not in now_invited:
                _cancel(ev.ical_uid, calendar, now)


def after_delete(org: CalendarStore, ev: StoredEvent, now: datetime) -> None:
    for calendar, _ in targets(org, attendees_of(ev)).values():
        _cancel(ev.ical_uid, calendar, now)


# ------------------------------------------------------------------------------- attendee copies


def _sync(
    org: CalendarStore,
    src: StoredEvent,
    calendar: CalendarStore,
    addresses: frozenset[str],
    now: datetime,
    *,
    reset: bool,
    days: tuple[date, ...] = (),
) -> None:
    """Deliver `src` to `calendar`: a new copy, or the existing one overwritten."""
    uid = src.ical_uid
    found = calendar._received.get(uid)
    copy = calendar.items.get(found) if found else None
    if copy is None:
        copy = StoredEvent(
            id=ids.new_event_id(),
            kind=src.kind,
            change_key=ids.new_change_key(),
            created=now,
            modified=now,
            start=src.start,
            end=src.end,
            start_zone=src.start_zone,
            end_zone=src.end_zone,
            start_zone_label=src.start_zone_label,
            end_zone_label=src.end_zone_label,
            meeting=MeetingLink(uid, org.owner.user_id, src.id, "busy"),
        )
        _Delivery(org, src, calendar, addresses, now).fill(copy, reset=True, fresh=True)
        calendar.items[copy.id] = copy
        calendar._received[uid] = copy.id
        calendar._changed(copy.id)
        calendar._notify("created", copy.id, copy.etag)
        return
    cancelled = bool(copy.props and copy.props.get("isCancelled"))
    _Delivery(org, src, calendar, addresses, now).fill(copy, reset=reset or cancelled, fresh=False)
    calendar._touch(copy, now)
    calendar._changed(copy.id)
    for day in days:
        exc = (copy.exceptions or {}).get(day)
        calendar._notify("updated", ids.occurrence_id(copy.id, day), (exc or copy).etag)
    calendar._notify("updated", copy.id, copy.etag)


class _Delivery:
    """One organiser item written into one attendee's copy."""

    def __init__(
        self,
        org: CalendarStore,
        src: StoredEvent,
        calendar: CalendarStore,
        addresses: frozenset[str],
        now: datetime,
    ) -> None:
        self.org = org
        self.src = src
        self.calendar = calendar
        self.addresses = addresses  # the addresses this attendee was invited as
        self.now = now

    def fill(self, copy: StoredEvent, *, reset: bool, fresh: bool) -> None:
        src = self.src
        old = copy.props or {}
        props = {k: v for k, v in (src.props or {}).items() if k not in _NOT_COPIED}
        for key in PERSONAL:
            if fresh and key != "categories" and src.props and key in src.props:
                props[key] = src.props[key]
            elif key in old:
                props[key] = old[key]
        response = None if reset else old.get("responseStatus")
        intended = str((src.props or {}).get("showAs", "busy"))
        copy.props = self._attendee_view(props, intended, response)
        link = copy.meeting
        assert link is not None
        link.event_id = src.id
        link.intended_show_as = intended
        copy.kind = src.kind
        copy.start, copy.end = src.start, src.end
        copy.start_zone, copy.end_zone = src.start_zone, src.end_zone
        copy.start_zone_label, copy.end_zone_label = src.start_zone_label, src.end_zone_label
        copy.is_all_day = src.is_all_day
        copy.subject, copy.body_type, copy.body = src.subject, src.body_type, src.body
        copy.online = src.online
        copy.organizer = organizer_of(src, self.org.owner)
        copy.transaction_id = None
        copy.recurrence = src.recurrence if src.kind == "seriesMaster" else None
        if src.kind == "seriesMaster" and src.recurrence is not None:
            self.fill_series(copy, reset=reset)
        else:
            copy.exceptions = None
            copy.cancelled = None

    def _attendee_view(self, props: dict[str, Any], intended: str, response: Any) -> dict[str, Any]:
        if not isinstance(response, dict):
            response = {"response": NOT_RESPONDED, "time": ZERO_TIME}
        props["responseStatus"] = response
        props["showAs"] = shown_as(intended, str(response.get("response")))
        if props.get("hideAttendees"):
            props["attendees"] = tuple(
                a for a in props.get("attendees", ()) if a[4] and a[4].lower() in self.addresses
            )
        return props

    def fill_series(self, copy: StoredEvent, *, reset: bool) -> None:
        """Exceptions follow the organiser's; cancelled occurrences become cancelled exceptions;
        dates the attendee removed from their copy stay removed."""
        src = self.src
        assert src.recurrence is not None
        before = copy.exceptions or {}
        removed = {d for d in (copy.cancelled or ()) if occurs_on(src.recurrence, d)}
        copy.cancelled = removed or None
        master_response = (copy.props or {}).get("responseStatus")
        exceptions: dict[date, StoredEvent] = {}
        for day, exc in (src.exceptions or {}).items():
            if day in removed:
                continue
            mine = before.get(day)
            response = master_response
            if not reset and mine is not None and mine.props and "responseStatus" in mine.props:
                response = mine.props["responseStatus"]
            exceptions[day] = self.exception_copy(copy, exc, response)
        for day in src.cancelled or ():
            if day in removed:
                continue
            mine = before.get(day)
            if mine is not None and mine.props and mine.props.get("isCancelled"):
                exceptions[day] = mine
                continue
            exceptions[day] = _mark_cancelled(
                mine or self.calendar._make_exception(copy, day, self.now), self.now
            )
        copy.exceptions = exceptions or None

    def exception_copy(self, copy: StoredEvent, exc: StoredEvent, response: Any) -> StoredEvent:
        props = {k: v for k, v in (exc.props or {}).items() if k not in _NOT_COPIED}
        for key in PERSONAL:
            if copy.props and key in copy.props:
                props[key] = copy.props[key]
        intended = str((exc.props or {}).get("showAs", "busy"))
        assert exc.original_date is not None
        return StoredEvent(
            id=ids.occurrence_id(copy.id, exc.original_date),
            kind="exception",
            change_key=ids.new_change_key(),
            created=self.now,
            modified=self.now,
            start=exc.start,
            end=exc.end,
            start_zone=exc.start_zone,
            end_zone=exc.end_zone,
            start_zone_label=exc.start_zone_label,
            end_zone_label=exc.end_zone_label,
            is_all_day=exc.is_all_day,
            subject=exc.subject,
            body_type=exc.body_type,
            body=exc.body,
            props=self._attendee_view(props, intended, response),
            ext=dict(copy.ext) if copy.ext else None,
            online=exc.online,
            organizer=copy.organizer,
            meeting=copy.meeting,
            master_id=copy.id,
            original_date=exc.original_date,
            original_start=exc.original_start,
        )


def _mark_cancelled(ev: StoredEvent, now: datetime) -> StoredEvent:
    props = dict(ev.props or {})
    props["isCancelled"] = True
    props["showAs"] = "free"
    ev.props = props
    if not ev.subject.startswith(CANCELED_PREFIX):
        ev.subject = CANCELED_PREFIX + ev.subject
    ev.change_key = ids.new_change_key()
    ev.modified = now
    return ev


def _cancel(uid: str, calendar: CalendarStore, now: datetime) -> None:
    """The organiser cancelled the meeting, or uninvited this attendee: the copy is marked cancelled."""
    found = calendar._received.get(uid)
    copy = calendar.items.get(found) if found else None
    if copy is None or (copy.props and copy.props.get("isCancelled")):
        return
    _mark_cancelled(copy, now)
    for exc in (copy.exceptions or {}).values():
        if not (exc.props and exc.props.get("isCancelled")):
            _mark_cancelled(exc, now)
    calendar._changed(copy.id)
    calendar._notify("updated", copy.id, copy.etag)


# ------------------------------------------------------------------------------- responses


def respond(store: CalendarStore, event_id: str, action: str, body: dict[str, Any]) -> None:
    """`accept` / `tentativelyAccept` / `decline` on an event of `store` (an attendee's calendar)."""
    response = RESPONSES[action.lower()]
    params = {str(k).lower(): v for k, v in body.items()}
    target, day = store.get(event_id)
    item = target if target.kind != "exception" else store.items[target.master_id or ""]
    if is_organizer(item, store.owner):
        raise GraphError(
            400,
            _ORGANIZER_CODES[response],
            "Your request can't be completed. You can't respond to a meeting you organized.",
        )
    send = params.get("sendresponse", True)
    send = send is True or (isinstance(send, str) and send.lower() == "true")
    if params.get("proposednewtime") is not None and response != "accepted":
        allowed = (item.props or {}).get("allowNewTimeProposals", True)
        if not send or not allowed:
            raise GraphError(
                400,
                "ErrorInvalidRequest",
                "Your request can't be completed. A new time can be proposed only with a response "
                "sent to an organizer who allows new time proposals.",
            )
    now = store.clock.now()
    status = {"response": response, "time": format_utc(now)}
    whole = day is None and target.kind != "exception"
    intended = str((item.props or {}).get("showAs", "busy"))
    if item.meeting is not None:
        intended = item.meeting.intended_show_as
    if response == "declined":
        store.delete(event_id)  # Outlook removes a declined meeting (or occurrence) from the calendar
    elif whole:
        _set_response(item, status, intended)
        store._touch(item, now)
        store._changed(item.id)
        store._notify("updated", item.id, item.etag)
    else:
        if day is not None:
            exc = store._make_exception(item, day, now)
            item.exceptions = item.exceptions or {}
            item.exceptions[day] = exc
        else:
            exc = target
            store._touch(exc, now)
        _set_response(exc, status, intended)
        store._touch(item, now)
        store._changed(item.id)
        store._notify("updated", exc.id, exc.etag)
        store._notify("updated", item.id, item.etag)
    if whole and send and (item.props or {}).get("responseRequested", True) is not False:
        _tell_organizer(store, item, response, status["time"], now)


def _set_response(ev: StoredEvent, status: dict[str, str], intended: str) -> None:
    props = dict(ev.props or {})
    props["responseStatus"] = status
    props["showAs"] = shown_as(intended, status["response"])
    ev.props = props


def _tell_organizer(store: CalendarStore, copy: StoredEvent, response: str, at: str, now: datetime) -> None:
    """The organiser's attendee list records the response (what Exchange does with the reply)."""
    link = copy.meeting
    router = store.router
    if link is None or router is None or copy.organizer is None:
        return
    address = str((copy.organizer.get("emailAddress") or {}).get("address") or "")
    org = router(address) if address else None
    if org is None or org.owner.user_id != link.organizer_id:
        return
    src = org.items.get(link.event_id)
    if src is None or src.ical_uid != link.uid or not attendees_of(src):
        return
    changed = False
    updated: list[Attendee] = []
    for kind, old, when, name, addr in attendees_of(src):
        if addr and org.router is not None and org.router(addr) is store:
            updated.append((kind, response, at, name, addr))
            changed = True
        else:
            updated.append((kind, old, when, name, addr))
    if not changed:
        return
    props = dict(src.props or {})
    props["attendees"] = tuple(updated)
    src.props = props
    org._touch(src, now)
    org._changed(src.id)
    org._notify("updated", src.id, src.etag)
