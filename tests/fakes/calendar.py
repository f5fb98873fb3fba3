"""Mailboxes in memory: `CalendarGateway` and `SubscriptionGateway` with Graph's contract.

Delta links name a position in each mailbox's change log; a read answers every item changed since in
the window (`RemovedEvent` for deleted ones and for ones that left the window), a link from before
`expire_tokens` raises DeltaTokenRejected, and faults can be queued per mailbox.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.domain import recurrence as rules
from shared.domain.appointments import EventDraft, Override, shape_of
from shared.domain.calendar import Attendee, DeltaItem, EventKind, OutlookEvent, RemovedEvent
from shared.domain.tenants import Tenant
from shared.domain.timezones import iana_zone
from shared.service.errors import (
    DeltaTokenRejected,
    EventChanged,
    EventMissing,
    MailboxUnavailable,
    RateLimited,
    SubscriptionGone,
    TenantAccessError,
)
from shared.service.records import (
    DeltaRead,
    GraphSubscription,
    Schedule,
    ScheduleItem,
    WorkingHours,
    WrittenEvent,
)

_ids = itertools.count(1)
OCCURRENCE = "~"  # an occurrence's id in the fake: {master id}~{original date}


@dataclass
class FakeMailbox:
    events: dict[str, OutlookEvent] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)  # ids in change order (position = index + 1)
    generation: int = 0  # bumped by expire_tokens
    ews_ids: dict[str, str] = field(default_factory=dict)  # EWS id -> Graph id
    appointment_ids: dict[str, str] = field(default_factory=dict)  # Graph id -> extended property value
    faults: list[Exception] = field(default_factory=list)
    unavailable: str | None = None
    working_hours: WorkingHours | None = None  # mailboxSettings.workingHours (None: Graph reports none)
    hours_refused: str | None = None  # mailboxSettings answers 403 (a policy closes it to the app)
    masters: dict[str, OutlookEvent] = field(default_factory=dict)  # Outlook series masters (never in delta)
    event_reads: int = 0  # GET /events/{id}


def _items(box: FakeMailbox) -> set[str]:
    """What `/events` lists: the single events, and the series masters of the occurrences held (the fake
    keeps a series as its occurrences, as calendarView shows it)."""
    return {*box.events, *(e.series_master_id for e in box.events.values() if e.series_master_id)}


def _overlaps(event: OutlookEvent, window: tuple[datetime, datetime]) -> bool:
    return _as_instant(event.start) < window[1] and _as_instant(event.end) > window[0]


def _as_instant(value: datetime | date) -> datetime:
    return value if isinstance(value, datetime) else datetime.combine(value, time(), tzinfo=UTC)


class FakeMailboxes:
    def __init__(self) -> None:
        self.mailboxes: dict[str, FakeMailbox] = {}
        self.subscriptions: dict[str, tuple[str, GraphSubscription, str]] = {}  # id -> (user, sub, state)
        self.subscription_tenants: dict[str, str] = {}  # id -> directory id (Graph shows each tenant its own)
        self.revoked_tenants: set[str] = set()
        self.requests = 0
        self.hours_reads = 0

    def mailbox(self, graph_user_id: str) -> FakeMailbox:
        return self.mailboxes.setdefault(graph_user_id, FakeMailbox())

    # --- what a user does in Outlook ---------------------------------------------------------------

    def put(self, graph_user_id: str, event: OutlookEvent) -> OutlookEvent:
        box = self.mailbox(graph_user_id)
        stored = replace(event, change_key=f"ck{next(_ids)}")
        box.events[event.id] = stored
        box.log.append(event.id)
        return stored

    def remove(self, graph_user_id: str, event_id: str) -> None:
        box = self.mailbox(graph_user_id)
        box.events.pop(event_id, None)
        box.log.append(event_id)

    def put_master(self, graph_user_id: str, master: OutlookEvent) -> OutlookEvent:
        """A series made in Outlook: its master, which calendarView delta never reports (its occurrences
        are `put` one by one, with the master's change key, as Exchange gives them)."""
        stored = replace(master, change_key=f"ck{next(_ids)}")
        self.mailbox(graph_user_id).masters[master.id] = stored
        return stored

    def remove_master(self, graph_user_id: str, master_id: str) -> None:
        self.mailbox(graph_user_id).masters.pop(master_id, None)

    def expire_tokens(self, graph_user_id: str) -> None:
        self.mailbox(graph_user_id).generation += 1

    # --- CalendarGateway ---------------------------------------------------------------------------

    def _check(self, tenant: Tenant, box: FakeMailbox) -> None:
        self.requests += 1
        if tenant.directory_id in self.revoked_tenants:
            raise TenantAccessError("Authorization_RequestDenied: consent was revoked")
        if box.unavailable:
            raise MailboxUnavailable(box.unavailable)
        if box.faults:
            raise box.faults.pop(0)

    async def read_delta(
        self, tenant: Tenant, graph_user_id: str, delta_link: str | None, window: tuple[datetime, datetime]
    ) -> DeltaRead:
        box = self.mailbox(graph_user_id)
        self._check(tenant, box)
        if delta_link is None:
            items: list[DeltaItem] = [e for e in box.events.values() if _overlaps(e, window)]
        else:
            user, generation, position, start, end = delta_link.split("|")
            if user != graph_user_id or int(generation) != box.generation:
                raise DeltaTokenRejected(delta_link)
            window = (datetime.fromisoformat(start), datetime.fromisoformat(end))
            items = []
            for event_id in dict.fromkeys(box.log[int(position) :]):
                event = box.events.get(event_id)
                if event is not None and _overlaps(event, window):
                    items.append(event)
                else:
                    items.append(RemovedEvent(event_id))
        link = "|".join(
            (
                graph_user_id,
                str(box.generation),
                str(len(box.log)),
                window[0].isoformat(),
                window[1].isoformat(),
            )
        )
        return DeltaRead(items, link, requests=1)

    async def read_events(
        self, tenant: Tenant, graph_user_id: str, event_ids: Sequence[str]
    ) -> dict[str, OutlookEvent | None]:
        box = self.mailbox(graph_user_id)
        self._check(tenant, box)
        box.event_reads += len(event_ids)  # each item of a `$batch` counts as a request
        return {i: box.masters.get(i) or box.events.get(i) for i in event_ids}

    async def read_items(
        self, tenant: Tenant, graph_user_id: str, event_ids: Sequence[str]
    ) -> dict[str, OutlookEvent | None]:
        box = self.mailbox(graph_user_id)
        self._check(tenant, box)
        box.event_reads += len(event_ids)
        return {i: box.events.get(i) for i in event_ids}

    async def translate_ews_ids(
        self, tenant: Tenant, graph_user_id: str, ews_ids: Sequence[str]
    ) -> dict[str, str]:
        box = self.mailbox(graph_user_id)
        self._check(tenant, box)
        return {e: box.ews_ids[e] for e in ews_ids if e in box.ews_ids and box.ews_ids[e] in box.events}

    async def connector_events(self, tenant: Tenant, graph_user_id: str) -> dict[str, str]:
        box = self.mailbox(graph_user_id)
        self._check(tenant, box)
        return {g: a for g, a in box.appointment_ids.items() if g in _items(box)}

    async def stamped(self, tenant: Tenant, graph_user_id: str, event_ids: Sequence[str]) -> dict[str, str]:
        box = self.mailbox(graph_user_id)
        found: dict[str, str] = {}
        for event_id in dict.fromkeys(event_ids):
            self._check(tenant, box)  # one read each
            if event_id in _items(box) and event_id in box.appointment_ids:
                found[event_id] = box.appointment_ids[event_id]
        return found

    async def working_hours(self, tenant: Tenant, graph_user_id: str) -> WorkingHours | None:
        box = self.mailbox(graph_user_id)
        self.hours_reads += 1  # apart from `requests`: the delta side's budget stays as it was
        if tenant.directory_id in self.revoked_tenants:
            raise TenantAccessError("Authorization_RequestDenied: consent was revoked")
        if box.unavailable or box.hours_refused:
            raise MailboxUnavailable(box.unavailable or box.hours_refused or "")
        return box.working_hours

    # --- SubscriptionGateway -----------------------------------------------------------------------

    async def create(
        self, tenant: Tenant, graph_user_id: str, client_state: str, expires_at: datetime
    ) -> GraphSubscription:
        self._check(tenant, self.mailbox(graph_user_id))
        subscription = GraphSubscription(f"sub-{next(_ids)}", expires_at, f"users/{graph_user_id}/events")
        self.subscriptions[subscription.id] = (graph_user_id, subscription, client_state)
        self.subscription_tenants[subscription.id] = tenant.directory_id
        return subscription

    def _held(self, tenant: Tenant, subscription_id: str) -> tuple[str, GraphSubscription, str] | None:
        """The subscription when this tenant holds it (Graph answers 404 for another tenant's)."""
        held = self.subscriptions.get(subscription_id)
        owner = self.subscription_tenants.get(subscription_id, tenant.directory_id)
        return held if owner == tenant.directory_id else None

    async def renew(self, tenant: Tenant, subscription_id: str, expires_at: datetime) -> datetime:
        self.requests += 1
        if tenant.directory_id in self.revoked_tenants:
            raise TenantAccessError("Authorization_RequestDenied: consent was revoked")
        held = self._held(tenant, subscription_id)
        if held is None:
            raise SubscriptionGone(subscription_id)
        self.subscriptions[subscription_id] = (held[0], replace(held[1], expires_at=expires_at), held[2])
        return expires_at

    async def delete(self, tenant: Tenant, subscription_id: str) -> None:
        self.requests += 1
        if self._held(tenant, subscription_id) is not None:
            self.subscriptions.pop(subscription_id, None)

    async def list(self, tenant: Tenant) -> list[GraphSubscription]:
        self.requests += 1
        return [s for sid, (_, s, _) in self.subscriptions.items() if self._held(tenant, sid) is not None]

    def subscribed_users(self) -> set[str]:
        return {user for user, s, _ in self.subscriptions.values() if "/todo/lists/" not in s.resource}


class FakeCalendarWriter:
    """`CalendarWriter` on the same mailboxes, with Graph's contract: a repeated `transactionId` answers the
    event made the first time; `If-Match` with a stale change key raises EventChanged; a write to a missing
    event raises EventMissing; every written event carries the connector's property; bodies come back as
    Exchange stores them (HTML: a text body converted, an HTML one wrapped in a document). Series are stored
    as one event (the fake does not expand recurrences: the emulator's tests cover them).

    Faults: `FakeMailbox.faults` are raised before a request; `after[user]` after a write took effect (Graph
    answered an error, or the SDK's retry of it met the changed event: its answer is lost)."""

    def __init__(self, mailboxes: FakeMailboxes) -> None:
        self.mailboxes = mailboxes
        self.transactions: dict[tuple[str, str], str] = {}  # (user, transactionId) -> event id
        self.series: dict[str, str] = {}  # event id -> its pattern, as the RRULE Graph's answer reads back as
        self.after: dict[str, list[Exception]] = {}  # user -> errors answered after the next writes applied
        self.writes = 0  # Graph requests that wrote
        # Exceptions Outlook made in a series (the fake expands nothing else): master id -> original date
        # -> the exception as Graph reads it; `put_back` records the occurrences the connector rewrote.
        self.outlook_exceptions: dict[str, dict[date, WrittenEvent]] = {}
        self.put_back: list[str] = []
        # A series' occurrences as the rule makes them (`occurrences` answers one per asked date of its
        # rule, `{master}~{date}`); deleting one cancels it for good: Graph's `cancelledOccurrences`, which
        # a PATCH of the master keeps and nothing restores.
        self.drafts: dict[str, EventDraft] = {}
        self.cancelled: dict[str, set[date]] = {}

    def _answered(self, graph_user_id: str, update: bool = False) -> None:
        """Answer the next fault due after a write. EventChanged is what a lost update's retry meets (its
        If-Match is stale now): it waits for an update; a retried create or delete meets no such refusal."""
        pending = self.after.get(graph_user_id)
        if pending and (update or not isinstance(pending[0], EventChanged)):
            raise pending.pop(0)

    def _event(self, event_id: str, draft: EventDraft, change_key: str | None = None) -> OutlookEvent:
        return OutlookEvent(
            id=event_id,
            change_key=change_key,
            ical_uid=f"uid-{event_id}",
            kind=EventKind.SERIES_MASTER if draft.recurrence else EventKind.SINGLE,
            series_master_id=None,
            subject=draft.subject,
            body=exchange_body(draft.body, draft.body_type),
            body_type="html",
            location=draft.location,
            start=draft.start.astimezone(UTC) if isinstance(draft.start, datetime) else draft.start,
            end=draft.end.astimezone(UTC) if isinstance(draft.end, datetime) else draft.end,
            all_day=draft.all_day,
            show_as=draft.show_as,
            sensitivity=draft.sensitivity,
            categories=draft.categories,
            cancelled=False,
            organizer=None,
            attendees=tuple(Attendee(a.name, a.address, "required", "none") for a in draft.attendees),
            join_url="https://teams.example/join/" + event_id if draft.online_meeting else None,
            original_time_zone=draft.time_zone,
            last_modified=None,
        )

    def _answer(self, event: OutlookEvent) -> WrittenEvent:
        shape = shape_of(event, self.series.get(event.id), sorted(self.cancelled.get(event.id, ())))
        conference = (
            (event.join_url.rsplit("/", 1)[-1], "+1 425 555 0123") if event.join_url else (None, None)
        )
        return WrittenEvent(
            event.id,
            event.change_key,
            event.ical_uid,
            event.join_url,
            event,
            event.written_hash(),
            shape,
            conference_id=conference[0],
            toll_number=conference[1],
        )

    def _pattern(self, event_id: str, draft: EventDraft) -> None:
        self.drafts[event_id] = draft
        if draft.recurrence is None:
            self.series.pop(event_id, None)
        else:
            graph = rules.to_graph(draft.recurrence.rrule, draft.start, draft.time_zone)
            self.series[event_id] = rules.from_graph(graph, all_day=draft.all_day)

    async def create(
        self, tenant: Tenant, graph_user_id: str, draft: EventDraft, transaction_id: str
    ) -> WrittenEvent:
        box = self.mailboxes.mailbox(graph_user_id)
        self.mailboxes._check(tenant, box)
        self.writes += 1
        known = self.transactions.get((graph_user_id, transaction_id))
        if known is not None and known in box.events:
            return self._answer(box.events[known])
        event_id = f"evt-{next(_ids)}"
        stored = self.mailboxes.put(
            graph_user_id, replace(self._event(event_id, draft), transaction_id=transaction_id)
        )
        box.appointment_ids[event_id] = draft.appointment_id
        self.transactions[(graph_user_id, transaction_id)] = event_id
        self._pattern(event_id, draft)
        self._answered(graph_user_id)
        return self._answer(stored)

    async def update(
        self, tenant: Tenant, graph_user_id: str, event_id: str, draft: EventDraft, if_match: str | None
    ) -> WrittenEvent:
        box = self.mailboxes.mailbox(graph_user_id)
        self.mailboxes._check(tenant, box)
        self.writes += 1
        current = box.events.get(event_id)
        if current is None:
            raise EventMissing(event_id)
        if if_match is not None and if_match != current.change_key:
            raise EventChanged(event_id)
        written = replace(self._event(event_id, draft), transaction_id=current.transaction_id)
        # An event's Teams meeting stays once made (contract §3.8), whatever the PATCH says.
        written = replace(written, join_url=current.join_url or written.join_url)
        stored = self.mailboxes.put(graph_user_id, replace(written, ical_uid=current.ical_uid))
        self._pattern(event_id, draft)
        self._answered(graph_user_id, update=True)
        return self._answer(stored)

    async def update_occurrence(
        self, tenant: Tenant, graph_user_id: str, occurrence_id: str, draft: EventDraft, override: Override
    ) -> WrittenEvent:
        self.mailboxes._check(tenant, self.mailboxes.mailbox(graph_user_id))
        if OCCURRENCE in occurrence_id:  # an occurrence as the rule made it: now an exception
            self.writes += 1
            return WrittenEvent(occurrence_id, f"ck{next(_ids)}", None)
        for by_day in self.outlook_exceptions.values():
            for day, held in by_day.items():
                if held.id == occurrence_id:
                    self.writes += 1
                    self.put_back.append(occurrence_id)
                    by_day[day] = replace(held, change_key=f"ck{next(_ids)}")
                    return by_day[day]
        raise EventMissing(occurrence_id)  # the fake keeps no other occurrences

    async def delete(self, tenant: Tenant, graph_user_id: str, event_id: str) -> None:
        box = self.mailboxes.mailbox(graph_user_id)
        self.mailboxes._check(tenant, box)
        self.writes += 1
        master_id, _, day = event_id.partition(OCCURRENCE)
        if day and master_id in box.events:  # an occurrence: cancelled, the master's key moves on
            self.cancelled.setdefault(master_id, set()).add(date.fromisoformat(day))
            self.mailboxes.put(graph_user_id, box.events[master_id])
            return
        if event_id in box.events:
            self.mailboxes.remove(graph_user_id, event_id)
            self._answered(graph_user_id)

    async def read(self, tenant: Tenant, graph_user_id: str, event_id: str) -> WrittenEvent:
        box = self.mailboxes.mailbox(graph_user_id)
        self.mailboxes._check(tenant, box)
        current = box.events.get(event_id)
        if current is None:
            raise EventMissing(event_id)
        return self._answer(current)

    async def occurrences(
        self, tenant: Tenant, graph_user_id: str, master_id: str, days: Sequence[date], time_zone: str
    ) -> dict[date, WrittenEvent]:
        self.mailboxes._check(tenant, self.mailboxes.mailbox(graph_user_id))
        held = self.outlook_exceptions.get(master_id, {})
        found = {day: held[day] for day in days if day in held}
        draft = self.drafts.get(master_id)
        if draft is None or draft.recurrence is None:
            return found
        for day in days:
            cancelled = day in self.cancelled.get(master_id, ())
            if (
                day in found
                or cancelled
                or not rules.is_occurrence(draft.recurrence.rrule, draft.start, draft.time_zone, day)
            ):
                continue
            found[day] = WrittenEvent(f"{master_id}{OCCURRENCE}{day.isoformat()}", "ck-occurrence", None)
        return found

    async def find_by_ical_uid(
        self, tenant: Tenant, graph_user_id: str, ical_uid: str
    ) -> WrittenEvent | None:
        box = self.mailboxes.mailbox(graph_user_id)
        self.mailboxes._check(tenant, box)
        for event in box.events.values():
            if event.ical_uid == ical_uid:
                return self._answer(event)
        return None

    def invite(self, organiser_event: OutlookEvent, attendee_user_id: str) -> OutlookEvent:
        """What Exchange does for a meeting: the attendee's own copy, with the organiser's iCalUId."""
        copy = replace(organiser_event, id=f"evt-{next(_ids)}", transaction_id=None, is_organizer=False)
        return self.mailboxes.put(attendee_user_id, copy)


def throttled(seconds: float = 2.0) -> RateLimited:
    return RateLimited(seconds, "429 TooManyRequests")


def exchange_body(content: str, content_type: str) -> str:
    """What Exchange answers for a body (see m365emulator/calendar/bodies.py): HTML, a fragment wrapped in a
    document, a text body escaped into one."""
    if not content:
        return ""
    if content_type.lower() == "html":
        if "<html" in content.lower():
            return content
        meta = '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        return f"<html><head>\r\n{meta}\r\n</head><body>{content}</body></html>"
    lines = html.escape(content, quote=False).split("\n")
    return f'<html><head></head><body><div class="PlainText">{"<br>".join(lines)}</div></body></html>'


class FakeSchedules:
    """`ScheduleGateway` over the fake mailboxes, with Graph's limits: more than 100 addresses or more than
    62 days in one request is refused as Graph refuses it, so the gateway's batching is what the caller
    relies on. `addresses` maps an address (any case) to the Graph user id of its mailbox; an address not
    in it fails alone, as Graph's 5009. All-day events are the instants of the mailbox's working-hours zone
    (UTC without one)."""

    MAX_ADDRESSES = 100
    MAX_DAYS = 62

    def __init__(self, mailboxes: FakeMailboxes) -> None:
        self.mailboxes = mailboxes
        self.addresses: dict[str, str] = {}
        self.requests = 0
        self.faults: list[Exception] = []

    def know(self, address: str, graph_user_id: str) -> None:
        self.addresses[address.lower()] = graph_user_id

    async def schedules(
        self, tenant: Tenant, via_user_id: str, addresses: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, Schedule]:
        found: dict[str, Schedule] = {}
        unique = list(dict.fromkeys(addresses))
        cursor = start
        while True:  # as many requests as the limits need, each checked as Graph checks it
            stop = min(end, cursor + timedelta(days=self.MAX_DAYS))
            for first in range(0, len(unique), self.MAX_ADDRESSES):
                batch = unique[first : first + self.MAX_ADDRESSES]
                for reply in self._request(tenant, via_user_id, batch, cursor, stop):
                    had = found.get(reply.address)
                    merged = reply
                    if had is not None and had.error is None and reply.error is None:
                        items = tuple(sorted(set(had.items) | set(reply.items), key=_item_order))
                        merged = replace(had, items=items)
                    found[reply.address] = merged
            if stop >= end:
                return found
            cursor = stop

    def _request(
        self, tenant: Tenant, via_user_id: str, batch: Sequence[str], start: datetime, end: datetime
    ) -> list[Schedule]:
        self.requests += 1
        if len(batch) > self.MAX_ADDRESSES:
            raise AssertionError(f"ErrorMailboxDataArrayTooBig: {len(batch)} addresses")
        if end - start > timedelta(days=self.MAX_DAYS):
            raise AssertionError(f"ErrorTimeIntervalTooBig: {end - start}")
        if self.faults:
            raise self.faults.pop(0)
        if tenant.directory_id in self.mailboxes.revoked_tenants:
            raise TenantAccessError("Authorization_RequestDenied: consent was revoked")
        via = self.mailboxes.mailbox(via_user_id)
        if via.unavailable:
            raise MailboxUnavailable(via.unavailable)
        return [self._one(address, start, end) for address in batch]

    def _one(self, address: str, start: datetime, end: datetime) -> Schedule:
        user = self.addresses.get(address.lower())
        box = self.mailboxes.mailbox(user) if user is not None else None
        if box is None or box.unavailable:
            return Schedule(
                address, error=f"Unable to resolve e-mail address {address} to an Active Directory object."
            )
        zone = _hours_zone(box.working_hours)
        items = []
        for event in box.events.values():
            if event.cancelled or event.kind is EventKind.SERIES_MASTER:
                continue
            first, last = _instant_in(event.start, zone), _instant_in(event.end, zone)
            if first < end and last > start:
                items.append(ScheduleItem(first, last, event.show_as))
        return Schedule(address, tuple(sorted(items, key=_item_order)), box.working_hours)


def _item_order(item: ScheduleItem) -> tuple[datetime, datetime, str]:
    return item.start, item.end, item.show_as


def _hours_zone(hours: WorkingHours | None) -> ZoneInfo:
    name = iana_zone(hours.zone) if hours is not None else None
    return ZoneInfo(name or "UTC")


def _instant_in(value: datetime | date, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value, time(), tzinfo=zone).astimezone(UTC)
