"""Host appointments, and the copies the connector keeps of them in staff calendars.

Pure: no I/O, no clock. The appointment is what the host last said (validated at the edge into this
model); a `StaffCopy` is what the connector last wrote into one staff member's calendar; `plan_writes`
compares the two and answers the steps that make Outlook hold the host's current version.

- **Copies** (the default multi-staff mode): one event in each staff member's calendar, the customers
  written into the body, no attendees, so nobody is sent an invitation.
- **Meeting**: one event organised by the first staff member, with the other staff and the customers as
  attendees; Exchange puts the attendee copies into the other staff calendars, and the connector only
  finds each one (by iCalUId) and links it. It never writes a second event for an attendee.
- Each copy remembers the appointment revision it holds, the change key of the connector's own last
  write (so its echo in a delta read is recognised), and a generation that names the Graph
  `transactionId` of its create (a retried create answers the event made the first time).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Final, Protocol

from shared.domain import recurrence as rules
from shared.domain.teams import TEAMS_LOCATION, TeamsMeeting, join_text
from shared.domain.tenants import MultiStaffMode

MAX_SENT: Final = 8  # unanswered drafts a copy remembers
TRANSACTION_PREFIX: Final = "connector/"  # a transactionId of the connector: connector/{appt}/{staff}/{gen}


@dataclass(frozen=True, slots=True)
class Customer:
    name: str
    email: str | None = None

    def line(self) -> str:
        return f"{self.name} <{self.email}>" if self.email else self.name


@dataclass(frozen=True, slots=True)
class Override:
    """One occurrence of a series that differs from the rule: moved, renamed, relocated."""

    original_date: date  # the occurrence's original local date (Graph addresses occurrences by it)
    start: datetime | date
    end: datetime | date
    subject: str | None = None
    location: str | None = None
    body: str | None = None


@dataclass(frozen=True, slots=True)
class Recurrence:
    rrule: str  # RFC 5545, validated as expressible in Outlook
    exdates: tuple[date, ...] = ()  # original local dates of cancelled occurrences
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True, slots=True)
class Appointment:
    """An appointment as the host defines it. Times are aware, in `time_zone` (IANA); all-day ones are
    dates (end exclusive), so they never shift a day in any zone."""

    appointment_id: str
    subject: str
    start: datetime | date
    end: datetime | date
    time_zone: str
    all_day: bool
    staff_ids: tuple[str, ...]
    body: str = ""
    body_type: str = "text"  # text | html
    location: str = ""
    customers: tuple[Customer, ...] = ()
    recurrence: Recurrence | None = None
    show_as: str = "busy"
    sensitivity: str = "normal"
    categories: tuple[str, ...] = ()
    video: bool = False


@dataclass(frozen=True, slots=True)
class RestoredOccurrence:
    """An occurrence the series' master still cancels but the host wants back (an exdate taken back, or an
    occurrence deleted in Outlook under host wins): Graph cannot restore a cancelled occurrence, so it is
    its own single event beside the series, linked to the appointment."""

    day: date  # the occurrence's original local date
    event_id: str


class CopyState(StrEnum):
    PENDING = "pending"  # not written yet (or a newer revision waits)
    SYNCED = "synced"  # Outlook holds this revision
    ERROR = "error"  # this staff member's calendar could not be written; the reason says why
    CONFLICT = "conflict"  # changed in Outlook; the tenant's policy kept Outlook's version
    DISABLED = "disabled"  # the staff member's calendar_to_outlook switch is off: left as it was


class CopyRole(StrEnum):
    COPY = "copy"  # the connector's own event in this calendar (no attendees)
    ORGANIZER = "organizer"  # the meeting, organised by this staff member
    ATTENDEE = "attendee"  # Exchange's attendee copy of the meeting; the connector only links it


@dataclass(frozen=True, slots=True)
class StaffCopy:
    """What the connector holds in one staff member's calendar for one appointment."""

    staff_id: str
    role: CopyRole
    state: CopyState = CopyState.PENDING
    graph_user_id: str | None = None  # the mailbox it lives in
    event_id: str | None = None  # the single event or series master
    change_key: str | None = None  # after the connector's last write (or the Outlook version it kept)
    ical_uid: str | None = None
    written_hash: str | None = None  # `OutlookEvent.written_hash` of that version
    revision: int = 0  # the appointment revision it holds
    generation: int = 0  # bumped whenever it must be created anew (a fresh transactionId)
    join_url: str | None = None
    error: str | None = None
    exceptions: tuple[str, ...] = ()  # ids of the occurrences the connector changed or cancelled
    exception_keys: tuple[str, ...] = ()  # the change keys of the exceptions as the connector left them
    # The original dates of the occurrences the connector changed (the host's overrides, and those it put
    # back to the series' own values): a later revision of the series re-applies or reverts each in place.
    override_days: tuple[date, ...] = ()
    restored: tuple[RestoredOccurrence, ...] = ()  # cancelled occurrences written back as events of their own
    # Adopted by the host's PUT (`outlook`) and not yet written: its claim on the event is held until the
    # write job records the event as the connector's (`appointment_takeover.settle_adoptions`).
    adopting: bool = False
    # Writes whose answer was lost (Graph may have applied them): the `WrittenShape.digest`s of the drafts
    # sent since the last answered write (space-separated, the last few), so that Outlook holding one of them
    # reads as the connector's own write; a delete, so that the event missing later is the connector's doing
    # (and the copy is deleted again, then made anew if still wanted).
    sent: str | None = None
    deleting: bool = False

    def with_sent(self, draft: EventDraft) -> StaffCopy:
        """This copy after sending `draft` without an answer."""
        shape = draft_shape(draft)
        digests = [*(self.sent or "").split(), shape.digest if shape is not None else ""]
        return replace(self, sent=" ".join(d for d in digests[-MAX_SENT:] if d))

    def sent_holds(self, shape: WrittenShape | None) -> bool:
        """Whether Outlook's version is a draft the connector sent and never heard back about."""
        return shape is not None and shape.digest in (self.sent or "").split()

    def transaction_id(self, appointment_id: str, day: date | None = None) -> str:
        """The `transactionId` of the copy's create (`day`: of the event that restores that occurrence)."""
        generation = f"{self.generation}.{day:%Y%m%d}" if day is not None else str(self.generation)
        return f"{TRANSACTION_PREFIX}{appointment_id}/{self.staff_id}/{generation}"

    @property
    def writable(self) -> bool:
        return self.role is not CopyRole.ATTENDEE


def appointment_of_transaction(transaction_id: str | None) -> str | None:
    """The appointment id inside one of the connector's transaction ids (None for anyone else's)."""
    if not transaction_id or not transaction_id.startswith(TRANSACTION_PREFIX):
        return None
    parts = transaction_id[len(TRANSACTION_PREFIX) :].split("/")
    return parts[0] if len(parts) == 3 and parts[0] else None


class AppointmentState(StrEnum):
    PENDING = "pending"
    SYNCED = "synced"
    PARTIAL = "partial"  # some calendars hold it, some failed
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class AppointmentRecord:
    """The host's current version of an appointment and its copies, as stored."""

    tenant_id: str
    appointment_id: str
    revision: int
    appointment: Appointment | None  # None once the host deleted it (copies are being removed)
    copies: Mapping[str, StaffCopy]
    updated_at: datetime
    reported_revision: int = 0  # the last revision whose outcome went on the feed
    meeting: TeamsMeeting | None = None  # a video appointment's one Teams meeting, once made
    etag: str | None = None
    reported_state: AppointmentState | None = None  # that outcome (a later, different one is told too)

    @property
    def unreported(self) -> bool:
        """The revision settled on an outcome the feed has not told: its first, or one that differs from
        the one told (a failed revision a retry, the nightly run or a resync then wrote)."""
        state = self.state
        if state in (AppointmentState.PENDING, AppointmentState.DELETING):
            return False
        return self.reported_revision < self.revision or self.reported_state is not state

    @property
    def state(self) -> AppointmentState:
        if self.appointment is None:
            return AppointmentState.DELETING if self.copies else AppointmentState.DELETED
        states = [c.state for c in self.copies.values()]
        if not states or CopyState.PENDING in states or any(c.revision < self.revision for c in self.live):
            return AppointmentState.PENDING
        failed = sum(1 for s in states if s is CopyState.ERROR)
        if failed == 0:
            return AppointmentState.SYNCED
        return AppointmentState.FAILED if failed == len(states) else AppointmentState.PARTIAL

    @property
    def live(self) -> list[StaffCopy]:
        """The copies not in error nor switched off (they hold, or are to hold, the current revision)."""
        return [c for c in self.copies.values() if c.state not in (CopyState.ERROR, CopyState.DISABLED)]


# --- planning the writes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StaffTarget:
    """Where a staff member's calendar is, or why it cannot be written."""

    staff_id: str
    graph_user_id: str | None = None
    address: str | None = None  # the mailbox's address (meeting invitations)
    display_name: str = ""
    problem: str | None = None  # unmatched, forbidden, no mailbox, unknown: a reason a person can act on
    teams_problem: str | None = None  # why Teams refuses the app for them (a video copy carries it)
    switched_off: str | None = None  # calendar_to_outlook is off: nothing is written there, and why
    video: bool = True  # the video switch: their copy carries the Teams meeting, they may organise it

    @property
    def usable(self) -> bool:
        """Their calendar can be written now."""
        return self.problem is None and self.switched_off is None and self.graph_user_id is not None


class StepKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    LINK = "link"  # find the attendee copy of the meeting (by iCalUId) and link it
    FAIL = "fail"  # the staff member's calendar cannot be written
    SKIP = "skip"  # the staff member's calendar_to_outlook switch is off: the copy stays as it is


@dataclass(frozen=True, slots=True)
class WriteStep:
    kind: StepKind
    copy: StaffCopy
    target: StaffTarget | None = None
    reason: str | None = None  # FAIL, SKIP: why


@dataclass(slots=True)
class WritePlan:
    """Deletes first (a staff member removed, a copy that must be made anew), then the writes to the
    organiser or to each calendar, then the links to attendee copies (which need the organiser's iCalUId)."""

    deletes: list[WriteStep] = field(default_factory=list)
    writes: list[WriteStep] = field(default_factory=list)
    links: list[WriteStep] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.deletes or self.writes or self.links)


def desired_roles(appointment: Appointment | None, mode: MultiStaffMode) -> dict[str, CopyRole]:
    if appointment is None:
        return {}
    staff = list(dict.fromkeys(appointment.staff_ids))
    if mode is MultiStaffMode.MEETING and len(staff) > 1:
        return {s: CopyRole.ORGANIZER if i == 0 else CopyRole.ATTENDEE for i, s in enumerate(staff)}
    return dict.fromkeys(staff, CopyRole.COPY)


def plan_writes(
    record: AppointmentRecord,
    targets: Mapping[str, StaffTarget],
    mode: MultiStaffMode,
    *,
    recheck: Sequence[str] = (),
    refresh: Sequence[str] = (),
) -> WritePlan:
    """The steps that bring every staff calendar to `record.revision`. `recheck`: staff whose copy Outlook
    may have changed (a delta read saw it): they are looked at even if they hold the revision. `refresh`:
    staff whose copy holds the revision but must be written again (the meeting's join details changed)."""
    result = WritePlan()
    roles = desired_roles(record.appointment, mode)
    result.deletes = _removals(record, roles, targets)
    for staff_id, role in roles.items():
        target = targets.get(staff_id) or StaffTarget(staff_id, problem="no such staff member")
        step = _step(record, staff_id, role, target, staff_id in recheck, refresh=staff_id in refresh)
        if step is not None:
            (result.links if step.kind is StepKind.LINK else result.writes).append(step)
    organiser_failed = any(
        s.kind is StepKind.FAIL and s.copy.role is CopyRole.ORGANIZER for s in result.writes
    )
    if organiser_failed:
        reason = "the meeting's organiser could not be written"
        result.writes += [WriteStep(StepKind.FAIL, s.copy, s.target, reason) for s in result.links]
        result.links = []
    return result


def _removals(
    record: AppointmentRecord, roles: Mapping[str, CopyRole], targets: Mapping[str, StaffTarget]
) -> list[WriteStep]:
    """Copies of staff no longer on the appointment, or that must be made anew (another role, mailbox)."""
    steps: list[WriteStep] = []
    for staff_id, copy in record.copies.items():
        role = roles.get(staff_id)
        target = targets.get(staff_id)
        kept = role is not None and role is copy.role and (target is None or not _moved(copy, target))
        if kept and not copy.deleting:
            continue
        if target is not None and target.switched_off is not None:
            if role is None:  # left as it is until the switch is on again (the catch-up removes it then)
                steps.append(WriteStep(StepKind.SKIP, copy, target, target.switched_off))
            continue
        if copy.event_id is not None and copy.writable:
            steps.append(WriteStep(StepKind.DELETE, copy))
        elif role is None:  # nothing of ours in that calendar (an attendee copy goes with the meeting)
            steps.append(WriteStep(StepKind.DELETE, replace(copy, event_id=None)))
    return steps


def _step(
    record: AppointmentRecord,
    staff_id: str,
    role: CopyRole,
    target: StaffTarget,
    recheck: bool,
    *,
    refresh: bool = False,
) -> WriteStep | None:
    current = record.copies.get(staff_id)
    if target.switched_off is not None:  # nothing written, nothing deleted: the copy is kept as it is
        return WriteStep(StepKind.SKIP, current or StaffCopy(staff_id, role), target, target.switched_off)
    if current is None or current.role is not role or _moved(current, target) or current.deleting:
        generation = current.generation + 1 if current is not None else 0
        current = StaffCopy(staff_id, role, generation=generation)
    if target.problem is not None:
        return WriteStep(StepKind.FAIL, current, target, target.problem)
    stale = current.revision < record.revision or current.state in (
        CopyState.PENDING,
        CopyState.ERROR,
        CopyState.DISABLED,
    )
    stale = stale or refresh
    if role is CopyRole.ATTENDEE:
        if current.event_id is None or stale or recheck:
            return WriteStep(StepKind.LINK, current, target)
        return None
    if current.event_id is None:
        return WriteStep(StepKind.CREATE, current, target)
    if stale or recheck:
        return WriteStep(StepKind.UPDATE, current, target)
    return None


def _moved(copy: StaffCopy, target: StaffTarget) -> bool:
    return target.graph_user_id is not None and copy.graph_user_id not in (None, target.graph_user_id)


# --- what goes into a calendar ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Invitee:
    name: str
    address: str


@dataclass(frozen=True, slots=True)
class EventDraft:
    """One event as the connector writes it (the Graph edge turns it into Graph's JSON)."""

    appointment_id: str
    subject: str
    body: str
    body_type: str
    location: str
    start: datetime | date
    end: datetime | date
    time_zone: str
    all_day: bool
    show_as: str
    sensitivity: str
    categories: tuple[str, ...]
    online_meeting: bool
    recurrence: Recurrence | None
    attendees: tuple[Invitee, ...] = ()


def draft_for(
    appointment: Appointment,
    role: CopyRole,
    invitees: Sequence[Invitee] = (),
    *,
    online_meeting: bool | None = None,
    meeting: TeamsMeeting | None = None,
) -> EventDraft:
    """The event for one calendar: a copy carries the customers in its body; a meeting invites them.

    `online_meeting`: this event is to be the Teams meeting (default: whether the appointment is a video
    one); `meeting`: the appointment's Teams meeting made elsewhere, whose join details the body carries."""
    body, body_type = appointment.body, appointment.body_type
    location = appointment.location
    attendees: tuple[Invitee, ...] = ()
    if role is CopyRole.ORGANIZER:
        customers = [Invitee(c.name, c.email) for c in appointment.customers if c.email]
        attendees = tuple({i.address.lower(): i for i in [*invitees, *customers]}.values())
    elif appointment.customers:
        body = _with_customers(body, body_type, appointment.customers)
    if meeting is not None:
        body = body + join_text(meeting, body_type)
        location = location or TEAMS_LOCATION
    return EventDraft(
        appointment_id=appointment.appointment_id,
        subject=appointment.subject,
        body=body,
        body_type=body_type,
        location=location,
        start=appointment.start,
        end=appointment.end,
        time_zone=appointment.time_zone,
        all_day=appointment.all_day,
        show_as=appointment.show_as,
        sensitivity=appointment.sensitivity,
        categories=appointment.categories,
        online_meeting=appointment.video if online_meeting is None else online_meeting,
        recurrence=appointment.recurrence,
        attendees=attendees,
    )


def complete_override(draft: EventDraft, override: Override) -> Override:
    """An override with every text the occurrence shows: what the host left out is the series' own (an
    exception keeps what it held when its master is changed later, so each write states it all)."""
    return replace(
        override,
        subject=draft.subject if override.subject is None else override.subject,
        location=draft.location if override.location is None else override.location,
        body=draft.body if override.body is None else override.body,
    )


def ruled_occurrence(draft: EventDraft, day: date) -> Override:
    """The occurrence of `day` as the series' rule makes it: the series' time and texts (to put back an
    occurrence the host no longer overrides; Graph cannot turn an exception into an occurrence again)."""
    if isinstance(draft.start, datetime) and isinstance(draft.end, datetime):
        begins = datetime.combine(day, draft.start.timetz())
        return Override(
            day, begins, begins + (draft.end - draft.start), draft.subject, draft.location, draft.body
        )
    span = draft.end - draft.start  # type: ignore[operator]  # all-day: both dates
    return Override(day, day, day + span, draft.subject, draft.location, draft.body)


def restored_draft(draft: EventDraft, day: date, meeting: TeamsMeeting | None) -> EventDraft:
    """The single event that stands for the series' occurrence of `day` (a `RestoredOccurrence`): the
    host's override of that day, else the rule's time and the series' texts; the series' attendees. It makes
    no Teams meeting of its own: the meeting's join details go into its body (`meeting`, for the event that
    is the meeting; the other copies' bodies carry them already)."""
    recurrence = draft.recurrence
    override = next((o for o in recurrence.overrides if o.original_date == day), None) if recurrence else None
    occurrence = complete_override(draft, override) if override else ruled_occurrence(draft, day)
    body = occurrence.body if occurrence.body is not None else draft.body
    if meeting is not None and draft.online_meeting:
        body = body + join_text(meeting, draft.body_type)
    return replace(
        draft,
        subject=occurrence.subject if occurrence.subject is not None else draft.subject,
        location=occurrence.location if occurrence.location is not None else draft.location,
        body=body,
        start=occurrence.start,
        end=occurrence.end,
        online_meeting=False,
        recurrence=None,
    )


# --- telling Outlook's version from the draft -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WrittenShape:
    """What the connector writes into an event, in a form a draft compares with whatever Exchange did to it.

    Exchange rewrites what it stores: a text body comes back as HTML, an HTML body wrapped in a document of
    its own; times come back in another zone. So the body counts by its words, times by their instants, a
    series by the RRULE its pattern reads back as; `cancelled` holds a series' cancelled occurrences."""

    digest: str
    cancelled: frozenset[date] = frozenset()

    def holds(self, draft: EventDraft, restored: Sequence[RestoredOccurrence] = ()) -> bool:
        """Whether the event holds the draft (the connector's own write, even when Graph's answer to it was
        lost): the same content, and no occurrence cancelled but those the host cancelled and those written
        back as events of their own (`restored`)."""
        expected = draft_shape(draft)
        if expected is None or expected.digest != self.digest:
            return False
        exdates = set(draft.recurrence.exdates) if draft.recurrence is not None else set()
        return self.cancelled <= exdates | {r.day for r in restored}


def written_shape(
    *,
    subject: str,
    body: str,
    body_type: str,
    location: str,
    start: datetime | date,
    end: datetime | date,
    all_day: bool,
    show_as: str,
    sensitivity: str,
    categories: Sequence[str],
    attendees: Sequence[str],
    rrule: str | None,
    cancelled: Sequence[date] = (),
) -> WrittenShape:
    """The shape of an event as Graph answered it (`rrule`: its pattern read back with `from_graph`)."""
    parts = (
        subject,
        body_words(body, body_type),
        location,
        _instant(start),
        _instant(end),
        all_day,
        show_as.lower(),
        sensitivity.lower(),
        tuple(sorted(categories)),
        tuple(sorted(a.lower() for a in attendees)),
        rrule or "",
    )
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()
    return WrittenShape(digest, frozenset(cancelled))


class _Shaped(Protocol):
    """What an event and a draft have in common: the members the connector writes."""

    @property
    def subject(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def body_type(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def start(self) -> datetime | date: ...
    @property
    def end(self) -> datetime | date: ...
    @property
    def all_day(self) -> bool: ...
    @property
    def show_as(self) -> str: ...
    @property
    def sensitivity(self) -> str: ...
    @property
    def categories(self) -> Sequence[str]: ...
    @property
    def attendees(self) -> Sequence[_Addressed]: ...


class _Addressed(Protocol):
    @property
    def address(self) -> str: ...


def shape_of(item: _Shaped, rrule: str | None, cancelled: Sequence[date] = ()) -> WrittenShape:
    """The shape of an event Graph answered, or of a draft the connector sends (`rrule` as `from_graph`
    reads the pattern back)."""
    return written_shape(
        subject=item.subject,
        body=item.body,
        body_type=item.body_type,
        location=item.location,
        start=item.start,
        end=item.end,
        all_day=item.all_day,
        show_as=item.show_as,
        sensitivity=item.sensitivity,
        categories=item.categories,
        attendees=[a.address for a in item.attendees],
        rrule=rrule,
        cancelled=cancelled,
    )


def draft_shape(draft: EventDraft) -> WrittenShape | None:
    """The shape an event holding `draft` has (None for a series whose pattern cannot be written)."""
    rrule = None
    if draft.recurrence is not None:
        try:
            recurrence = rules.to_graph(draft.recurrence.rrule, draft.start, draft.time_zone, draft.end)
            rrule = rules.from_graph(recurrence)
        except ValueError:
            return None
    return shape_of(draft, rrule)


_HIDDEN: Final = re.compile(r"<(script|style|head|title)\b[^>]*>.*?</\1\s*>|<!--.*?-->", re.S | re.I)
_TAG: Final = re.compile(r"<[^>]+>")


def body_words(content: str, content_type: str) -> str:
    """A body's words, one space apart: the same for a text body and the HTML Exchange makes of it, and
    for an HTML body and the document Exchange wraps it in."""
    if content_type.lower() == "html":
        content = html.unescape(_TAG.sub(" ", _HIDDEN.sub(" ", content)))
    return " ".join(content.split())


def _instant(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def _with_customers(body: str, body_type: str, customers: Sequence[Customer]) -> str:
    if body_type == "html":
        items = "".join(f"<li>{_escape(c.line())}</li>" for c in customers)
        return f"{body}<p>Customers:</p><ul>{items}</ul>"
    lines = "\n".join(f"- {c.line()}" for c in customers)
    return f"{body}\n\nCustomers:\n{lines}" if body else f"Customers:\n{lines}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
