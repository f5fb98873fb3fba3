"""Outlook series as series (`recurring_events: series`): the planner's rules for recurring events.

calendarView delta reports a series' occurrences and exceptions, never its master (graph-contract §4.1:
"To get the pattern, `GET /events/{seriesMasterId}`"). So:

- **Which masters are read** (`masters_to_read`, the executor GETs them, at most four at a time): a series
  the statuses do not know yet; one whose occurrences carry a change key other than the stored master's
  (Exchange gives an occurrence its master's change key, and any change to the series, an exception or a
  cancellation included, gives the master a new one and reports its occurrences again); one with an
  occurrence removed or an exception newly cancelled (a possible exdate); and, on a complete read, a
  stored series none of whose occurrences was seen (deleted, or gone out of the window). A run that only
  sees occurrences of known, unchanged series reads no master: the window's moving edge costs nothing.
- **The master's status** (`ItemStatus.master`, not `written`) is the cache: its change key, iCalUId and
  a hash of what the host was told (the master's content, rule, exdates, occurrences when inexact).
- **What the host is told.** The master as one event (`type: seriesMaster`) with `recurrence`: the RRULE
  from `recurrence.from_graph`, checked with dateutil (`outlook_series`), the series' IANA zone, its first
  start, and its `exdates`: the original local dates of cancelled occurrences (the master's
  `cancelledOccurrences`, and in an attendee's copy the occurrences the organiser cancelled, which
  Exchange keeps there as cancelled exceptions). A pattern RFC 5545 cannot express exactly carries
  `exact: false`, the reason and the occurrences Outlook shows in the window. An occurrence is never
  announced; an exception is announced as an event of its own (`type: exception`) naming its series
  (`series_master_id`, the series' `meeting_id`) and its `original_start`. A cancelled occurrence is an
  `event.updated` of the series with the date added to its exdates: the same shape the host writes an
  appointment's recurrence in (rrule, exdates, overrides).
- **When it stops.** A series whose master is gone is `deleted` (`cancelled` when it was a meeting its
  organiser removed, or an attendee's copy the organiser cancelled); one with no occurrence left in the
  window and none to come is `out_of_window`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from shared.domain.appointments import appointment_of_transaction
from shared.domain.calendar import DeltaItem, EventKind, OutlookEvent, RemovedEvent
from shared.domain.recurrence import OutlookSeries, next_occurrence, outlook_series


class ItemStatus(Protocol):
    """What these rules read of an item's stored status (`planner.ItemStatus`)."""

    @property
    def graph_id(self) -> str: ...
    @property
    def change_key(self) -> str | None: ...
    @property
    def ical_uid(self) -> str | None: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def series_master_id(self) -> str | None: ...
    @property
    def written(self) -> bool: ...
    @property
    def admitted(self) -> bool: ...
    @property
    def master(self) -> bool: ...
    @property
    def original_start(self) -> datetime | None: ...
    @property
    def cancelled(self) -> bool: ...
    @property
    def organised_meeting(self) -> bool: ...
    @property
    def response(self) -> str | None: ...


class Visibility(Protocol):
    """What the host may see of an event (`planner.Visibility`)."""

    @property
    def privacy_mode(self) -> bool: ...
    def payload(self, event: OutlookEvent) -> dict[str, Any]: ...


SERIES_END: Final = datetime.max.replace(tzinfo=UTC)  # a followed master's status never ages out by itself


def masters_to_read(
    items: Iterable[DeltaItem], stored: Mapping[str, ItemStatus], *, complete: bool
) -> set[str]:
    """The series masters this run must read (see the module's rules)."""
    needed: set[str] = set()
    seen: set[str] = set()
    for item in items:
        if isinstance(item, RemovedEvent):
            before = stored.get(item.id)
            if before is not None and before.series_master_id and not _connectors(before, stored):
                needed.add(before.series_master_id)
            continue
        master_id = item.series_master_id
        if master_id is None or appointment_of_transaction(item.transaction_id) is not None:
            continue
        master = stored.get(master_id)
        if master is not None and master.written:
            continue  # the connector's own series: the write side follows it
        seen.add(master_id)
        before = stored.get(item.id)
        if (
            master is None
            or (item.kind is EventKind.OCCURRENCE and item.change_key != master.change_key)
            or (item.kind is EventKind.EXCEPTION and (before is None or before.cancelled != item.cancelled))
        ):
            needed.add(master_id)
    if complete:
        needed.update(s.graph_id for s in stored.values() if _followed(s) and s.graph_id not in seen)
    return needed


def _followed(status: ItemStatus) -> bool:
    """An Outlook series master the connector follows for the host."""
    return status.master and not status.written


def _connectors(status: ItemStatus, stored: Mapping[str, ItemStatus]) -> bool:
    master = stored.get(status.series_master_id) if status.series_master_id else None
    return status.written or (master is not None and master.written)


def removals_to_read(
    items: Sequence[DeltaItem], stored: Mapping[str, ItemStatus], *, complete: bool, window_start: datetime
) -> set[str]:
    """The removed items worth reading again by id to say why they went: calendarView delta reports
    `@removed` alike for an event deleted and for one moved out of the range (graph-contract §4.1), and a
    complete read simply no longer holds either. Read: an item the host was told of, a single event (a
    series goes with its master), not the connector's own (the write side follows those), not one that
    ended before the window (it aged out)."""
    seen = {item.id for item in items}
    gone = {item.id for item in items if isinstance(item, RemovedEvent)}
    if complete:
        gone |= {graph_id for graph_id in stored if graph_id not in seen}
    return {
        graph_id
        for graph_id in gone
        if (before := stored.get(graph_id)) is not None
        and before.admitted
        and not (before.written or before.master or before.series_master_id)
        and before.ends_at >= window_start
    }


def removal_reason(
    before: ItemStatus,
    window_start: datetime,
    found: OutlookEvent | None = None,
    window_end: datetime | None = None,
) -> str:
    """Why the host stops seeing an item Outlook no longer shows; `found`: the item read again by id
    (`removals_to_read`), where the mailbox still holds it."""
    if before.ends_at < window_start:
        return "out_of_window"  # it ended before the window: the connector stops following it
    if found is not None:
        if found.ends_at() < window_start or (window_end is not None and _starts(found) >= window_end):
            return "out_of_window"  # moved past either end of the window: the connector stops following it
        if found.cancelled or found.response == "declined":
            return hidden_reason(found)  # a copy Outlook keeps elsewhere (Deleted Items), saying why
    return gone_reason(before)


def gone_reason(before: ItemStatus) -> str:
    """Why an item the calendar no longer holds, and Graph can no longer read, went: by what its status
    knows of the staff member's part in it."""
    if before.organised_meeting:
        return "cancelled"  # deleting a meeting on the organiser's calendar cancels it for everyone
    if before.response is not None:
        return "declined"  # an invitation: Outlook removes a meeting its attendee declines
    return "deleted"


def hidden_reason(event: OutlookEvent) -> str:
    """Why the host stops seeing an item Outlook still shows."""
    if event.cancelled:
        return "cancelled"  # the organiser cancelled it: the attendee's copy stays, marked cancelled
    if event.response == "declined":
        return "declined"
    return "filtered"  # the import filter or "show free events"


@dataclass(frozen=True, slots=True)
class SeriesView:
    """A master, what it means in RFC 5545, and the instances the connector knows of it."""

    master: OutlookEvent
    series: OutlookSeries
    exdates: tuple[date, ...]
    occurrences: tuple[datetime | date, ...]  # Outlook's, when the rule is not exact

    def recurrence(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "rrule": self.series.rrule,
            "exdates": [d.isoformat() for d in self.exdates],
            "time_zone": self.series.time_zone,
            "start": self.series.start.isoformat(),
            "exact": self.series.exact,
        }
        if not self.series.exact:
            found["reason"] = self.series.reason
            found["occurrences"] = [_instant(v) for v in self.occurrences]
        return found

    def digest(self) -> str:
        """What the host was told of the series: equal digests, nothing to announce."""
        told = repr((self.master.content_hash(), sorted(self.recurrence().items()))).encode()
        return hashlib.blake2b(told, digest_size=16).hexdigest()


def view_of(master: OutlookEvent, instances: Iterable[ItemStatus]) -> SeriesView:
    series = outlook_series(
        master.recurrence or {}, master.start, master.original_time_zone, all_day=master.all_day
    )
    zone = ZoneInfo(series.time_zone) if series.time_zone else UTC
    known = list(instances)
    cancelled = {_local_date(s.original_start, zone) for s in known if s.cancelled and s.original_start}
    exdates = tuple(sorted(set(master.cancelled_dates) | cancelled))
    occurrences: tuple[datetime | date, ...] = ()
    if not series.exact:
        starts = {s.original_start for s in known if s.original_start is not None and not s.cancelled}
        occurrences = tuple(sorted(v for v in starts if v is not None))
    return SeriesView(master, series, exdates, occurrences)


def still_followed(view: SeriesView, instances: Iterable[ItemStatus], window_start: datetime) -> bool:
    """Whether the series has an occurrence in the window or still to come."""
    if any(not s.cancelled for s in instances):
        return True
    if not view.series.exact:
        return False
    following = next_occurrence(view.series, window_start)
    return following is not None


def _starts(event: OutlookEvent) -> datetime:
    start = event.start
    return start if isinstance(start, datetime) else datetime.combine(start, datetime.min.time(), tzinfo=UTC)


def _instant(value: datetime | date) -> str:
    """A UTC instant with a Z (or a date), as the feed writes them."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _local_date(instant: datetime, zone: tzinfo) -> date:
    return instant.astimezone(zone).date()


def series_payload(visibility: Visibility, view: SeriesView) -> dict[str, Any]:
    """The master as the host sees it: its event, and its recurrence (timing, so in privacy mode too)."""
    payload = visibility.payload(view.master)
    payload["type"] = EventKind.SERIES_MASTER.value
    payload["recurrence"] = view.recurrence()
    return payload


def instance_payload(
    visibility: Visibility, event: OutlookEvent, series_identity: str | None
) -> dict[str, Any]:
    """An exception as the host sees it: an override naming its series and the start it replaces."""
    payload = visibility.payload(event)
    payload["type"] = event.kind.value
    payload["series_master_id"] = event.series_master_id
    payload["original_start"] = _instant(event.original_start) if event.original_start else None
    if not visibility.privacy_mode:
        payload["meeting_id"] = series_identity
    return payload


def series_identity(
    master_id: str, masters: Mapping[str, OutlookEvent | None], stored: Mapping[str, ItemStatus]
) -> str | None:
    """The series' iCalUId: what every mailbox's copy of it shares."""
    master = masters.get(master_id)
    if master is not None:
        return master.ical_uid
    status = stored.get(master_id)
    return status.ical_uid if status is not None else None
