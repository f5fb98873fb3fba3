"""The sync planner: what Outlook reported, against what was stored, becomes a list of actions.

Pure: no I/O, no clock. Three sides meet here (after vdirsyncer): the Outlook items a delta read
returned, the stored status of every item (one row per Outlook item: Graph id, iCalUId, changeKey,
content hash, the host appointment it is linked to), and the host's links (its EWS-era ids translated
to Graph ids, the connector's extended property, iCalUIds). The executor applies the plan item by item.

Rules:
- An item is changed for the host only when its content hash changed; a new changeKey with the same
  content (Outlook touched it, or the connector's own write came back) only refreshes the status.
- Items the host already knows (linked to one of its appointments) are never announced as new: that
  is how migration, and every later read, avoids duplicates while the host's old sync still runs, and
  how the connector's own writes are never echoed back.
- The import filter, the "show free events" setting and cancellation decide whether the host sees an
  item (`admitted`); an item that stops being admitted is deleted for the host, and one that starts
  being admitted is created.
- A complete read of the window (first sync, or after the delta link was lost) also deletes stored
  items it did not see, except those that simply aged out of the window.
- Neither a complete read nor a delta page deletes too much at once (the mass-deletion guard): more than
  `MASS_DELETE_MIN` removals of items in the window that are also more than `MASS_DELETE_SHARE` of them
  are held, all of them, unless the run was forced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time
from enum import StrEnum
from typing import Any, Final

from shared.domain import series
from shared.domain.appointments import appointment_of_transaction
from shared.domain.calendar import DeltaItem, EventKind, OutlookEvent, RemovedEvent
from shared.domain.tenants import ImportFilter, RecurringEvents, TenantSettings

MASS_DELETE_MIN: Final = 10  # a read (complete or delta) may delete this many items without question
MASS_DELETE_SHARE: Final = 0.5  # ... and beyond that, at most this share of what was stored


class Origin(StrEnum):
    OUTLOOK = "outlook"  # made in Outlook (or by the host's old sync)
    HOST = "host"  # linked to a host appointment (written by the connector, or by the host via EWS)


class ChangeType(StrEnum):
    CREATED = "event.created"
    UPDATED = "event.updated"
    DELETED = "event.deleted"


@dataclass(frozen=True, slots=True)
class ItemStatus:
    """What the connector last saw of one Outlook item, and what the host knows of it."""

    graph_id: str
    change_key: str | None
    ical_uid: str | None
    content_hash: str
    ends_at: datetime
    admitted: bool  # the host has been told about it (it passed the filters)
    appointment_id: str | None = None  # the host appointment it is linked to
    series_master_id: str | None = None
    written: bool = False  # the connector wrote this version: its change key is the connector's own
    master: bool = False  # a series master (calendar views show only its instances): the connector's, or
    # with `recurring_events: series`, an Outlook series the host is told of as one (`series.py`)
    original_start: datetime | None = None  # an occurrence's or exception's place in its series
    cancelled: bool = False  # cancelled by its organiser (an attendee's copy; a series' exdate)
    organised_meeting: bool = False  # a meeting this staff member organises: removing it cancels it
    # A meeting someone else organises: the staff member's last response to it (None: their own event). Gone
    # from the calendar where Graph can no longer read it, it was declined (Outlook removes a meeting its
    # attendee declines, and deleting one in Outlook declines it).
    response: str | None = None

    @property
    def origin(self) -> Origin:
        return Origin.HOST if self.appointment_id else Origin.OUTLOOK


@dataclass(frozen=True, slots=True)
class Visibility:
    """The tenant settings that decide what the host sees."""

    import_filter: ImportFilter = field(default_factory=ImportFilter)
    show_free_events: bool = True
    privacy_mode: bool = False
    series: bool = True  # `recurring_events: series`: a series as its master and exceptions (`series.py`)

    @classmethod
    def of(cls, settings: TenantSettings) -> Visibility:
        return cls(
            settings.import_filter,
            settings.show_free_events,
            settings.privacy_mode,
            settings.recurring_events is RecurringEvents.SERIES,
        )

    def admits(self, event: OutlookEvent) -> bool:
        if event.cancelled or event.response == "declined":
            return False
        if not self.show_free_events and event.show_as == "free":
            return False
        return self.import_filter.admits(event.categories)

    def payload(self, event: OutlookEvent) -> dict[str, Any]:
        """What the host is told of an event, on `event.*` and `appointment.changed_in_outlook` alike."""
        return event.free_busy() if self.privacy_mode else event.details()


@dataclass(frozen=True, slots=True)
class HostLinks:
    """How the host's own appointments show up in this mailbox, found during migration."""

    by_graph_id: Mapping[str, str] = field(default_factory=dict)  # graph id -> appointment id
    by_ical_uid: Mapping[str, str] = field(default_factory=dict)  # iCalUId -> appointment id

    def appointment_for(self, event: OutlookEvent) -> str | None:
        found = self.by_graph_id.get(event.id)
        if found is None and event.series_master_id:
            found = self.by_graph_id.get(event.series_master_id)
        if found is None and event.ical_uid:
            found = self.by_ical_uid.get(event.ical_uid)
        return found


@dataclass(frozen=True, slots=True)
class HostChange:
    """A change the host must hear about (the executor stamps tenant, staff and time on it)."""

    type: ChangeType
    event_id: str
    data: dict[str, Any]


@dataclass(slots=True)
class Plan:
    upserts: list[ItemStatus] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    changes: list[HostChange] = field(default_factory=list)
    held_deletes: int = 0  # deletions the mass-deletion guard refused
    rechecks: dict[str, set[str]] = field(default_factory=dict)  # appointment -> items Outlook changed

    @property
    def empty(self) -> bool:
        return not (self.upserts or self.deletes or self.changes)


@dataclass(frozen=True, slots=True)
class Observation:
    """One delta read of a mailbox: the items, and whether it covered the whole window."""

    items: Sequence[DeltaItem]
    complete: bool  # a full read of the window (no delta link was used)
    window_start: datetime  # items ending before it aged out (not deleted)
    migrating: bool = False  # a migration's read (every read links the host's items: no `created` for them)
    # The series masters read for this plan (`series.masters_to_read`); None: Graph no longer has it.
    masters: Mapping[str, OutlookEvent | None] = field(default_factory=dict)
    window_end: datetime | None = None  # items starting at or after it are past the window's far end
    # The removed items read again by id (`series.removals_to_read`): the event where the mailbox still
    # holds it (moved out of the window, declined or cancelled but kept), None where it is gone.
    removed_found: Mapping[str, OutlookEvent | None] = field(default_factory=dict)


def plan(
    observation: Observation,
    stored: Mapping[str, ItemStatus],
    visibility: Visibility,
    links: HostLinks | None = None,
    *,
    allow_mass_delete: bool = False,
) -> Plan:
    links = links or HostLinks()
    result = Plan()
    seen: set[str] = set()
    removed: list[ItemStatus] = []  # what Outlook reported removed (`@removed`), or no longer holds
    for item in _last_word(observation.items):
        seen.add(item.id)
        before = stored.get(item.id)
        if isinstance(item, RemovedEvent):
            if before is not None:
                removed.append(before)
            continue
        master = stored.get(item.series_master_id) if item.series_master_id else None
        if _connector_made(item, before, master):
            _observe_own(result, item, before, master)
            continue
        if visibility.series and item.series_master_id:
            identity = series.series_identity(item.series_master_id, observation.masters, stored)
            _observe_instance(result, item, before, visibility, links, identity)
            continue
        _observe(result, item, before, visibility, links)
    if observation.complete:
        removed += _unseen(result, observation, stored, seen)
    _guarded_removals(result, observation, stored, removed, allow_mass_delete)
    if result.held_deletes:
        return result  # held: the series stay as they are too (their masters would go with the occurrences)
    if visibility.series:
        _settle_series(result, observation, stored, visibility, links)
    elif observation.complete:
        _forget_series(result, stored)
    return result


def held_back(result: Plan) -> Plan:
    """The plan for a user whose `calendar_from_outlook` switch is off: nothing is announced, and the
    statuses of the items a change was about stay as they were, so they keep saying what the host was told.
    The connector's own items, new change keys and items that aged out are still recorded, and the rechecks
    (the write direction's) stay. A full read once the switch is on again finds the held items differing
    from their statuses (or missing) and announces each once; an item made and removed while off never is."""
    about = {change.event_id for change in result.changes}
    return Plan(
        upserts=[s for s in result.upserts if s.graph_id not in about],
        deletes=[d for d in result.deletes if d not in about],
        changes=[],
        held_deletes=result.held_deletes,
        rechecks=result.rechecks,
    )


def _last_word(items: Iterable[DeltaItem]) -> list[DeltaItem]:
    """Graph may report an item twice in one read (pages, replays): its last report wins."""
    latest: dict[str, DeltaItem] = {}
    for item in items:
        latest.pop(item.id, None)
        latest[item.id] = item
    return list(latest.values())


def _observe(
    result: Plan,
    event: OutlookEvent,
    before: ItemStatus | None,
    visibility: Visibility,
    links: HostLinks,
) -> None:
    digest = event.content_hash()
    admitted = visibility.admits(event)
    appointment_id = (before.appointment_id if before else None) or links.appointment_for(event)
    status = _status_of(event, digest, appointment_id, admitted=admitted)
    if before is None:
        result.upserts.append(status)
        known_to_host = appointment_id is not None  # linked at migration, or by a later sync's links
        if admitted and not known_to_host:
            result.changes.append(_change(ChangeType.CREATED, event, visibility, appointment_id))
        return
    if before == status:
        return  # a duplicate or replayed report
    result.upserts.append(status)
    if event.told_before(before.content_hash) and before.admitted == admitted:
        return  # a new changeKey, or a hash of an earlier format: nothing new the host can see
    if admitted and not before.admitted:
        result.changes.append(_change(ChangeType.CREATED, event, visibility, appointment_id))
    elif before.admitted and not admitted:
        result.changes.append(_deleted(event.id, appointment_id, reason=series.hidden_reason(event)))
    elif admitted:
        result.changes.append(_change(ChangeType.UPDATED, event, visibility, appointment_id))


def _observe_instance(  # noqa: PLR0917 (the planner's inputs, in order)
    result: Plan,
    event: OutlookEvent,
    before: ItemStatus | None,
    visibility: Visibility,
    links: HostLinks,
    identity: str | None,
) -> None:
    """An occurrence or exception of an Outlook series, with `recurring_events: series`. An occurrence is
    recorded, never announced (its series is); an exception is announced as an override of its series. An
    occurrence the host knew as an event of its own (`occurrences` before) is deleted for it."""
    exception = event.kind is EventKind.EXCEPTION
    admitted = exception and visibility.admits(event)
    appointment_id = (before.appointment_id if before else None) or links.appointment_for(event)
    original = event.original_start
    if original is not None and not isinstance(original, datetime):
        original = datetime.combine(original, time(), tzinfo=UTC)
    status = replace(
        _status_of(event, event.content_hash(), appointment_id, admitted=admitted),
        original_start=original,
        cancelled=event.cancelled,
    )
    if before == status:
        return
    result.upserts.append(status)
    known = before is not None and before.admitted
    data = {"event": series.instance_payload(visibility, event, identity), "appointment_id": appointment_id}
    if admitted and not known:
        if not (before is None and appointment_id is not None):  # linked: the host's own
            result.changes.append(HostChange(ChangeType.CREATED, event.id, data))
    elif known and not admitted:
        reason = series.hidden_reason(event) if exception else "filtered"
        result.changes.append(_deleted(event.id, appointment_id, reason))
    elif admitted and before is not None and not event.told_before(before.content_hash):
        result.changes.append(HostChange(ChangeType.UPDATED, event.id, data))


def _forget_series(result: Plan, stored: Mapping[str, ItemStatus]) -> None:
    """`recurring_events: occurrences` after `series`: the series the host was told of are deleted for it
    (each occurrence is announced on its own instead)."""
    for status in stored.values():
        if status.master and not status.written:
            result.deletes.append(status.graph_id)
            if status.admitted:
                result.changes.append(_deleted(status.graph_id, status.appointment_id, "filtered"))


def _status_of(
    event: OutlookEvent,
    digest: str,
    appointment_id: str | None,
    *,
    admitted: bool = False,
    written: bool = False,
) -> ItemStatus:
    """The stored status of an event as observed now."""
    return ItemStatus(
        graph_id=event.id,
        change_key=event.change_key,
        ical_uid=event.ical_uid,
        content_hash=digest,
        ends_at=event.ends_at(),
        admitted=admitted,
        appointment_id=appointment_id,
        series_master_id=event.series_master_id,
        written=written,
        organised_meeting=event.is_organizer is True and event.meeting,
        response=invitation_response(event),
    )


def invitation_response(event: OutlookEvent) -> str | None:
    """The staff member's own response to a meeting someone else organises; None for their own event."""
    if event.is_organizer is not False or not event.meeting:
        return None
    return event.response or "none"


def _connector_made(event: OutlookEvent, before: ItemStatus | None, master: ItemStatus | None) -> bool:
    """Written by the connector (its status says so, or its series master's, or its transactionId, which
    Graph never lets anyone change)."""
    if (before is not None and before.written) or (master is not None and master.written):
        return True
    return appointment_of_transaction(event.transaction_id) is not None


def _observe_own(
    result: Plan, event: OutlookEvent, before: ItemStatus | None, master: ItemStatus | None
) -> None:
    """A connector event (or an occurrence of a connector series). Its echo, carrying the change key of the
    connector's last write, is only recorded; a new change key with new content is an edit in Outlook: the
    appointment is rechecked, and the tenant's conflict policy decides. Either way the item stays the
    connector's (`written`): whatever Outlook does to it reaches the host as a recheck's outcome, never as
    an `event.*` change of its own (the recheck may find the connector's own write whose answer was lost)."""
    appointment_id = (
        (before.appointment_id if before else None)
        or (master.appointment_id if master else None)
        or appointment_of_transaction(event.transaction_id)
    )
    own_keys = {s.change_key for s in (before, master) if s is not None and s.written}
    digest = event.content_hash()
    echo = (
        event.change_key in own_keys
        or (before is not None and event.told_before(before.content_hash))
        or (before is None and master is None)  # a create whose status is being written right now
    )
    own = master is None or (before is not None and before.written)  # an occurrence's own status: as before
    status = _status_of(event, digest, appointment_id, written=own)
    if status != before:
        result.upserts.append(status)
    if not echo and appointment_id is not None:
        result.rechecks.setdefault(appointment_id, set()).add(event.id)


def _remove(
    result: Plan,
    before: ItemStatus,
    stored: Mapping[str, ItemStatus],
    observation: Observation,
) -> None:
    window_start = observation.window_start
    result.deletes.append(before.graph_id)
    master = stored.get(before.series_master_id) if before.series_master_id else None
    if before.written or (master is not None and master.written):
        if before.appointment_id and before.ends_at >= window_start:  # not merely out of the window
            result.rechecks.setdefault(before.appointment_id, set()).add(before.graph_id)
        return
    if before.admitted:
        found = observation.removed_found.get(before.graph_id)
        reason = series.removal_reason(before, window_start, found, observation.window_end)
        result.changes.append(_deleted(before.graph_id, before.appointment_id, reason))


def _unseen(
    result: Plan, observation: Observation, stored: Mapping[str, ItemStatus], seen: set[str]
) -> list[ItemStatus]:
    """A complete read: the stored items it did not see. Those that aged out of the window are forgotten
    at once (not deleted for the host); the others are answered as removed."""
    missing = [s for s in stored.values() if s.graph_id not in seen and not s.master]
    aged = [s for s in missing if s.ends_at < observation.window_start]
    result.deletes.extend(s.graph_id for s in aged)  # out of the window: forgotten, not deleted
    return [s for s in missing if s.ends_at >= observation.window_start]


def _guarded_removals(
    result: Plan,
    observation: Observation,
    stored: Mapping[str, ItemStatus],
    removed: Sequence[ItemStatus],
    allow_mass_delete: bool,
) -> None:
    """Apply the removals, unless they are too many of the items in the window (the mass-deletion guard,
    for a delta page full of `@removed` as for a complete read that finds the calendar emptied): then none
    is applied and `held_deletes` counts them. The executor then drops the delta link, so the next run
    reads the whole window and is held again, until a forced resync applies it."""
    start = observation.window_start
    in_window = sum(1 for s in stored.values() if s.master or s.ends_at >= start)
    gone = sum(1 for s in removed if s.ends_at >= start)
    too_many = gone > MASS_DELETE_MIN and gone > in_window * MASS_DELETE_SHARE
    if too_many and not allow_mass_delete:
        result.held_deletes = len(removed)
        return
    for status in removed:
        _remove(result, status, stored, observation)


def _change(
    kind: ChangeType, event: OutlookEvent, visibility: Visibility, appointment_id: str | None
) -> HostChange:
    return HostChange(kind, event.id, {"event": visibility.payload(event), "appointment_id": appointment_id})


def _deleted(event_id: str, appointment_id: str | None, reason: str) -> HostChange:
    return HostChange(
        ChangeType.DELETED,
        event_id,
        {"event": {"id": event_id}, "appointment_id": appointment_id, "reason": reason},
    )


def _settle_series(
    result: Plan,
    observation: Observation,
    stored: Mapping[str, ItemStatus],
    visibility: Visibility,
    links: HostLinks,
) -> None:
    """Each series whose master was read: announced, updated, or no longer followed (`series.py`)."""
    current = {**stored}
    for status in result.upserts:
        current[status.graph_id] = status
    for graph_id in result.deletes:
        current.pop(graph_id, None)
    for master_id, master in sorted(observation.masters.items()):
        before = stored.get(master_id)
        if (before is not None and before.written) or (
            master is not None and appointment_of_transaction(master.transaction_id) is not None
        ):
            continue  # the connector's own series: the write side follows it
        instances = [s for s in current.values() if s.series_master_id == master_id]
        view = (
            series.view_of(master, instances)
            if master is not None and master.kind is EventKind.SERIES_MASTER
            else None
        )
        if view is None or not series.still_followed(view, instances, observation.window_start):
            if before is not None:
                result.deletes.append(master_id)
                if before.admitted:
                    reason = series.gone_reason(before) if view is None else "out_of_window"
                    result.changes.append(_deleted(master_id, before.appointment_id, reason))
            continue
        _observe_series(result, view, before, visibility, links)


def _observe_series(
    result: Plan,
    view: series.SeriesView,
    before: ItemStatus | None,
    visibility: Visibility,
    links: HostLinks,
) -> None:
    master = view.master
    admitted = visibility.admits(master)
    appointment_id = (before.appointment_id if before else None) or links.appointment_for(master)
    status = ItemStatus(
        graph_id=master.id,
        change_key=master.change_key,
        ical_uid=master.ical_uid,
        content_hash=view.digest(),
        ends_at=series.SERIES_END,
        admitted=admitted,
        appointment_id=appointment_id,
        master=True,
        cancelled=master.cancelled,
        organised_meeting=master.is_organizer is True and master.meeting,
        response=invitation_response(master),
    )
    if before == status:
        return
    result.upserts.append(status)
    data = {"event": series.series_payload(visibility, view), "appointment_id": appointment_id}
    if before is None or not before.admitted:
        known_to_host = before is None and appointment_id is not None  # linked: the host's own
        if admitted and not known_to_host:
            result.changes.append(HostChange(ChangeType.CREATED, master.id, data))
    elif not admitted:
        result.changes.append(_deleted(master.id, appointment_id, series.hidden_reason(master)))
    elif before.content_hash != status.content_hash:
        result.changes.append(HostChange(ChangeType.UPDATED, master.id, data))
