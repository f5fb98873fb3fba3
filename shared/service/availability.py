"""Availability: each staff member's busy times, and the slots or free periods a question asks for.

Per staff member the source is decided once per question:
- **synced**: the user is matched, synced (or migrating again after a complete first read), and its busy
  index is complete and its window covers the asked span (buffers included). `as_of` is when a sync run
  last brought the index up to date (the later of the index's change and the user's last run).
- **graph**: any other matched user (pending, first migration, error, an index that does not cover the
  span): Graph's `getSchedule`, one batched call for all such staff of the question, asked through the
  mailbox of the first matched staff member named. `as_of` is now.
- a staff member the tenant does not know, one disabled or not matched, or one Graph could not answer for,
  is a per-staff `error`: it counts as never free (a group of "all" has no slot; an N-of group may still
  be covered by the others). In a one-person busy request these are 404 (unknown), 409 (not matched or
  disabled, or Graph answers an error for this mailbox) and 503 (Graph did not answer).

The host's holds count on top of either source, from the moment its PUT is accepted: each live hold is
expanded within the span (its recurrence with dateutil, cancelled dates left out, overrides at their new
times; all-day ones from midnight in the appointment's zone), and a synced instance that is a copy of an
appointment with a hold or a tombstone is left out (the hold says where the appointment is now; a
tombstone that it is gone). Working hours are the stored `mailboxSettings` row, or getSchedule's for
graph-sourced staff. Which `show_as` values block is the tenant's setting (`tentative_blocks`,
`working_elsewhere_blocks`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Final, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.domain import availability as engine
from shared.domain import recurrence as rules
from shared.domain.availability import BusyPeriod, Question, ShowAs, StaffCalendar, WorkingHours
from shared.domain.tenants import Tenant, TenantSettings
from shared.domain.timezones import iana_zone
from shared.domain.users import MatchStatus, SyncState, UserRecord
from shared.observability import get_logger
from shared.service.context import UsesBusy, UsesClock, UsesRecentRows, UsesSchedules, UsesUsers
from shared.service.errors import (
    Conflict,
    DependencyUnavailable,
    MailboxUnavailable,
    NotFound,
    RateLimited,
    TenantAccessError,
)
from shared.service.records import BusyInstance, HoldTimes, HostHold, Schedule, SyncedBusy, UserBusy
from shared.service.records import WorkingHours as StoredHours
from shared.service.tenants import TenantPorts

log = get_logger("availability")

ENDLESS: Final = timedelta(days=1)  # how far past the span an unavailable staff member's busy time reaches


class AvailabilityPorts(TenantPorts, UsesUsers, UsesRecentRows, UsesBusy, UsesSchedules, UsesClock, Protocol):
    """The tenant and its users (as read in the last seconds: `recent`), their busy state (read fresh),
    Graph's getSchedule for the rest, and the clock."""


class Source(StrEnum):
    SYNCED = "synced"
    GRAPH = "graph"


@dataclass(frozen=True, slots=True)
class BusyEntry:
    """One busy time: UTC instants, or dates for an all-day event (end exclusive), and its period."""

    start: datetime | date
    end: datetime | date
    show_as: ShowAs
    all_day: bool
    period: BusyPeriod


@dataclass(frozen=True, slots=True)
class StaffBusy:
    """What is known of one staff member over a span, and where it came from."""

    staff_id: str
    source: Source | None
    as_of: datetime | None
    error: str | None = None
    busy: tuple[BusyEntry, ...] = ()
    hours: WorkingHours | None = None
    status: int = 200  # a one-person request's answer when `error` is set: 404, 409 or 503

    def calendar(self, span: engine.Period) -> StaffCalendar:
        """The engine's view: an unavailable staff member is busy over the whole span."""
        if self.error is not None:
            return StaffCalendar([BusyPeriod(span.start - ENDLESS, span.end + ENDLESS)])
        return StaffCalendar([entry.period for entry in self.busy], self.hours)


@dataclass(frozen=True, slots=True)
class Answer:
    """A question's answer: slots or periods (as asked), and each staff member's source."""

    staff: tuple[StaffBusy, ...]
    slots: list[engine.Slot] | None = None
    periods: list[engine.Period] | None = None


@dataclass(frozen=True, slots=True)
class _Read:
    """One staff member's stored state, before the source is decided."""

    staff_id: str
    user: UserRecord | None
    stored: UserBusy | None = None
    schedule: Schedule | None = field(default=None)


def policy(settings: TenantSettings) -> engine.BlockingPolicy:
    return engine.BlockingPolicy(
        tentative=settings.tentative_blocks, working_elsewhere=settings.working_elsewhere_blocks
    )


async def busy_times(
    services: AvailabilityPorts, tenant_id: str, staff_id: str, start: datetime, end: datetime
) -> StaffBusy:
    """One staff member's busy times over [start, end); an unknown, unmatched or unreadable one fails."""
    _, (found,) = await read_staff(services, tenant_id, [staff_id], engine.Period(start, end))
    if found.error is not None:
        if found.status == 404:
            raise NotFound("staff member", staff_id, "staff_id")
        if found.status == 409:
            raise Conflict("staff_id", found.error)
        raise DependencyUnavailable("Microsoft Graph", found.error)
    return found


async def answer(services: AvailabilityPorts, tenant_id: str, question: Question, *, periods: bool) -> Answer:
    """The slots (or, with `periods`, the free periods) of a question. A one-person question about a
    staff member the tenant does not know is a 404; other staff problems are per-staff errors."""
    span = _span(question)
    tenant, staff = await read_staff(services, tenant_id, question.staff_ids, span)
    question = _with_policy(question, policy(tenant.settings))
    if len(staff) == 1 and staff[0].status == 404:
        raise NotFound("staff member", staff[0].staff_id, "staff_id")
    calendars = {member.staff_id: member.calendar(span) for member in staff}
    if periods:
        return Answer(tuple(staff), periods=engine.free_periods(question, calendars))
    return Answer(tuple(staff), slots=engine.find_slots(question, calendars))


def _with_policy(question: Question, blocking: engine.BlockingPolicy) -> Question:
    return replace(question, policy=blocking)


def _span(question: Question) -> engine.Period:
    """Every instant the question's answer depends on: its periods, widened by the buffers."""
    first = min(p.start for p in question.periods) - question.buffer_before
    last = max(p.end for p in question.periods) + question.buffer_after
    return engine.Period(first, last)


async def _connected(services: AvailabilityPorts, tenant_id: str) -> Tenant:
    tenant = await services.recent.tenant(services.tenants, tenant_id)
    if tenant is None:
        raise NotFound("tenant", tenant_id, "tenant_id")
    if not tenant.state.connected:
        raise Conflict(
            "tenant_id", f"the tenant is {tenant.state.value}; availability needs a connected tenant"
        )
    return tenant


# ------------------------------------------------------------------------------------------- sources


async def read_staff(
    services: AvailabilityPorts, tenant_id: str, staff_ids: Sequence[str], span: engine.Period
) -> tuple[Tenant, list[StaffBusy]]:
    """The tenant, and each staff member's busy times over `span` in the order given, from its source."""
    near = (span.start, span.end)  # the index's instances far from the span are not even decoded
    tenant, users, stored = await asyncio.gather(  # all at once: one storage round trip's latency
        _connected(services, tenant_id),
        services.recent.users(services.users, tenant_id, staff_ids),  # rows of the last seconds
        asyncio.gather(*(services.busy.read(tenant_id, s, near) for s in staff_ids)),  # always fresh
    )
    matched = [u for u in users if u is not None and _readable(u)]
    readable = {u.staff_id for u in matched}
    by_staff = {s: busy for s, busy in zip(staff_ids, stored, strict=True) if s in readable}
    reads = [_Read(s, u, by_staff.get(s)) for s, u in zip(staff_ids, users, strict=True)]
    synced = {r.staff_id for r in reads if r.user is not None and r.stored is not None and _synced(r, span)}
    wanted = [r for r in reads if r.staff_id in by_staff and r.staff_id not in synced]
    now = services.clock.now()
    schedules, failure = await _schedules(services, tenant, matched, wanted, span)
    answers: list[StaffBusy] = []
    for read in reads:
        if read.user is None:
            answers.append(StaffBusy(read.staff_id, None, None, "no such staff member", status=404))
        elif read.stored is None:
            answers.append(StaffBusy(read.staff_id, None, None, _unmatched(read.user), status=409))
        elif read.staff_id in synced:
            answers.append(_from_index(read.user, read.stored, span))
        elif failure is not None:
            answers.append(StaffBusy(read.staff_id, Source.GRAPH, now, failure, status=503))
        else:
            answers.append(_from_schedule(read.user, read.stored, schedules[_address(read.user)], span, now))
    return tenant, answers


def _readable(user: UserRecord) -> bool:
    """Matched to a mailbox, and not disabled: its calendar can be answered for."""
    return (
        user.match is MatchStatus.MATCHED
        and user.graph_user_id is not None
        and user.staff.enabled
        and user.sync_state is not SyncState.DISABLED
    )


def _unmatched(user: UserRecord) -> str:
    reason = f": {user.match_reason}" if user.match_reason else ""
    if not user.staff.enabled or user.match is MatchStatus.MATCHED:
        return "the staff member is disabled"
    return f"the staff member is not matched to a Microsoft 365 user ({user.match.value}{reason})"


def _synced(read: _Read, span: engine.Period) -> bool:
    """Whether the busy index answers for this user over `span`."""
    assert read.user is not None and read.stored is not None
    index = read.stored.index
    if read.user.sync_state not in (SyncState.SYNCED, SyncState.MIGRATING) or index is None:
        return False
    return index.complete and index.window_start <= span.start and index.window_end >= span.end


def _address(user: UserRecord) -> str:
    return user.staff.email or user.staff.upn or user.graph_user_id or user.staff_id


async def _schedules(
    services: AvailabilityPorts,
    tenant: Tenant,
    matched: Sequence[UserRecord],
    wanted: Sequence[_Read],
    span: engine.Period,
) -> tuple[dict[str, Schedule], str | None]:
    """getSchedule for the staff the index cannot answer for; or why Graph could not be asked."""
    if not wanted:
        return {}, None
    via = next(u.graph_user_id for u in matched if u.graph_user_id)  # any mailbox of the tenant asks
    addresses = [_address(r.user) for r in wanted if r.user is not None]
    try:
        return await services.schedules.schedules(tenant, via, addresses, span.start, span.end), None
    except (RateLimited, TenantAccessError, MailboxUnavailable) as error:
        log.warning("getSchedule failed for tenant %s: %s", tenant.tenant_id, error)
        return {}, f"Microsoft Graph's getSchedule failed: {error}"


def _from_index(user: UserRecord, stored: UserBusy, span: engine.Period) -> StaffBusy:
    index = stored.index
    assert index is not None
    hours = _hours(stored.hours.hours, stored.hours.iana_zone) if stored.hours is not None else None
    zone = hours.zone if hours is not None else ZoneInfo("UTC")
    replaced = {hold.appointment_id for hold in stored.holds}
    near = _near(span)
    entries = [
        _entry(i.start, i.end, i.show_as, i.all_day, zone)
        for i in index.instances
        if near(i) and i.appointment_id not in replaced
    ]
    entries += _held(stored.live_holds, span)
    return StaffBusy(user.staff_id, Source.SYNCED, _as_of(user, index), None, _within(entries, span), hours)


def _near(span: engine.Period) -> Callable[[BusyInstance], bool]:
    """A cheap test of an index instance against `span`, so only the few near it are made into periods
    (an index holds the whole window); all-day dates get a day's slack either side for their zone."""
    lo, hi = span.start, span.end
    first, last = lo.date() - ENDLESS, hi.date() + ENDLESS

    def near(instance: BusyInstance) -> bool:
        start, end = instance.start, instance.end
        if isinstance(start, datetime) and isinstance(end, datetime):
            return start < hi and end > lo
        return _day(start) <= last and _day(end) >= first

    return near


def _as_of(user: UserRecord, index: SyncedBusy) -> datetime:
    """When the index was last known to match the mailbox: its last change, or a later sync run."""
    if user.last_sync_at is not None and user.last_sync_at > index.synced_at:
        return user.last_sync_at
    return index.synced_at


def _from_schedule(
    user: UserRecord, stored: UserBusy, schedule: Schedule, span: engine.Period, now: datetime
) -> StaffBusy:
    if schedule.error is not None:  # Graph answered, but not for this mailbox (its address unresolved, ...)
        return StaffBusy(user.staff_id, Source.GRAPH, now, schedule.error, status=409)
    hours = _hours(schedule.working_hours, None) if schedule.working_hours is not None else None
    zone = hours.zone if hours is not None else ZoneInfo("UTC")
    entries = [_graph_entry(item.start, item.end, item.show_as, zone) for item in schedule.items]
    entries += _held(stored.live_holds, span)
    return StaffBusy(user.staff_id, Source.GRAPH, now, None, _within(entries, span), hours)


def _hours(stored: StoredHours, iana: str | None) -> WorkingHours | None:
    """Outlook's working hours for the engine; None when their zone or days cannot be read."""
    name = iana or iana_zone(stored.zone)
    if name is None:
        return None
    try:
        return WorkingHours.named(stored.days, stored.start, stored.end, ZoneInfo(name))
    except (engine.InvalidQuestion, ZoneInfoNotFoundError, ValueError):
        return None


def _within(entries: Iterable[BusyEntry], span: engine.Period) -> tuple[BusyEntry, ...]:
    """The entries overlapping `span`, by start, each once (a hold and an Outlook copy getSchedule reports
    at the same time and status are one busy time)."""
    kept = {
        (e.start, e.end, e.show_as, e.all_day): e
        for e in entries
        if e.period.start < span.end and e.period.end > span.start
    }
    return tuple(sorted(kept.values(), key=lambda e: (e.period.start, e.period.end)))


def _entry(
    start: datetime | date, end: datetime | date, show_as: str, all_day: bool, zone: ZoneInfo
) -> BusyEntry:
    """An index instance (UTC instants, or dates in the staff member's zone)."""
    status = ShowAs.from_graph(show_as)
    if isinstance(start, datetime) and isinstance(end, datetime):
        return BusyEntry(start, end, status, all_day, BusyPeriod(start, end, status))
    first, last = _day(start), _day(end)
    return BusyEntry(first, last, status, True, BusyPeriod.all_day(first, last, zone, status))


def _graph_entry(start: datetime, end: datetime, show_as: str, zone: ZoneInfo) -> BusyEntry:
    """A getSchedule item; one from local midnight to a later local midnight is an all-day event (Graph
    gives no flag; it reports all-day events as the midnights of the mailbox's zone)."""
    status = ShowAs.from_graph(show_as)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    if local_start.time() == time() and local_end.time() == time() and local_end.date() > local_start.date():
        first, last = local_start.date(), local_end.date()
        return BusyEntry(first, last, status, True, BusyPeriod(start, end, status))
    return BusyEntry(start, end, status, False, BusyPeriod(start, end, status))


def _day(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


# --------------------------------------------------------------------------------------------- holds


def _held(holds: Iterable[HostHold], span: engine.Period) -> list[BusyEntry]:
    entries: list[BusyEntry] = []
    for hold in holds:
        if hold.times is not None:
            entries.extend(hold_entries(hold.times, span))
    return entries


def hold_entries(times: HoldTimes, span: engine.Period) -> list[BusyEntry]:
    """A hold's busy times that may overlap `span`: its one occurrence, or its series' occurrences
    (cancelled dates left out, overrides at their new times)."""
    zone = ZoneInfo(times.time_zone)
    recurrence = times.recurrence
    if recurrence is None:
        return [_held_entry(times.start, times.end, times, zone)]
    length = _length(times.start, times.end)
    skipped = set(recurrence.exdates) | {o.original_date for o in recurrence.overrides}
    entries = [_held_entry(o.start, o.end, times, zone) for o in recurrence.overrides]
    try:
        starts = rules.expand(
            recurrence.rrule,
            times.start,
            times.time_zone,
            span.start - length - ENDLESS,
            span.end + ENDLESS,
        )
    except rules.RecurrenceError:  # the PUT accepted it; should a later rule refuse it, hold its first
        starts = [times.start]
    for start in starts:
        if rules.occurrence_date(start, times.time_zone) in skipped:
            continue
        entries.append(_held_entry(start, _plus(start, length), times, zone))
    return entries


def _length(start: datetime | date, end: datetime | date) -> timedelta:
    if isinstance(start, datetime) and isinstance(end, datetime):
        return end - start
    return _day(end) - _day(start)


def _plus(start: datetime | date, length: timedelta) -> datetime | date:
    """An occurrence's end: its start plus the series' length, in wall-clock time (as Outlook keeps it)."""
    return start + length


def _held_entry(start: datetime | date, end: datetime | date, times: HoldTimes, zone: ZoneInfo) -> BusyEntry:
    status = ShowAs.from_graph(times.show_as)
    if isinstance(start, datetime) and isinstance(end, datetime):
        first, last = start.astimezone(UTC), end.astimezone(UTC)
        return BusyEntry(first, last, status, False, BusyPeriod(first, last, status))
    day, stop = _day(start), _day(end)
    return BusyEntry(day, stop, status, True, BusyPeriod.all_day(day, stop, zone, status))
