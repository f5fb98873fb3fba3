"""The calendar's data: the seam types the core uses and the stored event record.

Memory matters (10,000 mailboxes x 50 events): a stored event is a slotted object holding only
what was set; defaults are filled in when rendering. Occurrences of a series are never stored:
an occurrence is (master, original local date), computed on demand; only exceptions (changed
occurrences) and the dates of cancelled occurrences are kept on the master.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from m365emulator.calendar import ids
from m365emulator.calendar.recurrence import Recurrence


@dataclass(frozen=True)
class MailboxOwner:
    tenant_id: str
    user_id: str
    upn: str
    mail: str | None
    display_name: str
    time_zone: str  # IANA or Windows name of the mailbox


@dataclass(frozen=True)
class ChangeEvent:
    change_type: Literal["created", "updated", "deleted"]
    event_id: str
    etag: str | None


Kind = Literal["singleInstance", "seriesMaster", "exception"]


@dataclass(slots=True, eq=False)
class MeetingLink:
    """On an attendee's copy of a meeting (and its exceptions): where it comes from.

    Only copies delivered by `invitations` carry one, so events nobody was invited to cost nothing.
    """

    uid: str  # the meeting's iCalUId: the organiser's single instance or series master
    organizer_id: str  # the organiser's mailbox (user id)
    event_id: str  # the organiser's item
    intended_show_as: str  # the organiser's showAs: what the copy shows once accepted


@dataclass(slots=True, eq=False)
class StoredEvent:
    """A single instance, a series master, or an exception of a series (kept on its master)."""

    id: str
    kind: Kind
    change_key: str
    created: datetime
    modified: datetime
    # time: wall clock in the event's zones; all-day events keep midnight walls (dates, really)
    start: datetime
    end: datetime
    start_zone: ZoneInfo
    end_zone: ZoneInfo
    start_zone_label: str
    end_zone_label: str
    is_all_day: bool = False
    subject: str = ""
    body_type: str = "text"
    body: str = ""
    # pass-through Graph properties that were set and differ from the defaults (see render.py)
    props: dict[str, Any] | None = None
    ext: dict[str, tuple[str, str]] | None = None  # normalised id -> (id as given, value)
    transaction_id: str | None = None
    online: dict[str, Any] | None = None  # onlineMeeting, once the event is a Teams meeting
    organizer: dict[str, Any] | None = None  # None: the mailbox owner
    meeting: MeetingLink | None = None  # attendee copies of another mailbox's meeting only
    recurrence: Recurrence | None = None
    # series masters only
    exceptions: dict[date, StoredEvent] | None = None
    cancelled: set[date] | None = None
    # exceptions only
    master_id: str | None = None
    original_date: date | None = None
    original_start: datetime | None = None  # UTC instant the replaced occurrence was scheduled at

    @property
    def ical_uid(self) -> str:
        """Derived from the id, except on an attendee's copy: the organiser's (per occurrence)."""
        if self.meeting is None:
            return ids.ical_uid_of(self.id)
        if self.original_date is not None:
            return ids.occurrence_ical_uid(self.meeting.uid, self.original_date)
        return self.meeting.uid

    @property
    def etag(self) -> str:
        return f'W/"{self.change_key}"'


@dataclass(frozen=True, slots=True)
class Instance:
    """What a calendar view shows: a single instance, an occurrence or an exception."""

    event: StoredEvent  # the single instance, the exception, or the master of an occurrence
    id: str
    start_utc: datetime
    end_utc: datetime
    original_date: date | None = None  # occurrences and exceptions

    @property
    def is_occurrence(self) -> bool:
        return self.event.kind == "seriesMaster"
