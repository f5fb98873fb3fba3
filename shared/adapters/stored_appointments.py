"""The stored form of a host appointment (the `Document` of its row in `appointments`), apart from the API's.

The API's parser (`shared/service/appointment_commands.py`) checks what a host may send: limits, known
zones, RRULEs Outlook can hold, exdates that are occurrences. A row holds what was accepted once, under
the rules of its day, so reading it back must not apply today's rules: a tighter limit would make stored
appointments unreadable and their write jobs fail. This codec only converts.

The JSON has the same members as the API's appointment (rows written before this codec existed are read
the same way): times as ISO 8601 with their offset (dates for all-day appointments), converted back into
the appointment's zone; exdates and recurrence ids as dates; absent optional texts and emails left out.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from typing import Any, Final

from shared.domain.appointments import Appointment, Customer, Override, Recurrence
from shared.domain.timezones import require_zone


def to_stored(appointment: Appointment) -> dict[str, Any]:
    """The appointment as its row keeps it (`from_stored` of it gives the same appointment back)."""
    document: dict[str, Any] = _plain(appointment)
    del document["appointment_id"]  # the row's key
    return document


def from_stored(appointment_id: str, document: dict[str, Any]) -> Appointment:
    """A stored appointment, as it was accepted (no limit or rule of the API applied again)."""
    all_day = bool(document.get("all_day"))
    zone = document.get("time_zone") or "UTC"
    raw = document.get("recurrence")
    return Appointment(
        appointment_id=appointment_id,
        subject=document.get("subject") or "",
        start=_when(document["start"], all_day, zone),
        end=_when(document["end"], all_day, zone),
        time_zone=zone,
        all_day=all_day,
        staff_ids=tuple(document.get("staff_ids") or ()),
        body=document.get("body") or "",
        body_type=document.get("body_type") or "text",
        location=document.get("location") or "",
        customers=tuple(Customer(c["name"], c.get("email") or None) for c in document.get("customers") or ()),
        recurrence=None if raw is None else _recurrence(raw, all_day, zone),
        show_as=document.get("show_as") or "busy",
        sensitivity=document.get("sensitivity") or "normal",
        categories=tuple(document.get("categories") or ()),
        video=bool(document.get("video")),
    )


def _plain(value: object) -> Any:
    """Dates and times as ISO 8601, tuples as lists, records as objects without their absent members (an
    override's `original_date` by the API's name for it, `recurrence_id`)."""
    if isinstance(value, date):  # a datetime too
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Appointment | Customer | Recurrence | Override):
        members = ((f.name, getattr(value, f.name)) for f in fields(value))
        return {_NAMES.get(name, name): _plain(item) for name, item in members if item is not None}
    return value


_NAMES: Final = {"original_date": "recurrence_id"}


def _when(value: str, all_day: bool, zone: str) -> datetime | date:
    """A stored time: a date for an all-day appointment, else an aware time in the appointment's zone."""
    if all_day:
        return date.fromisoformat(value)
    return datetime.fromisoformat(value).astimezone(require_zone(zone))


def _recurrence(raw: dict[str, Any], all_day: bool, zone: str) -> Recurrence:
    overrides = tuple(
        Override(
            original_date=date.fromisoformat(o["recurrence_id"]),
            start=_when(o["start"], all_day, zone),
            end=_when(o["end"], all_day, zone),
            subject=o.get("subject") or None,
            location=o.get("location") or None,
            body=o.get("body") or None,
        )
        for o in raw.get("overrides") or ()
    )
    exdates = tuple(date.fromisoformat(day) for day in raw.get("exdates") or ())
    return Recurrence(raw["rrule"], exdates, overrides)
