"""Outlook calendar items as the connector sees them: typed, zone-aware, with a content hash.

Timed events carry aware UTC datetimes; all-day events carry dates (never midnight datetimes), so an
all-day event never shifts a day in any zone. The Graph edge (`shared/adapters/graph/events.py`) parses
Graph's JSON into these models; nothing above it touches Graph's dictionaries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any, Final

# The connector's own extended property on every event it writes: its value is the host appointment id.
# The characters of an Outlook body the host receives. Outlook allows far larger (pasted HTML), but one
# change must stay inside a table entity (1 MiB): even 32,000 astral characters, escaped as ASCII JSON
# (12 characters each), leave room for the rest of the event under the feed's `MAX_CHANGE_CHARS`.
BODY_LIMIT: Final = 32_000
APPOINTMENT_PROPERTY_ID: Final = "String {4c1b7a3e-2f67-4b8e-9a51-6d0c3a9e2b17} Name AppointmentId"


class EventKind(StrEnum):
    SINGLE = "singleInstance"
    OCCURRENCE = "occurrence"
    EXCEPTION = "exception"
    SERIES_MASTER = "seriesMaster"


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    address: str


@dataclass(frozen=True, slots=True)
class Attendee:
    name: str
    address: str
    type: str  # required | optional | resource
    response: str  # none | accepted | declined | tentativelyAccepted | organizer | notResponded


@dataclass(frozen=True, slots=True)
class OutlookEvent:
    """One event instance in a mailbox, as calendarView (delta) reports it."""

    id: str
    change_key: str | None
    ical_uid: str | None
    kind: EventKind
    series_master_id: str | None
    subject: str
    body: str
    body_type: str  # text | html
    location: str
    start: datetime | date  # aware UTC datetime, or a date when all_day
    end: datetime | date
    all_day: bool
    show_as: str  # free | tentative | busy | oof | workingElsewhere | unknown
    sensitivity: str  # normal | personal | private | confidential
    categories: tuple[str, ...]
    cancelled: bool
    organizer: Person | None
    attendees: tuple[Attendee, ...]
    join_url: str | None
    original_time_zone: str | None  # as Outlook reports it (a Windows or IANA name)
    last_modified: datetime | None
    transaction_id: str | None = None  # set by the app that created it (the connector names its own)
    original_start: datetime | date | None = None  # an occurrence's or exception's place in its series
    is_organizer: bool | None = None  # None: Graph left it out
    response: str | None = None  # the mailbox owner's own response (responseStatus.response)
    recurrence: Mapping[str, Any] | None = None  # a series master's patternedRecurrence, as Graph gives it
    cancelled_dates: tuple[date, ...] = ()  # a series master's cancelledOccurrences (original local dates)

    @property
    def meeting(self) -> bool:
        """A meeting (it has attendees besides the organiser), not a plain appointment."""
        return bool(self.attendees)

    def ends_at(self) -> datetime:
        """The end as an instant (an all-day end date counts from its UTC midnight)."""
        if isinstance(self.end, datetime):
            return self.end
        return datetime.combine(self.end, time(), tzinfo=UTC)

    def content_hash(self) -> str:
        """Everything the host can see; equal hashes mean nothing the host cares about changed."""
        parts = self._hashed_parts()
        # Added later: left out while empty, so an event without them keeps the hash it was stored with.
        extra = (
            _instant(self.original_start) if self.original_start is not None else "",
            self.is_organizer is False,  # an attendee's copy
            self.response if self.response not in (None, "organizer") else "",
            repr(sorted(self.recurrence.items())) if self.recurrence else "",
            ",".join(map(str, self.cancelled_dates)),
        )
        return _digest((*parts, *extra) if any(extra) else parts)

    def _hashed_parts(self) -> tuple[object, ...]:
        """What the content hash held first."""
        return (
            self.subject,
            self.body,
            self.body_type,
            self.location,
            _instant(self.start),
            _instant(self.end),
            self.all_day,
            self.show_as,
            self.sensitivity,
            "\x1f".join(self.categories),
            self.cancelled,
            f"{self.organizer.name}\x1f{self.organizer.address}" if self.organizer else "",
            "\x1e".join(f"{a.name}\x1f{a.address}\x1f{a.type}\x1f{a.response}" for a in self.attendees),
            self.join_url or "",
            self.kind.value,
            self.series_master_id or "",
        )

    def told_before(self, stored_hash: str) -> bool:
        """Whether `stored_hash` is this event's content hash, now or as the connector computed it before
        the later members joined (a received meeting's response, its original start, its recurrence): a
        hash stored before them matches when nothing else changed, so a deploy announces nothing."""
        return stored_hash in {self.content_hash(), self.first_format_hash()}

    def first_format_hash(self) -> str:
        """The content hash as the connector computed it before its later members joined."""
        return _digest(self._hashed_parts())

    def written_hash(self) -> str:
        """What the connector writes into an event (not what attendees or Outlook add: responses,
        reminders): equal hashes mean an Outlook change left the host's appointment as it was."""
        parts = (
            self.subject,
            self.body,
            self.location,
            _instant(self.start),
            _instant(self.end),
            self.all_day,
            self.show_as,
            self.sensitivity,
            "\x1f".join(self.categories),
            "\x1e".join(sorted(a.address.lower() for a in self.attendees)),
        )
        return _digest(parts)

    def free_busy(self) -> dict[str, Any]:
        """The privacy-mode view: when, and how busy; nothing else."""
        return {
            "id": self.id,
            "start": _instant(self.start),
            "end": _instant(self.end),
            "all_day": self.all_day,
            "show_as": self.show_as,
        }

    def details(self) -> dict[str, Any]:
        """The full view the host receives outside privacy mode."""
        return {
            **self.free_busy(),
            "ical_uid": self.ical_uid,
            "type": self.kind.value,
            "series_master_id": self.series_master_id,
            "subject": self.subject,
            "body": {
                "content_type": self.body_type,
                "content": self.body[:BODY_LIMIT],
                "truncated": len(self.body) > BODY_LIMIT,
            },
            "location": self.location,
            "sensitivity": self.sensitivity,
            "categories": list(self.categories),
            "organizer": {"name": self.organizer.name, "address": self.organizer.address}
            if self.organizer
            else None,
            "attendees": [
                {"name": a.name, "address": a.address, "type": a.type, "response": a.response}
                for a in self.attendees
            ],
            "join_url": self.join_url,
            "time_zone": self.original_time_zone,
            "meeting_id": self.ical_uid,
            "is_organizer": self.is_organizer,
            "response": self.response,
        }


@dataclass(frozen=True, slots=True)
class RemovedEvent:
    """An `@removed` delta entry: deleted, cancelled, or gone out of the window."""

    id: str


DeltaItem = OutlookEvent | RemovedEvent


def _digest(parts: tuple[object, ...]) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def _instant(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()
