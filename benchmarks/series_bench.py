"""What a week of a recurring-heavy calendar costs the host's feed: `recurring_events: series` against
`occurrences`.

    .venv/bin/python -m benchmarks.series_bench [--users 10] [--days 7]

Ten users, each with a calendar full of recurring meetings (a daily stand-up, three weekly meetings, a
fortnightly one-to-one, a monthly review on the second Tuesday, weekdays only for the stand-up), as
Exchange reports them to calendarView delta: occurrences carrying their master's change key, masters
only by `GET /events/{id}`. The sync planner (`shared.domain.planner.plan`, with the series masters
`series.masters_to_read` asks for) runs the migration, then one full read per day for `--days` days
while the window's edge moves on a day at a time and the users edit their series: each day one user
moves an occurrence (an exception) and another cancels one. Printed per mode: the feed entries and the
bytes the feed stores for them (`encoded_change`), for the migration and for the week, and the masters
read. Asserts nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from dateutil.rrule import rrulestr

from shared.domain.calendar import Attendee, EventKind, OutlookEvent, Person, RemovedEvent
from shared.domain.planner import ItemStatus, Observation, Visibility, plan
from shared.domain.series import masters_to_read
from shared.domain.tenants import RecurringEvents, TenantSettings
from shared.service.change_json import encoded_change
from shared.service.records import Change

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday


def _weekly(interval: int, *days: str) -> dict[str, Any]:
    return {"type": "weekly", "interval": interval, "daysOfWeek": list(days), "firstDayOfWeek": "monday"}


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
SECOND_TUESDAY = {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"], "index": "second"}
SERIES: tuple[tuple[str, str, dict[str, Any], int], ...] = (  # subject, rrule, Graph pattern, hour (UTC)
    ("Stand-up", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", _weekly(1, *WEEKDAYS), 8),
    ("Team sync", "FREQ=WEEKLY;BYDAY=MO", _weekly(1, "monday"), 10),
    ("Design review", "FREQ=WEEKLY;BYDAY=WE", _weekly(1, "wednesday"), 13),
    ("Customer call", "FREQ=WEEKLY;BYDAY=TH", _weekly(1, "thursday"), 15),
    ("One-to-one", "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR", _weekly(2, "friday"), 11),
    ("Monthly review", "FREQ=MONTHLY;BYDAY=2TU", SECOND_TUESDAY, 14),
)


@dataclass
class Mailbox:
    """One user's series as Exchange holds them."""

    user: int
    masters: dict[str, OutlookEvent] = field(default_factory=dict)
    cancelled: dict[str, set[date]] = field(default_factory=dict)
    moved: dict[str, dict[date, OutlookEvent]] = field(default_factory=dict)
    versions: int = 0

    def __post_init__(self) -> None:
        for number, (subject, _, pattern, hour) in enumerate(SERIES):
            master_id = f"u{self.user}-s{number}"
            first = _first(number, hour)
            starts = {"type": "noEnd", "startDate": first.date().isoformat(), "recurrenceTimeZone": "UTC"}
            recurrence = {"pattern": pattern, "range": starts}
            self.masters[master_id] = _event(master_id, subject, first, EventKind.SERIES_MASTER, recurrence)
            self.cancelled[master_id] = set()
            self.moved[master_id] = {}

    def touch(self, master_id: str) -> None:
        self.versions += 1
        master = self.masters[master_id]
        self.masters[master_id] = replace(
            master,
            change_key=f"ck-{master_id}-{self.versions}",
            cancelled_dates=tuple(sorted(self.cancelled[master_id])),
        )

    def instances(self, start: datetime, end: datetime) -> Iterator[OutlookEvent]:
        for number, (_, rule, _, hour) in enumerate(SERIES):
            master_id = f"u{self.user}-s{number}"
            master = self.masters[master_id]
            for moment in rrulestr(rule, dtstart=_first(number, hour)).between(start, end, inc=True):
                day = moment.date()
                if day in self.cancelled[master_id]:
                    continue
                yield self.moved[master_id].get(day) or replace(
                    master,
                    id=f"{master_id}.{day}",
                    kind=EventKind.OCCURRENCE,
                    series_master_id=master_id,
                    ical_uid=f"uid-{master_id}-{day}",
                    start=moment,
                    end=moment + timedelta(hours=1),
                    original_start=moment,
                    recurrence=None,
                    cancelled_dates=(),
                )

    def move(self, master_id: str, day: date) -> None:
        occurrence = next(i for i in self.instances(*_day(day)) if i.series_master_id == master_id)
        self.moved[master_id][day] = replace(
            occurrence,
            kind=EventKind.EXCEPTION,
            change_key=f"ex-{occurrence.id}",
            start=occurrence.start + timedelta(hours=1),  # type: ignore[operator]
            end=occurrence.end + timedelta(hours=1),  # type: ignore[operator]
            subject=occurrence.subject + " (moved)",
        )
        self.touch(master_id)

    def cancel(self, master_id: str, day: date) -> None:
        self.cancelled[master_id].add(day)
        self.moved[master_id].pop(day, None)
        self.touch(master_id)


def _first(number: int, hour: int) -> datetime:
    if number == 5:  # the second Tuesday of the month
        return datetime(2026, 11, 10, hour, tzinfo=UTC)
    weekday = (0, 0, 2, 3, 4)[number]
    return datetime.combine(START.date() + timedelta(days=weekday), time(hour), tzinfo=UTC)


def _day(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _event(
    event_id: str, subject: str, start: datetime, kind: EventKind, recurrence: dict[str, Any]
) -> OutlookEvent:
    people = tuple(
        Attendee(f"Colleague {n}", f"c{n}@contoso.example", "required", "accepted") for n in range(4)
    )
    return OutlookEvent(
        id=event_id,
        change_key=f"ck-{event_id}-0",
        ical_uid=f"uid-{event_id}",
        kind=kind,
        series_master_id=None,
        subject=subject,
        body="<html><body><p>Agenda: see the shared notes.</p></body></html>",
        body_type="html",
        location="Room 4.02",
        start=start,
        end=start + timedelta(hours=1),
        all_day=False,
        show_as="busy",
        sensitivity="normal",
        categories=(),
        cancelled=False,
        organizer=Person("Organiser", "organiser@contoso.example"),
        attendees=people,
        join_url="https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2/0",
        original_time_zone="UTC",
        last_modified=None,
        is_organizer=True,
        response="organizer",
        recurrence=recurrence,
    )


@dataclass
class Tally:
    entries: int = 0
    chars: int = 0
    masters_read: int = 0

    def add(self, changes: list[Change]) -> None:
        self.entries += len(changes)
        self.chars += sum(len(encoded_change(c)) for c in changes)


def run(mode: RecurringEvents, users: int, days: int) -> tuple[Tally, Tally]:
    settings = TenantSettings(recurring_events=mode)
    visibility = Visibility.of(settings)
    boxes = [Mailbox(n) for n in range(users)]
    stored: list[dict[str, ItemStatus]] = [{} for _ in boxes]
    migration, week = Tally(), Tally()
    for day in range(days + 1):
        now = START + timedelta(days=day)
        if day:  # the users' edits of the day
            boxes[day % users].move(f"u{day % users}-s1", _next(now, 0))
            boxes[(day + 3) % users].cancel(f"u{(day + 3) % users}-s0", _next(now, -1))
        tally = migration if day == 0 else week
        start, end = settings.window(now)
        for number, box in enumerate(boxes):
            items = list(box.instances(start, end))
            if day:  # a full read of the moved window, as the nightly resync makes; the cancelled are gone
                seen = {i.id for i in items}
                items += [
                    RemovedEvent(s) for s in stored[number] if s not in seen and not stored[number][s].master
                ]
            wanted = masters_to_read(items, stored[number], complete=True) if visibility.series else set()
            tally.masters_read += len(wanted)
            masters = {m: box.masters.get(m) for m in wanted}
            result = plan(Observation(items, True, start, masters=masters), stored[number], visibility)
            tally.add(
                [Change(c.type.value, "contoso", c.data, now, staff_id=f"s{number}") for c in result.changes]
            )
            current = {**stored[number], **{s.graph_id: s for s in result.upserts}}
            for gone in result.deletes:
                current.pop(gone, None)
            stored[number] = current
    return migration, week


def _next(now: datetime, weekday: int) -> date:
    """The next weekday (0 Monday; -1: the next working day) at least a day after now."""
    day = now.date() + timedelta(days=1)
    if weekday < 0:
        while day.weekday() > 4:
            day += timedelta(days=1)
        return day
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"{args.users} users, {len(SERIES)} recurring meetings each, window 30 days back and 180 ahead")
    print(f"{'mode':<12}{'migration entries':>18}{'KB':>9}{'week entries':>14}{'KB':>9}{'masters read':>14}")
    for mode in RecurringEvents:
        migration, week = run(mode, args.users, args.days)
        print(
            f"{mode.value:<12}{migration.entries:>18}{migration.chars / 1000:>9.1f}"
            f"{week.entries:>14}{week.chars / 1000:>9.1f}{migration.masters_read + week.masters_read:>14}"
        )


if __name__ == "__main__":
    main()
