"""Outlook series for tests, as Exchange keeps them (see `OutlookSeries`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.domain.calendar import EventKind, OutlookEvent
from tests.fakes.calendar import FakeMailboxes
from tests.fakes.events import event

WEEKLY = {
    "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["wednesday"], "firstDayOfWeek": "sunday"},
    "range": {"type": "noEnd", "startDate": "2026-11-25", "recurrenceTimeZone": "W. Europe Standard Time"},
}
FIRST = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # 09:00 in Berlin


class OutlookSeries:
    """A weekly series in a mailbox as Exchange keeps it: a master (read by id only), and its occurrences
    and exceptions, which carry the master's change key (exceptions their own) and are reported again
    whenever the series changes."""

    def __init__(
        self, mailboxes: FakeMailboxes, weeks: int = 8, *, user: str = "g1", master_id: str = "M"
    ) -> None:
        self.mailboxes = mailboxes
        self.user = user
        self.master_id = master_id
        self.master = mailboxes.put_master(
            user,
            event(
                master_id,
                start=FIRST,
                kind=EventKind.SERIES_MASTER,
                recurrence=WEEKLY,
                subject="Weekly review",
                is_organizer=True,
                response="organizer",
                attendees=(),
            ),
        )
        self.weeks = weeks
        self.cancelled: set[date] = set()
        self.exceptions: dict[date, OutlookEvent] = {}
        self.publish()

    def occurrence_id(self, day: date) -> str:
        return f"{self.master_id}.{day.isoformat()}"

    def publish(self) -> None:
        """Every occurrence again with the master's current change key (a series change reports them all)."""
        box = self.mailboxes.mailbox(self.user)
        for week in range(self.weeks):
            start = FIRST + timedelta(weeks=week)
            day = start.date()
            occurrence_id = self.occurrence_id(day)
            if day in self.cancelled:
                if occurrence_id in box.events:
                    self.mailboxes.remove(self.user, occurrence_id)
                continue
            instance = self.exceptions.get(day) or replace(
                self.master,
                id=occurrence_id,
                kind=EventKind.OCCURRENCE,
                series_master_id=self.master_id,
                original_start=start,
                start=start,
                end=start + timedelta(hours=1),
                recurrence=None,
                ical_uid=f"uid-{self.master_id}-{day}",
            )
            if day not in self.exceptions:
                instance = replace(instance, change_key=self.master.change_key)
            box.events[occurrence_id] = instance
            box.log.append(occurrence_id)

    def change_master(self, **changes: Any) -> None:
        self.master = self.mailboxes.put_master(self.user, replace(self.master, **changes))
        self.publish()

    def cancel(self, day: date) -> None:
        self.cancelled.add(day)
        self.change_master(cancelled_dates=tuple(sorted(self.cancelled)))

    def move(self, day: date, hours: int) -> None:
        start = datetime.combine(day, FIRST.timetz()) + timedelta(hours=hours)
        self.exceptions[day] = replace(
            self.master,
            id=self.occurrence_id(day),
            change_key=f"ex-{day}",
            kind=EventKind.EXCEPTION,
            series_master_id=self.master_id,
            original_start=datetime.combine(day, FIRST.timetz()),
            start=start,
            end=start + timedelta(hours=1),
            recurrence=None,
            subject="Weekly review (moved)",
        )
        self.change_master()

    def delete(self) -> None:
        box = self.mailboxes.mailbox(self.user)
        for instance_id in [i for i, e in box.events.items() if e.series_master_id == self.master_id]:
            self.mailboxes.remove(self.user, instance_id)
        self.mailboxes.remove_master(self.user, self.master_id)
