"""Outlook events for tests, with sensible defaults."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.domain.calendar import Attendee, EventKind, OutlookEvent, Person

_numbers = itertools.count(1)


def event(
    event_id: str | None = None,
    *,
    start: datetime | date | None = None,
    hours: float = 1,
    **changes: Any,
) -> OutlookEvent:
    number = next(_numbers)
    begins = start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC) + timedelta(hours=number % 48)
    all_day = not isinstance(begins, datetime)
    ends: datetime | date = begins + timedelta(days=1) if all_day else begins + timedelta(hours=hours)
    base = OutlookEvent(
        id=event_id or f"AAMkAGI{number:06d}==",
        change_key=f"ck-{number}",
        ical_uid=f"uid-{event_id or number}",
        kind=EventKind.SINGLE,
        series_master_id=None,
        subject=f"Meeting {number}",
        body="Agenda",
        body_type="text",
        location="Room 1",
        start=begins,
        end=ends,
        all_day=all_day,
        show_as="busy",
        sensitivity="normal",
        categories=(),
        cancelled=False,
        organizer=Person("Debra Berger", "debra@contoso.example"),
        attendees=(Attendee("Adele Vance", "adele@contoso.example", "required", "accepted"),),
        join_url=None,
        original_time_zone="W. Europe Standard Time",
        last_modified=None,
    )
    return replace(base, **changes)
