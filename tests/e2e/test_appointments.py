"""Host to Outlook end to end: appointments PUT through the host API reach the staff calendars on the
emulator (read back through Graph as Outlook shows them), never come back to the host as Outlook changes,
and report their outcome on the feed.

One migrated organisation serves most of the module (`org`: copies mode, host wins); the settings that
change the whole tenant (meeting mode, Outlook wins) get an organisation of their own. "Never echoed" is
checked with a marker: after the connector's writes, a user makes an event in each staff calendar; delta
reads are ordered, so once the marker is on the feed every earlier change of that calendar (the
connector's own writes included) has been read, and none of them may be on the feed as `event.*`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.test_sync import Outlook, graph_event, migrated_organisation, wait_for
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e

TODAY = datetime.now(UTC).date()
AMSTERDAM = "Europe/Amsterdam"


# --- the organisation and the host API ---------------------------------------------------------------


@dataclass
class Org:
    connector: Connector
    id: str
    domain: str
    outlook: Outlook

    def user(self, name: str) -> str:
        return f"{name}@{self.domain}"

    def api(self) -> httpx.Client:
        client: httpx.Client = self.connector.api()
        return client


async def organisation(connector: Connector, *, settings: dict[str, Any] | None = None) -> Org:
    """adele and ben (migrated), carla (matched after migration), s-ghost (a staff member whose UPN matches
    nobody), and the tenant settings given."""
    base = await migrated_organisation(connector, events_per_user=0)
    org = Org(connector, base["id"], base["domain"], Outlook(connector, base["id"]))
    async with connector.control() as control:
        await control.create_user(org.id, org.user("carla"), display_name="Carla")
    with org.api() as api:
        answer = api.put(f"/api/v1/tenants/{org.domain}/staff/s-carla", json={"upn": org.user("carla")})
        assert answer.json()["match"] == "matched", answer.text
        ghost = api.put(f"/api/v1/tenants/{org.domain}/staff/s-ghost", json={"upn": org.user("ghost")})
        assert ghost.json()["match"] == "unmatched", ghost.text
        if settings:
            patched = api.patch(f"/api/v1/tenants/{org.domain}/settings", json=settings)
            assert patched.status_code == 200, patched.text

        def all_synced() -> bool:
            users = api.get(f"/api/v1/tenants/{org.domain}/users").json()["value"]
            matched = [u for u in users if u["match"] == "matched"]
            return len(matched) == 3 and all(u["state"] == "synced" for u in matched)

        wait_for(all_synced)
    return org


@pytest.fixture(scope="module")
async def org(connector: Connector) -> Org:
    return await organisation(connector)


def path(org: Org, appointment_id: str) -> str:
    return f"/api/v1/tenants/{org.domain}/appointments/{appointment_id}"


def put(org: Org, appointment_id: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    with org.api() as api:
        return api.put(path(org, appointment_id), json=body, headers=headers)


def get(org: Org, appointment_id: str) -> httpx.Response:
    with org.api() as api:
        return api.get(path(org, appointment_id))


def delete(org: Org, appointment_id: str, **headers: str) -> httpx.Response:
    with org.api() as api:
        return api.delete(path(org, appointment_id), headers=headers)


def settled(org: Org, appointment_id: str, revision: int, timeout: float = 60) -> dict[str, Any]:
    """The appointment once its copies hold `revision` (or failed): not pending, not deleting."""

    def check() -> dict[str, Any] | None:
        answer = get(org, appointment_id)
        assert answer.status_code == 200, answer.text
        body = dict(answer.json())
        done = body["revision"] >= revision and body["state"] not in ("pending", "deleting")
        return body if done else None

    return dict(wait_for(check, timeout=timeout))


def copies(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["staff_id"]: c for c in record["staff"]}


def changes(org: Org, since: int = 0) -> list[dict[str, Any]]:
    """The whole feed after `since`, page by page."""
    found: list[dict[str, Any]] = []
    cursor = since
    with org.api() as api:
        while True:
            page = api.get(f"/api/v1/tenants/{org.domain}/changes", params={"cursor": cursor, "limit": 1000})
            assert page.status_code == 200, page.text
            body = page.json()
            found += body["value"]
            if not body["value"]:
                return found
            cursor = int(body["cursor"])


def cursor(org: Org) -> int:
    feed = changes(org)
    return int(feed[-1]["sequence"]) if feed else 0


def about(entries: list[dict[str, Any]], kind: str, appointment_id: str) -> list[dict[str, Any]]:
    return [c for c in entries if c["type"] == kind and c["data"].get("appointment_id") == appointment_id]


def never_echoed(org: Org, since: int, names: Sequence[str] = ("adele", "ben")) -> None:
    """A marker made by a user in each calendar reaches the feed; nothing else of those calendars did."""
    marker = f"marker {uuid.uuid4().hex[:8]}"
    for name in names:
        org.outlook.create(org.user(name), graph_event(marker, days=1, hour=5))

    def arrived() -> bool:
        made = [c for c in changes(org, since) if c["type"] == "event.created"]
        return sum(1 for c in made if c["data"]["event"].get("subject") == marker) == len(names)

    wait_for(arrived)
    echoes = [
        c
        for c in changes(org, since)
        if c["type"].startswith("event.")
        and not str(c["data"]["event"].get("subject", "")).startswith("marker ")
    ]
    assert not echoes, echoes


# --- Outlook, read through Graph on the emulator -----------------------------------------------------


def graph_get(org: Org, url: str, zone: str = "UTC", **params: str) -> list[dict[str, Any]]:
    headers = {"Prefer": f'outlook.timezone="{zone}", IdType="ImmutableId"'}  # the connector's ids
    response = org.outlook.http.get(url, params={"$top": "1000", **params}, headers=headers)
    found: list[dict[str, Any]] = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        found += body["value"]
        following = body.get("@odata.nextLink")
        if not following:
            return found
        response = org.outlook.http.get(following, headers=headers)


def view(org: Org, user: str, start: datetime, end: datetime, zone: str = "UTC") -> list[dict[str, Any]]:
    """calendarView of `user` over [start, end): occurrences and exceptions of series, single events."""
    return graph_get(
        org,
        f"/users/{user}/calendarView",
        zone,
        startDateTime=start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        endDateTime=end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def events(org: Org, user: str, subject: str) -> list[dict[str, Any]]:
    """Single events and series masters (not occurrences) with this subject."""
    return graph_get(org, f"/users/{user}/events", **{"$filter": f"subject eq '{subject}'"})


def event(org: Org, user: str, event_id: str) -> dict[str, Any] | None:
    response = org.outlook.http.get(
        f"/users/{user}/events/{event_id}", headers={"Prefer": 'outlook.timezone="UTC", IdType="ImmutableId"'}
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return dict(response.json())


def calendar(org: Org, user: str) -> list[dict[str, Any]]:
    """Everything in the next two months, in Amsterdam time (the first test's view)."""
    start = datetime.now(UTC) - timedelta(days=1)
    return view(org, user, start, start + timedelta(days=61), zone=AMSTERDAM)


def instant(graph_time: dict[str, str]) -> datetime:
    """A Graph dateTimeTimeZone read with `Prefer: outlook.timezone="UTC"`."""
    assert graph_time["timeZone"] == "UTC", graph_time
    return datetime.fromisoformat(graph_time["dateTime"][:19]).replace(tzinfo=UTC)


# --- appointments --------------------------------------------------------------------------------------


def local(days: int, hour: int) -> str:
    moment = (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def appointment(
    subject: str, staff: list[str], days: int = 2, hour: int = 10, **extra: Any
) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": local(days, hour),
        "end": local(days, hour + 1),
        "time_zone": AMSTERDAM,
        "staff_ids": staff,
        **extra,
    }


def unique(prefix: str) -> tuple[str, str]:
    """An appointment id and a subject nobody else in the calendar has."""
    token = uuid.uuid4().hex[:8]
    return f"{prefix}-{token}", f"{prefix} {token}"


def only(found: list[dict[str, Any]], what: str) -> dict[str, Any]:
    assert len(found) == 1, f"{what}: {len(found)} events: {found}"
    return found[0]


# --- 1. a single appointment -------------------------------------------------------------------------


def test_an_appointment_reaches_each_staff_calendar_once_and_is_never_echoed(org: Org) -> None:
    since = cursor(org)
    appointment_id, subject = unique("intake")
    answer = put(org, appointment_id, appointment(subject, ["s-adele", "s-ben"]))
    assert answer.status_code == 202, answer.text
    assert answer.headers["ETag"] == '"1"'
    body = settled(org, appointment_id, 1)
    assert body["state"] == "synced", body
    held = copies(body)
    for name in ("adele", "ben"):
        mine = only([e for e in calendar(org, org.user(name)) if e["subject"] == subject], name)
        assert mine["start"]["dateTime"].startswith(local(2, 10))
        assert mine["attendees"] == []
        assert held[f"s-{name}"]["event_id"] == mine["id"]
        assert (held[f"s-{name}"]["role"], held[f"s-{name}"]["state"]) == ("copy", "synced")
    wait_for(lambda: about(changes(org, since), "appointment.synced", appointment_id))
    never_echoed(org, since)


# --- 2. all-day ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Pacific/Auckland", "America/Los_Angeles"])
def test_an_all_day_appointment_keeps_its_dates_in_every_zone(org: Org, zone: str) -> None:
    since = cursor(org)
    appointment_id, subject = unique("allday")
    first, end = TODAY + timedelta(days=20), TODAY + timedelta(days=22)  # two days, end exclusive
    body = {
        "subject": subject,
        "start": first.isoformat(),
        "end": end.isoformat(),
        "all_day": True,
        "time_zone": zone,
        "staff_ids": ["s-adele"],
    }
    assert put(org, appointment_id, body).status_code == 202
    assert settled(org, appointment_id, 1)["state"] == "synced"
    window = (
        datetime.combine(first, time(), UTC) - timedelta(days=2),
        datetime.combine(end, time(), UTC) + timedelta(days=2),
    )
    for reader in ("UTC", "Pacific/Honolulu", "Asia/Tokyo"):
        found = [e for e in view(org, org.user("adele"), *window, zone=reader) if e["subject"] == subject]
        mine = only(found, reader)
        assert mine["isAllDay"] is True
        assert mine["start"]["dateTime"].startswith(f"{first.isoformat()}T00:00:00"), (reader, mine["start"])
        assert mine["end"]["dateTime"].startswith(f"{end.isoformat()}T00:00:00"), (reader, mine["end"])
    record = get(org, appointment_id).json()
    assert record["appointment"]["start"] == first.isoformat() and record["appointment"]["all_day"] is True
    never_echoed(org, since, names=("adele",))


# --- 3. recurring --------------------------------------------------------------------------------------


def following(start: date, weekday: int) -> date:
    return start + timedelta(days=(weekday - start.weekday()) % 7)


def months_from(start: date, count: int) -> list[tuple[int, int]]:
    index = start.year * 12 + start.month - 1
    return [divmod(index + k, 12) for k in range(count)]


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    if n > 0:
        return following(date(year, month, 1), weekday) + timedelta(weeks=n - 1)
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def monthly(after: date, weekday: int, n: int, count: int) -> list[date]:
    """The nth (or last) weekday of `count` months, from the first one on or after `after`."""
    found = [nth_weekday(y, m + 1, weekday, n) for y, m in months_from(after, count + 1)]
    return [d for d in found if d >= after][:count]


def transitions(zone: str, after: date, count: int) -> list[date]:
    """The next local dates on which `zone` changes its UTC offset."""
    tz = ZoneInfo(zone)
    found: list[date] = []
    day = after
    while len(found) < count:
        before = datetime.combine(day, time(12), tz).utcoffset()
        if datetime.combine(day + timedelta(days=1), time(12), tz).utcoffset() != before:
            found.append(day + timedelta(days=1))
        day += timedelta(days=1)
    return found


@dataclass
class Case:
    """A recurring appointment and what Outlook must show for it: (local date, local time, subject)."""

    rrule: str
    first: date
    expected: list[date]
    zone: str = AMSTERDAM
    all_day: bool = False
    pattern: dict[str, Any] = field(default_factory=dict)  # a subset of the master's recurrence pattern
    range_type: str = "numbered"
    exdates: list[str] = field(default_factory=list)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    moved: dict[date, tuple[time, str]] = field(default_factory=dict)  # overridden: new time, subject suffix
    window_end: date | None = None  # the end (exclusive) of the calendarView read; default: 2 days on
    at: time = time(9)


def recurrence_cases() -> dict[str, Case]:
    d0 = TODAY + timedelta(days=10)
    monday, thursday, tuesday = following(d0, 0), following(d0, 3), following(d0, 1)
    fifteenth = next(date(y, m + 1, 15) for y, m in months_from(d0, 2) if date(y, m + 1, 15) >= d0)
    second_tuesdays = monthly(d0, 1, 2, 4)
    last_fridays = monthly(d0, 4, -1, 4)
    yearly = d0 if (d0.month, d0.day) != (2, 29) else d0 + timedelta(days=1)
    until_day = d0 + timedelta(days=1)
    until = datetime.combine(until_day + timedelta(days=3), time(9), ZoneInfo(AMSTERDAM)).astimezone(UTC)
    spring, autumn = sorted(transitions(AMSTERDAM, TODAY + timedelta(days=4), 2), key=lambda d: d.month)
    ex = TODAY + timedelta(days=14)
    ex_utc = datetime.combine(ex + timedelta(days=4), time(9), ZoneInfo(AMSTERDAM)).astimezone(UTC)
    cases = {
        "daily-interval-count": Case(
            "FREQ=DAILY;INTERVAL=2;COUNT=5",
            d0,
            [d0 + timedelta(days=2 * i) for i in range(5)],
            pattern={"type": "daily", "interval": 2},
        ),
        "weekly-byday-interval": Case(
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR;COUNT=7",
            monday,
            [monday + timedelta(days=n) for n in (0, 2, 4, 14, 16, 18, 28)],
            pattern={"type": "weekly", "interval": 2, "daysOfWeek": ["monday", "wednesday", "friday"]},
        ),
        "monthly-by-day": Case(
            "FREQ=MONTHLY;BYMONTHDAY=15;COUNT=4",
            fifteenth,
            [date(y, m + 1, 15) for y, m in months_from(fifteenth, 4)],
            pattern={"type": "absoluteMonthly", "dayOfMonth": 15},
        ),
        "monthly-second-tuesday": Case(
            "FREQ=MONTHLY;BYDAY=2TU;COUNT=4",
            second_tuesdays[0],
            second_tuesdays,
            pattern={"type": "relativeMonthly", "daysOfWeek": ["tuesday"], "index": "second"},
        ),
        "monthly-last-friday": Case(
            "FREQ=MONTHLY;BYDAY=-1FR;COUNT=4",
            last_fridays[0],
            last_fridays,
            pattern={"type": "relativeMonthly", "daysOfWeek": ["friday"], "index": "last"},
        ),
        "yearly": Case(
            "FREQ=YEARLY;COUNT=3",
            yearly,
            [yearly.replace(year=yearly.year + k) for k in range(3)],
            pattern={"type": "absoluteYearly", "month": yearly.month, "dayOfMonth": yearly.day},
        ),
        "until-date": Case(
            f"FREQ=WEEKLY;BYDAY=TH;UNTIL={thursday + timedelta(weeks=3):%Y%m%d}",
            thursday,
            [thursday + timedelta(weeks=k) for k in range(4)],
            pattern={"type": "weekly", "daysOfWeek": ["thursday"]},
            range_type="endDate",
            window_end=thursday + timedelta(weeks=6),
        ),
        "until-utc": Case(
            f"FREQ=DAILY;UNTIL={until:%Y%m%dT%H%M%SZ}",
            until_day,
            [until_day + timedelta(days=k) for k in range(4)],
            pattern={"type": "daily", "interval": 1},
            range_type="endDate",
            window_end=until_day + timedelta(days=8),
        ),
        "open-ended": Case(
            "FREQ=WEEKLY;BYDAY=TU",
            tuesday,
            [tuesday + timedelta(weeks=k) for k in range(8)],
            pattern={"type": "weekly", "daysOfWeek": ["tuesday"]},
            range_type="noEnd",
            window_end=tuesday + timedelta(weeks=7, days=1),
        ),
        "exdates-and-override": Case(
            "FREQ=DAILY;COUNT=8",
            ex,
            [ex + timedelta(days=k) for k in (0, 1, 5, 6, 7)],  # 2, 3 and 4 cancelled
            exdates=[
                (ex + timedelta(days=2)).isoformat(),
                f"{ex + timedelta(days=3):%Y-%m-%d}T09:00:00",
                ex_utc.isoformat(),
            ],
            overrides=[
                {
                    "recurrence_id": f"{ex + timedelta(days=6):%Y-%m-%d}T09:00:00",
                    "start": f"{ex + timedelta(days=6):%Y-%m-%d}T15:30:00",
                    "end": f"{ex + timedelta(days=6):%Y-%m-%d}T16:30:00",
                    "subject": "moved",
                    "location": "Room 2",
                }
            ],
            moved={ex + timedelta(days=6): (time(15, 30), "moved")},
        ),
        "dst-march": Case(
            "FREQ=DAILY;COUNT=7",
            spring - timedelta(days=3),
            [spring + timedelta(days=k) for k in range(-3, 4)],
        ),
        "dst-october": Case(
            "FREQ=DAILY;COUNT=7",
            autumn - timedelta(days=3),
            [autumn + timedelta(days=k) for k in range(-3, 4)],
        ),
        "all-day-exdate-los-angeles": Case(
            "FREQ=WEEKLY;COUNT=4",
            d0,
            [d0 + timedelta(weeks=k) for k in (0, 2, 3)],
            zone="America/Los_Angeles",
            all_day=True,
            pattern={"type": "weekly"},
            exdates=[(d0 + timedelta(weeks=1)).isoformat()],
        ),
        "all-day-weekly-auckland": Case(
            "FREQ=WEEKLY;COUNT=3",
            d0,
            [d0 + timedelta(weeks=k) for k in range(3)],
            zone="Pacific/Auckland",
            all_day=True,
            pattern={"type": "weekly"},
        ),
    }
    return cases


CASES = recurrence_cases()


def case_body(case: Case, subject: str) -> dict[str, Any]:
    if case.all_day:
        start, end = case.first.isoformat(), (case.first + timedelta(days=1)).isoformat()
    else:
        start = datetime.combine(case.first, case.at).isoformat()
        end = datetime.combine(case.first, case.at.replace(hour=case.at.hour + 1)).isoformat()
    recurrence: dict[str, Any] = {"rrule": case.rrule, "exdates": case.exdates, "overrides": []}
    for override in case.overrides:
        recurrence["overrides"].append({**override, "subject": f"{subject} {override['subject']}"})
    return {
        "subject": subject,
        "start": start,
        "end": end,
        "time_zone": case.zone,
        "all_day": case.all_day,
        "staff_ids": ["s-adele"],
        "recurrence": recurrence,
    }


@dataclass
class Written:
    appointment_id: str
    subject: str
    record: dict[str, Any]


@pytest.fixture(scope="module")
def recurring(org: Org) -> Iterator[dict[str, Written]]:
    """Every recurrence case PUT at once (the writes run in parallel), each settled."""
    since = cursor(org)
    made: dict[str, tuple[str, str]] = {}
    for name, case in CASES.items():
        appointment_id, subject = unique(f"rec-{name}")
        answer = put(org, appointment_id, case_body(case, subject))
        assert answer.status_code == 202, (name, answer.text)
        made[name] = (appointment_id, subject)
    written = {
        name: Written(appointment_id, subject, settled(org, appointment_id, 1, timeout=120))
        for name, (appointment_id, subject) in made.items()
    }
    never_echoed(org, since, names=("adele",))
    yield written


@pytest.mark.parametrize("name", list(CASES))
def test_a_recurring_appointment_is_one_outlook_series_with_the_rules_occurrences(
    org: Org, recurring: dict[str, Written], name: str
) -> None:
    case, written = CASES[name], recurring[name]
    assert written.record["state"] == "synced", written.record
    adele = org.user("adele")
    master = only(events(org, adele, written.subject), "series masters")
    assert master["type"] == "seriesMaster"
    assert copies(written.record)["s-adele"]["event_id"] == master["id"]
    pattern = master["recurrence"]["pattern"]
    assert {k: pattern[k] for k in case.pattern} == case.pattern, pattern
    assert master["recurrence"]["range"]["type"] == case.range_type, master["recurrence"]["range"]
    zone = ZoneInfo(case.zone)
    start = datetime.combine(case.first - timedelta(days=1), time(), zone)
    end = datetime.combine(case.window_end or case.expected[-1] + timedelta(days=2), time(), zone)
    found = [e for e in view(org, adele, start, end) if e.get("seriesMasterId") == master["id"]]
    if case.all_day:
        assert all(e["isAllDay"] for e in found), found
        days = sorted((e["start"]["dateTime"][:10], e["end"]["dateTime"][:10]) for e in found)
        assert days == [(d.isoformat(), (d + timedelta(days=1)).isoformat()) for d in case.expected]
        return
    got = sorted(
        (
            instant(e["start"]).astimezone(zone).date(),
            instant(e["start"]).astimezone(zone).time(),
            e["subject"],
        )
        for e in found
    )
    want = []
    for day in case.expected:
        at, suffix = case.moved.get(day, (case.at, ""))
        want.append((day, at, f"{written.subject} {suffix}".strip()))
    assert got == want
    kinds = {e["type"] for e in found}
    assert kinds <= {"occurrence", "exception"} and ("exception" in kinds) == bool(case.moved), kinds


def test_a_series_across_dst_keeps_its_wall_clock_time(org: Org, recurring: dict[str, Written]) -> None:
    """09:00 in Amsterdam on every day: 08:00 UTC in winter, 07:00 UTC in summer."""
    adele = org.user("adele")
    for name in ("dst-march", "dst-october"):
        case = CASES[name]
        master = only(events(org, adele, recurring[name].subject), name)
        start = datetime.combine(case.first - timedelta(days=1), time(), UTC)
        found = [
            e
            for e in view(org, adele, start, start + timedelta(days=10))
            if e.get("seriesMasterId") == master["id"]
        ]
        starts = sorted(instant(e["start"]) for e in found)
        assert [s.astimezone(ZoneInfo(AMSTERDAM)).time() for s in starts] == [time(9)] * 7
        hours = [s.hour for s in starts]
        assert hours == ([8] * 3 + [7] * 4 if name == "dst-march" else [7] * 3 + [8] * 4), hours


# --- 4. refused input -----------------------------------------------------------------------------------


def bad(**changes: Any) -> dict[str, Any]:
    body = appointment("Refused", ["s-adele", "s-ben"], days=3)
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def weekly_on_monday(**recurrence: Any) -> dict[str, Any]:
    monday = following(TODAY + timedelta(days=7), 0)
    return bad(
        start=f"{monday}T10:00:00",
        end=f"{monday}T11:00:00",
        recurrence={"rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=5", **recurrence},
    )


TUESDAY = following(TODAY + timedelta(days=7), 0) + timedelta(days=1)
REFUSED: dict[str, tuple[Any, int, str]] = {
    "hourly": (bad(recurrence={"rrule": "FREQ=HOURLY;COUNT=3"}), 422, "recurrence.rrule"),
    "monthday-31": (bad(recurrence={"rrule": "FREQ=MONTHLY;BYMONTHDAY=31"}), 422, "recurrence.rrule"),
    "bysetpos-two-values": (
        bad(recurrence={"rrule": "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1,-1"}),
        422,
        "recurrence.rrule",
    ),
    "start-not-an-occurrence": (
        bad(
            start=f"{TUESDAY}T10:00:00",
            end=f"{TUESDAY}T11:00:00",
            recurrence={"rrule": "FREQ=WEEKLY;BYDAY=MO"},
        ),
        422,
        "recurrence.rrule",
    ),
    "count-and-until": (
        bad(recurrence={"rrule": "FREQ=DAILY;COUNT=3;UNTIL=20991231"}),
        422,
        "recurrence.rrule",
    ),
    "rrule-not-parsing": (bad(recurrence={"rrule": "FREQ=WEEKLY;BYDAY=XX"}), 422, "recurrence.rrule"),
    "rrule-prose": (bad(recurrence={"rrule": "every other tuesday"}), 422, "recurrence.rrule"),
    "end-before-start": (bad(start=local(3, 11), end=local(3, 10)), 400, "end"),
    "naive-time-without-zone": (bad(time_zone=None), 400, "start"),
    "unknown-zone": (bad(time_zone="Mars/Olympus_Mons"), 400, "time_zone"),
    "windows-zone-name": (bad(time_zone="W. Europe Standard Time"), 400, "time_zone"),
    "series-in-a-zone-no-windows-zone-keeps": (  # +00 and +02 in summer: Outlook would move occurrences
        weekly_on_monday(rrule="FREQ=WEEKLY;BYDAY=MO") | {"time_zone": "Antarctica/Troll"},
        422,
        "time_zone",
    ),
    "all-day-with-times": (bad(all_day=True), 400, "start"),
    "unknown-staff": (bad(staff_ids=["s-adele", "s-nobody"]), 422, "staff_ids[1]"),
    "oversized-body": (bad(body="x" * 1_100_000), 413, "body"),
    "malformed-json": (b'{"subject": "Refused", "start": ', 400, "body"),
    "unknown-field": (bad(colour="red"), 400, "colour"),
    "exdate-not-an-occurrence": (
        weekly_on_monday(exdates=[TUESDAY.isoformat()]),
        422,
        "recurrence.exdates[0]",
    ),
    "override-not-an-occurrence": (
        weekly_on_monday(
            overrides=[
                {
                    "recurrence_id": f"{TUESDAY}T10:00:00",
                    "start": f"{TUESDAY}T12:00:00",
                    "end": f"{TUESDAY}T13:00:00",
                }
            ]
        ),
        422,
        "recurrence.overrides[0].recurrence_id",
    ),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(org: Org, name: str) -> None:
    body, status, field_name = REFUSED[name]
    appointment_id, subject = unique(f"bad-{name}")
    with org.api() as api:
        if isinstance(body, bytes):
            answer = api.put(
                path(org, appointment_id), content=body, headers={"Content-Type": "application/json"}
            )
        else:
            answer = api.put(path(org, appointment_id), json={**body, "subject": subject})
    assert (answer.status_code, answer.json()["error"].get("field")) == (status, field_name), answer.text
    assert get(org, appointment_id).status_code == 404
    window = (datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=60))
    for name_ in ("adele", "ben"):
        assert not [e for e in view(org, org.user(name_), *window) if e["subject"] == subject]


# --- 5. several staff, one copy each --------------------------------------------------------------------


def test_copies_one_event_per_staff_member_and_staff_changes_touch_only_theirs(org: Org) -> None:
    since = cursor(org)
    appointment_id, subject = unique("copies")
    customers = [{"name": "Fay Customer", "email": "fay@customer.example"}, {"name": "Gus Walk-in"}]
    body = appointment(subject, ["s-adele", "s-ben"], days=4, body="Bring the forms.", customers=customers)
    assert put(org, appointment_id, body).status_code == 202
    record = settled(org, appointment_id, 1)
    assert record["state"] == "synced", record
    ids: dict[str, str] = {}
    for name in ("adele", "ben"):
        mine = only(events(org, org.user(name), subject), name)
        assert mine["attendees"] == []
        text = mine["body"]["content"]
        assert "Bring the forms." in text and "Fay Customer" in text and "fay@customer.example" in text
        assert "Gus Walk-in" in text
        ids[name] = mine["id"]
    assert {s: c["event_id"] for s, c in copies(record).items()} == {f"s-{n}": i for n, i in ids.items()}

    assert put(org, appointment_id, {**body, "staff_ids": ["s-adele", "s-ben", "s-carla"]}).status_code == 202
    record = settled(org, appointment_id, 2)
    assert record["state"] == "synced", record
    for name in ("adele", "ben"):
        assert [e["id"] for e in events(org, org.user(name), subject)] == [ids[name]]
    carla = only(events(org, org.user("carla"), subject), "carla")
    assert copies(record)["s-carla"]["event_id"] == carla["id"]

    assert put(org, appointment_id, {**body, "staff_ids": ["s-adele", "s-carla"]}).status_code == 202
    record = settled(org, appointment_id, 3)
    assert record["state"] == "synced", record
    assert events(org, org.user("ben"), subject) == []
    assert [e["id"] for e in events(org, org.user("adele"), subject)] == [ids["adele"]]
    assert [e["id"] for e in events(org, org.user("carla"), subject)] == [carla["id"]]
    assert sorted(copies(record)) == ["s-adele", "s-carla"]
    never_echoed(org, since, names=("adele", "ben", "carla"))


def test_an_unmatched_staff_member_fails_alone_and_the_outcome_is_partial(org: Org) -> None:
    since = cursor(org)
    appointment_id, subject = unique("partial")
    assert put(org, appointment_id, appointment(subject, ["s-adele", "s-ghost"], days=5)).status_code == 202
    record = settled(org, appointment_id, 1)
    assert record["state"] == "partial", record
    held = copies(record)
    assert held["s-adele"]["state"] == "synced" and held["s-adele"]["error"] is None
    assert held["s-ghost"]["state"] == "error" and "matches no user" in held["s-ghost"]["error"]
    assert held["s-ghost"]["event_id"] is None
    only(events(org, org.user("adele"), subject), "adele")
    [failed] = wait_for(lambda: about(changes(org, since), "appointment.failed", appointment_id))
    assert (failed["data"]["state"], failed["data"]["revision"]) == ("partial", 1)
    detail = {s["staff_id"]: s for s in failed["data"]["staff"]}
    assert detail["s-ghost"]["state"] == "error" and detail["s-ghost"]["error"]
    assert detail["s-adele"]["state"] == "synced"
    assert not about(changes(org, since), "appointment.synced", appointment_id)


# --- 6. one meeting ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def meeting_org(connector: Connector) -> Org:
    return await organisation(connector, settings={"multi_staff_mode": "meeting"})


def test_meeting_mode_one_organised_event_and_exchanges_attendee_copies(meeting_org: Org) -> None:
    org = meeting_org
    since = cursor(org)
    appointment_id, subject = unique("meeting")
    body = appointment(
        subject,
        ["s-adele", "s-ben", "s-carla"],
        days=6,
        customers=[{"name": "Fay", "email": "fay@customer.example"}],
    )
    assert put(org, appointment_id, body).status_code == 202
    record = settled(org, appointment_id, 1, timeout=90)
    assert record["state"] == "synced", record
    meeting = only(events(org, org.user("adele"), subject), "the organiser's")
    assert meeting["isOrganizer"] is True
    invited = sorted(a["emailAddress"]["address"].lower() for a in meeting["attendees"])
    assert invited == sorted([org.user("ben"), org.user("carla"), "fay@customer.example"])
    held = copies(record)
    assert (held["s-adele"]["role"], held["s-adele"]["event_id"]) == ("organizer", meeting["id"])
    for name in ("ben", "carla"):
        received = only(events(org, org.user(name), subject), f"{name}'s copy")
        assert received["iCalUId"] == meeting["iCalUId"]
        assert received["isOrganizer"] is False
        assert received["organizer"]["emailAddress"]["address"].lower() == org.user("adele")
        same_meeting = graph_get(
            org, f"/users/{org.user(name)}/events", **{"$filter": f"iCalUId eq '{meeting['iCalUId']}'"}
        )
        assert [e["id"] for e in same_meeting] == [received["id"]]
        assert held[f"s-{name}"]["role"] == "attendee" and held[f"s-{name}"]["state"] == "synced"
        assert held[f"s-{name}"]["event_id"] == received["id"]
        assert held[f"s-{name}"]["ical_uid"] == meeting["iCalUId"]
    never_echoed(org, since, names=("adele", "ben", "carla"))


# --- 7. update and delete ------------------------------------------------------------------------------


def test_an_update_moves_the_same_events_and_a_delete_removes_every_copy(org: Org) -> None:
    since = cursor(org)
    appointment_id, subject = unique("update")
    assert (
        put(org, appointment_id, appointment(subject, ["s-adele", "s-ben"], days=5, hour=10)).status_code
        == 202
    )
    record = settled(org, appointment_id, 1)
    ids = {s: c["event_id"] for s, c in copies(record).items()}
    moved = appointment(f"{subject} (moved)", ["s-adele", "s-ben"], days=6, hour=14, location="Room 7")
    assert put(org, appointment_id, moved).status_code == 202
    record = settled(org, appointment_id, 2)
    assert record["state"] == "synced", record
    for name in ("adele", "ben"):
        assert events(org, org.user(name), subject) == []
        now = only(events(org, org.user(name), f"{subject} (moved)"), name)
        assert now["id"] == ids[f"s-{name}"]
        expected = datetime.fromisoformat(local(6, 14)).replace(tzinfo=ZoneInfo(AMSTERDAM))
        assert instant(now["start"]) == expected.astimezone(UTC)
        assert now["location"]["displayName"] == "Room 7"
    never_echoed(org, since)

    gone = delete(org, appointment_id)
    assert gone.status_code == 202, gone.text

    def removed() -> bool:
        answer = get(org, appointment_id)
        return answer.status_code == 404 or answer.json()["state"] == "deleted"

    wait_for(removed)
    for name in ("adele", "ben"):
        assert event(org, org.user(name), ids[f"s-{name}"]) is None
        assert events(org, org.user(name), f"{subject} (moved)") == []
    again = delete(org, appointment_id)
    assert again.status_code in (202, 404), again.text
    never_echoed(org, since)


# --- 8. idempotency --------------------------------------------------------------------------------------


def test_a_replayed_put_is_the_same_revision_and_the_same_events(org: Org) -> None:
    since = cursor(org)
    appointment_id, subject = unique("replay")
    body = appointment(subject, ["s-adele", "s-ben"], days=7)
    assert put(org, appointment_id, body).headers["ETag"] == '"1"'
    replayed = put(org, appointment_id, dict(reversed(list(body.items()))))  # the same, keys in another order
    assert (replayed.status_code, replayed.headers["ETag"]) == (202, '"1"')
    settled(org, appointment_id, 1)
    late = put(org, appointment_id, body)
    assert (late.status_code, late.headers["ETag"], late.json()["state"]) == (202, '"1"', "synced")
    for name in ("adele", "ben"):
        only(events(org, org.user(name), subject), name)
    never_echoed(org, since)
    assert len(about(changes(org, since), "appointment.synced", appointment_id)) == 1


@pytest.mark.parametrize(("status", "count"), [(500, 1), (503, 3)], ids=["500-once", "503-thrice"])
async def test_a_create_whose_answer_is_lost_makes_exactly_one_event(
    org: Org, status: int, count: int
) -> None:
    """The POST takes effect, then Graph answers an error: the retry (SDK or queue) finds the first event by
    its transactionId."""
    since = cursor(org)
    appointment_id, subject = unique(f"lost-{status}")
    async with org.connector.control() as control:
        rules = [
            await control.add_fault(
                status=status,
                method="POST",
                path=r"/events$",
                mailbox=org.user(name),
                count=count,
                when="after",
            )
            for name in ("adele", "ben")
        ]
    try:
        assert put(org, appointment_id, appointment(subject, ["s-adele", "s-ben"], days=8)).status_code == 202
        record = settled(org, appointment_id, 1, timeout=90)
        assert record["state"] == "synced", record
        async with org.connector.control() as control:
            left = {r["id"] for r in await control.faults()}
        assert not left & {r["id"] for r in rules}, "the faults never fired"
        for name in ("adele", "ben"):
            mine = only(events(org, org.user(name), subject), name)
            assert copies(record)[f"s-{name}"]["event_id"] == mine["id"]
        never_echoed(org, since)
    finally:
        async with org.connector.control() as control:
            live = {r["id"] for r in await control.faults()}
            for rule in rules:
                if rule["id"] in live:
                    await control.remove_fault(rule["id"])


async def test_throttled_writes_converge_to_one_event_per_staff_member(org: Org) -> None:
    since = cursor(org)
    appointment_id, subject = unique("throttled")
    async with org.connector.control() as control:
        rules = [
            await control.add_fault(
                status=429, retry_after=1, method="POST", path=r"/events$", mailbox=org.user(name), count=4
            )
            for name in ("adele", "ben")
        ]
    try:
        assert put(org, appointment_id, appointment(subject, ["s-adele", "s-ben"], days=9)).status_code == 202
        record = settled(org, appointment_id, 1, timeout=90)
        assert record["state"] == "synced", record
        async with org.connector.control() as control:
            left = {r["id"] for r in await control.faults()}
        assert not left & {r["id"] for r in rules}, "the throttling never fired"
        for name in ("adele", "ben"):
            only(events(org, org.user(name), subject), name)
        never_echoed(org, since)
    finally:
        async with org.connector.control() as control:
            live = {r["id"] for r in await control.faults()}
            for rule in rules:
                if rule["id"] in live:
                    await control.remove_fault(rule["id"])


# --- 9. conflicts ----------------------------------------------------------------------------------------


def outlook_changes(org: Org, since: int, appointment_id: str) -> list[dict[str, Any]]:
    return about(changes(org, since), "appointment.changed_in_outlook", appointment_id)


def test_host_wins_puts_an_outlook_edit_back_and_recreates_a_deleted_copy(org: Org) -> None:
    since = cursor(org)
    appointment_id, subject = unique("hostwins")
    adele = org.user("adele")
    assert put(org, appointment_id, appointment(subject, ["s-adele"], days=10)).status_code == 202
    first = copies(settled(org, appointment_id, 1))["s-adele"]["event_id"]

    org.outlook.update(adele, first, {"subject": f"{subject} (edited in Outlook)"})
    [reverted] = wait_for(lambda: outlook_changes(org, since, appointment_id))
    assert reverted["staff_id"] == "s-adele"
    assert (reverted["data"]["change"], reverted["data"]["resolution"]) == ("updated", "reverted")
    assert reverted["data"]["event"]["subject"] == f"{subject} (edited in Outlook)"
    wait_for(lambda: (event(org, adele, first) or {}).get("subject") == subject)

    org.outlook.delete(adele, first)
    wait_for(lambda: len(outlook_changes(org, since, appointment_id)) == 2)
    recreated = outlook_changes(org, since, appointment_id)[1]
    assert (recreated["data"]["change"], recreated["data"]["resolution"]) == ("deleted", "recreated")
    again = wait_for(lambda: events(org, adele, subject))
    assert len(again) == 1 and again[0]["id"] != first
    record = settled(org, appointment_id, 1)
    assert copies(record)["s-adele"]["event_id"] == again[0]["id"]
    never_echoed(org, since, names=("adele",))
    assert len(outlook_changes(org, since, appointment_id)) == 2  # each Outlook change reported once


@pytest.fixture(scope="module")
async def outlook_wins_org(connector: Connector) -> Org:
    return await organisation(connector, settings={"conflict_policy": "outlook_wins"})


def test_outlook_wins_keeps_an_outlook_edit_until_the_host_writes_again(outlook_wins_org: Org) -> None:
    org = outlook_wins_org
    since = cursor(org)
    appointment_id, subject = unique("outlookwins")
    adele, edited = org.user("adele"), f"{subject} (edited in Outlook)"
    body = appointment(subject, ["s-adele"], days=10)
    assert put(org, appointment_id, body).status_code == 202
    first = copies(settled(org, appointment_id, 1))["s-adele"]["event_id"]

    org.outlook.update(adele, first, {"subject": edited})
    [kept] = wait_for(lambda: outlook_changes(org, since, appointment_id))
    assert (kept["data"]["change"], kept["data"]["resolution"]) == ("updated", "kept")
    never_echoed(org, since, names=("adele",))  # also gives a put-back time to happen (it must not)
    assert (event(org, adele, first) or {}).get("subject") == edited
    assert copies(get(org, appointment_id).json())["s-adele"]["state"] == "conflict"

    assert put(org, appointment_id, {**body, "subject": f"{subject} v2"}).status_code == 202
    record = settled(org, appointment_id, 2)
    assert record["state"] == "synced" and copies(record)["s-adele"]["state"] == "synced", record
    assert (event(org, adele, first) or {}).get("subject") == f"{subject} v2"
    never_echoed(org, since, names=("adele",))
    assert len(outlook_changes(org, since, appointment_id)) == 1


@pytest.fixture(scope="module")
async def private_org(connector: Connector) -> Org:
    return await organisation(connector, settings={"privacy_mode": True})


def test_privacy_mode_reports_an_outlook_edit_as_free_busy_only(private_org: Org) -> None:
    org = private_org
    since = cursor(org)
    appointment_id, subject = unique("private")
    adele, secret = org.user("adele"), f"{subject} (edited in Outlook)"
    assert put(org, appointment_id, appointment(subject, ["s-adele"], days=10)).status_code == 202
    first = copies(settled(org, appointment_id, 1))["s-adele"]["event_id"]

    edit = {
        "subject": secret,
        "location": {"displayName": "Room 4"},
        "body": {"contentType": "text", "content": "a secret note"},
        "showAs": "tentative",
    }
    org.outlook.update(adele, first, edit)
    [reverted] = wait_for(lambda: outlook_changes(org, since, appointment_id))
    assert (reverted["data"]["change"], reverted["data"]["resolution"]) == ("updated", "reverted")
    shown = reverted["data"]["event"]
    assert set(shown) == {"id", "start", "end", "all_day", "show_as"}, shown
    assert (shown["id"], shown["show_as"], shown["all_day"]) == (first, "tentative", False)
    assert not any(word in str(reverted) for word in (secret, "Room 4", "a secret note"))
    wait_for(lambda: (event(org, adele, first) or {}).get("subject") == subject)  # the host's version again


# --- 10. If-Match ---------------------------------------------------------------------------------------


def test_if_match_with_an_old_revision_is_refused_and_changes_nothing(org: Org) -> None:
    appointment_id, subject = unique("ifmatch")
    first = put(org, appointment_id, appointment(subject, ["s-adele"], days=11))
    assert first.headers["ETag"] == '"1"'
    second = put(
        org, appointment_id, appointment(f"{subject} v2", ["s-adele"], days=11), **{"If-Match": '"1"'}
    )
    assert (second.status_code, second.headers["ETag"]) == (202, '"2"'), second.text
    stale = put(
        org, appointment_id, appointment(f"{subject} v3", ["s-adele"], days=11), **{"If-Match": '"1"'}
    )
    assert stale.status_code == 412, stale.text
    assert stale.json()["error"]["field"] == "If-Match"
    stale_delete = delete(org, appointment_id, **{"If-Match": '"1"'})
    assert stale_delete.status_code == 412, stale_delete.text
    record = settled(org, appointment_id, 2)
    assert (record["revision"], record["appointment"]["subject"]) == (2, f"{subject} v2")
    assert events(org, org.user("adele"), f"{subject} v3") == []
    only(events(org, org.user("adele"), f"{subject} v2"), "adele")
    current = put(
        org, appointment_id, appointment(f"{subject} v3", ["s-adele"], days=11), **{"If-Match": '"2"'}
    )
    assert (current.status_code, current.headers["ETag"]) == (202, '"3"'), current.text
    settled(org, appointment_id, 3)
    only(events(org, org.user("adele"), f"{subject} v3"), "adele")


# --- beyond the first round: more zones, series over time, rapid revisions, Teams, Outlook edits of a
# --- series, Outlook deleting under Outlook wins, a meeting over time ----------------------------------


@pytest.mark.parametrize(
    ("zone", "start", "end"),
    [
        ("Asia/Kathmandu", "T10:00:00", "T11:00:00"),  # +05:45
        ("Pacific/Chatham", "T10:00:00", "T11:00:00"),  # +12:45 / +13:45
        ("America/St_Johns", "T10:00:00", "T11:00:00"),  # -03:30 / -02:30
        ("Antarctica/Troll", "T10:00:00", "T11:00:00"),  # no Windows name in CLDR
        (None, "T10:00:00+05:30", "T11:00:00+05:30"),  # an offset and no zone: kept in UTC
        (AMSTERDAM, "T10:00:00-08:00", "T11:00:00-08:00"),  # an offset, converted into the zone
    ],
    ids=["kathmandu", "chatham", "st-johns", "troll", "offset-no-zone", "offset-and-zone"],
)
def test_a_timed_appointment_lands_at_the_same_instant_in_any_zone(
    org: Org, zone: str | None, start: str, end: str
) -> None:
    appointment_id, subject = unique("zone")
    day = TODAY + timedelta(days=12)
    body: dict[str, Any] = {
        "subject": subject,
        "start": f"{day}{start}",
        "end": f"{day}{end}",
        "staff_ids": ["s-adele"],
    }
    if zone is not None:
        body["time_zone"] = zone
    answer = put(org, appointment_id, body)
    assert answer.status_code == 202, answer.text
    record = settled(org, appointment_id, 1)
    assert record["state"] == "synced", record
    wall = datetime.fromisoformat(f"{day}{start}")
    expected = wall if wall.tzinfo else wall.replace(tzinfo=ZoneInfo(zone or "UTC"))
    mine = only(events(org, org.user("adele"), subject), "adele")
    assert instant(mine["start"]) == expected.astimezone(UTC)
    assert instant(mine["end"]) - instant(mine["start"]) == timedelta(hours=1)
    assert record["appointment"]["time_zone"] == (zone or "UTC")


def test_a_series_update_rewrites_its_exceptions_and_a_delete_removes_the_series(org: Org) -> None:
    since = cursor(org)
    appointment_id, subject = unique("series-update")
    first = TODAY + timedelta(days=16)
    adele = org.user("adele")

    def at(days: int, hour: int) -> str:
        return f"{first + timedelta(days=days)}T{hour:02d}:00:00"

    body = {
        "subject": subject,
        "start": at(0, 9),
        "end": at(0, 10),
        "time_zone": AMSTERDAM,
        "staff_ids": ["s-adele"],
        "recurrence": {
            "rrule": "FREQ=DAILY;COUNT=6",
            "exdates": [(first + timedelta(days=1)).isoformat()],
            "overrides": [
                {"recurrence_id": at(2, 9), "start": at(2, 13), "end": at(2, 14), "subject": "first"}
            ],
        },
    }
    assert put(org, appointment_id, body).status_code == 202
    settled(org, appointment_id, 1)
    changed = {
        **body,
        "subject": f"{subject} v2",
        "recurrence": {
            "rrule": "FREQ=DAILY;COUNT=6",
            "exdates": [(first + timedelta(days=3)).isoformat()],
            "overrides": [
                {"recurrence_id": at(4, 9), "start": at(4, 16), "end": at(4, 17), "subject": "second"}
            ],
        },
    }
    assert put(org, appointment_id, changed).status_code == 202
    record = settled(org, appointment_id, 2)
    assert record["state"] == "synced", record
    assert events(org, adele, subject) == []
    written = events(org, adele, f"{subject} v2")
    master = only([e for e in written if e["type"] == "seriesMaster"], "series masters")
    assert copies(record)["s-adele"]["event_id"] == master["id"]
    # The exdate taken back: Graph cannot restore a cancelled occurrence, so that day is an event of its
    # own beside the series (the series is not written anew).
    restored = only([e for e in written if e["type"] == "singleInstance"], "restored occurrences")
    window = (
        datetime.combine(first, time(), UTC) - timedelta(days=1),
        datetime.combine(first, time(), UTC) + timedelta(days=8),
    )
    found = [
        e
        for e in view(org, adele, *window)
        if e.get("seriesMasterId") == master["id"] or e["id"] == restored["id"]
    ]
    zone = ZoneInfo(AMSTERDAM)
    got = sorted(
        (instant(e["start"]).astimezone(zone).replace(tzinfo=None).isoformat(), e["subject"]) for e in found
    )
    assert got == [
        (at(0, 9), f"{subject} v2"),
        (at(1, 9), f"{subject} v2"),
        (at(2, 9), f"{subject} v2"),
        (at(4, 16), "second"),
        (at(5, 9), f"{subject} v2"),
    ]
    never_echoed(org, since, names=("adele",))

    assert delete(org, appointment_id).status_code == 202
    wait_for(lambda: get(org, appointment_id).status_code == 404)
    assert events(org, adele, f"{subject} v2") == []
    assert not [e for e in view(org, adele, *window) if e["subject"] in (f"{subject} v2", "second")]
    never_echoed(org, since, names=("adele",))


def test_rapid_revisions_end_at_the_last_one_with_one_event_per_staff_member(org: Org) -> None:
    since = cursor(org)
    appointment_id, subject = unique("rapid")
    for revision in range(1, 6):
        answer = put(
            org,
            appointment_id,
            appointment(f"{subject} r{revision}", ["s-adele", "s-ben"], days=13, hour=8 + revision),
        )
        assert answer.headers["ETag"] == f'"{revision}"'
    record = settled(org, appointment_id, 5)
    assert record["state"] == "synced", record
    for name in ("adele", "ben"):
        mine = [e for e in calendar(org, org.user(name)) if e["subject"].startswith(subject)]
        assert [e["subject"] for e in mine] == [f"{subject} r5"]
        assert mine[0]["start"]["dateTime"].startswith(local(13, 13))
    never_echoed(org, since)
    synced = about(changes(org, since), "appointment.synced", appointment_id)
    assert synced and synced[-1]["data"]["revision"] == 5


def test_a_video_appointment_gets_a_teams_link_reported_per_staff_member(org: Org) -> None:
    appointment_id, subject = unique("video")
    assert put(org, appointment_id, appointment(subject, ["s-adele"], days=14, video=True)).status_code == 202
    record = settled(org, appointment_id, 1)
    assert record["state"] == "synced", record
    mine = only(events(org, org.user("adele"), subject), "adele")
    assert mine["isOnlineMeeting"] is True and mine["onlineMeeting"]["joinUrl"]
    assert copies(record)["s-adele"]["join_url"] == mine["onlineMeeting"]["joinUrl"]


def series_occurrence(org: Org, user: str, subject: str, day: date) -> dict[str, Any]:
    master = only(events(org, user, subject), "series masters")
    start = datetime.combine(day, time(), ZoneInfo(AMSTERDAM))
    found = [
        e
        for e in view(org, user, start, start + timedelta(days=1))
        if e.get("seriesMasterId") == master["id"]
    ]
    return only(found, f"occurrences on {day}")


def daily_series(org: Org, prefix: str, first: date) -> tuple[str, str]:
    appointment_id, subject = unique(prefix)
    body = {
        "subject": subject,
        "start": f"{first}T09:00:00",
        "end": f"{first}T10:00:00",
        "time_zone": AMSTERDAM,
        "staff_ids": ["s-adele"],
        "recurrence": {"rrule": "FREQ=DAILY;COUNT=5"},
    }
    assert put(org, appointment_id, body).status_code == 202
    assert settled(org, appointment_id, 1)["state"] == "synced"
    return appointment_id, subject


def occurrence_days(org: Org, user: str, subject: str, first: date) -> list[tuple[date, str]]:
    """The days the series covers: its occurrences, and an occurrence put back as an event of its own
    (Graph cannot restore a cancelled occurrence; the connector writes that day beside the series)."""
    written = events(org, user, subject)
    ids = {m["id"] for m in written if m["type"] == "seriesMaster"}
    singles = {e["id"] for e in written if e["type"] == "singleInstance"}
    start = datetime.combine(first, time(), ZoneInfo(AMSTERDAM)) - timedelta(days=1)
    found = [
        e
        for e in view(org, user, start, start + timedelta(days=8))
        if e.get("seriesMasterId") in ids or e["id"] in singles
    ]
    return sorted((instant(e["start"]).astimezone(ZoneInfo(AMSTERDAM)).date(), e["subject"]) for e in found)


@pytest.mark.parametrize(
    ("change", "days_ahead", "nth", "resolutions"),
    [("edit", 24, 2, {"reverted"}), ("delete", 32, 1, {"reverted", "recreated"})],
)
def test_host_wins_puts_back_an_occurrence_changed_in_outlook(
    org: Org, change: str, days_ahead: int, nth: int, resolutions: set[str]
) -> None:
    since = cursor(org)
    first = TODAY + timedelta(days=days_ahead)
    appointment_id, subject = daily_series(org, f"occ-{change}", first)
    adele = org.user("adele")
    occurrence = series_occurrence(org, adele, subject, first + timedelta(days=nth))
    if change == "edit":
        org.outlook.update(adele, occurrence["id"], {"subject": f"{subject} (edited in Outlook)"})
    else:
        org.outlook.delete(adele, occurrence["id"])
    [reported] = wait_for(lambda: outlook_changes(org, since, appointment_id), timeout=20)
    assert reported["data"]["resolution"] in resolutions, reported
    expected = [(first + timedelta(days=k), subject) for k in range(5)]
    wait_for(lambda: occurrence_days(org, adele, subject, first) == expected, timeout=30)
    assert len([e for e in events(org, adele, subject) if e["type"] == "seriesMaster"]) == 1
    never_echoed(org, since, names=("adele",))


def test_host_wins_puts_back_a_series_pattern_changed_in_outlook(org: Org) -> None:
    since = cursor(org)
    first = TODAY + timedelta(days=40)
    appointment_id, subject = daily_series(org, "pattern-edit", first)
    adele = org.user("adele")
    master = only(events(org, adele, subject), "series masters")
    recurrence = master["recurrence"]
    shorter = {**recurrence, "range": {**recurrence["range"], "numberOfOccurrences": 2}}
    org.outlook.update(adele, master["id"], {"recurrence": shorter})
    [reverted] = wait_for(lambda: outlook_changes(org, since, appointment_id), timeout=20)
    assert reverted["data"]["resolution"] == "reverted", reverted
    expected = [(first + timedelta(days=k), subject) for k in range(5)]
    wait_for(lambda: occurrence_days(org, adele, subject, first) == expected, timeout=30)
    never_echoed(org, since, names=("adele",))


def test_outlook_wins_keeps_a_deleted_copy_deleted_until_the_host_writes_again(outlook_wins_org: Org) -> None:
    org = outlook_wins_org
    since = cursor(org)
    appointment_id, subject = unique("outlookwins-delete")
    adele = org.user("adele")
    body = appointment(subject, ["s-adele"], days=15)
    assert put(org, appointment_id, body).status_code == 202
    first = copies(settled(org, appointment_id, 1))["s-adele"]["event_id"]
    org.outlook.delete(adele, first)
    [kept] = wait_for(lambda: outlook_changes(org, since, appointment_id))
    assert (kept["data"]["change"], kept["data"]["resolution"]) == ("deleted", "kept")
    never_echoed(org, since, names=("adele",))
    assert events(org, adele, subject) == []
    assert copies(get(org, appointment_id).json())["s-adele"]["state"] == "conflict"
    assert put(org, appointment_id, {**body, "subject": f"{subject} v2"}).status_code == 202
    record = settled(org, appointment_id, 2)
    assert record["state"] == "synced", record
    again = only(events(org, adele, f"{subject} v2"), "adele")
    assert copies(record)["s-adele"]["event_id"] == again["id"] != first
    never_echoed(org, since, names=("adele",))


def test_a_meeting_update_reaches_the_attendee_copies_and_staff_changes_follow(meeting_org: Org) -> None:
    org = meeting_org
    since = cursor(org)
    appointment_id, subject = unique("meeting-update")
    body = appointment(subject, ["s-adele", "s-ben"], days=7)
    assert put(org, appointment_id, body).status_code == 202
    record = settled(org, appointment_id, 1, timeout=90)
    assert record["state"] == "synced", record
    linked = {s: c["event_id"] for s, c in copies(record).items()}

    moved = appointment(f"{subject} (moved)", ["s-adele", "s-ben", "s-carla"], days=8, hour=15)
    assert put(org, appointment_id, moved).status_code == 202
    record = settled(org, appointment_id, 2, timeout=90)
    assert record["state"] == "synced", record
    held = copies(record)
    assert held["s-adele"]["event_id"] == linked["s-adele"] and held["s-ben"]["event_id"] == linked["s-ben"]
    expected = datetime.fromisoformat(local(8, 15)).replace(tzinfo=ZoneInfo(AMSTERDAM)).astimezone(UTC)
    for name in ("adele", "ben", "carla"):
        mine = only(events(org, org.user(name), f"{subject} (moved)"), name)
        assert instant(mine["start"]) == expected
        assert held[f"s-{name}"]["event_id"] == mine["id"] and held[f"s-{name}"]["state"] == "synced"
    never_echoed(org, since, names=("adele", "ben", "carla"))

    assert delete(org, appointment_id).status_code == 202
    wait_for(lambda: get(org, appointment_id).status_code == 404)
    assert events(org, org.user("adele"), f"{subject} (moved)") == []
    never_echoed(org, since, names=("adele", "ben", "carla"))


# --- zones whose CLDR Windows name keeps other clocks ----------------------------------------------------


@pytest.mark.parametrize("zone", ["America/Scoresbysund", "Antarctica/Casey", "Antarctica/Vostok"])
def test_an_appointment_in_a_zone_cldr_maps_to_other_clocks_lands_at_the_hosts_instants(
    org: Org, zone: str
) -> None:
    """CLDR names Azores, Central Pacific and Central Asia Standard Time for these zones: 1 to 3 hours off."""
    appointment_id, subject = unique("cldr-zone")
    day = TODAY + timedelta(days=9)
    body = {
        "subject": subject,
        "start": f"{day}T10:00:00",
        "end": f"{day}T11:00:00",
        "time_zone": zone,
        "staff_ids": ["s-adele"],
    }
    assert put(org, appointment_id, body).status_code == 202
    assert settled(org, appointment_id, 1)["state"] == "synced"

    mine = only(events(org, org.user("adele"), subject), "adele")
    expected = datetime.combine(day, time(10), ZoneInfo(zone)).astimezone(UTC)
    assert (instant(mine["start"]), instant(mine["end"])) == (expected, expected + timedelta(hours=1))

    series_id, series_subject = unique("cldr-zone-series")
    monday = following(TODAY + timedelta(days=14), 0)
    weekly = {
        **body,
        "subject": series_subject,
        "start": f"{monday}T10:00:00",
        "end": f"{monday}T11:00:00",
        "recurrence": {"rrule": "FREQ=WEEKLY;COUNT=4"},
    }
    assert put(org, series_id, weekly).status_code == 202
    assert settled(org, series_id, 1)["state"] == "synced"
    master = only(events(org, org.user("adele"), series_subject), "series master")
    start = datetime.combine(monday, time(), ZoneInfo(zone)) - timedelta(days=1)
    found = [
        e
        for e in view(org, org.user("adele"), start, start + timedelta(days=30))
        if e.get("seriesMasterId") == master["id"]
    ]
    wanted = [datetime.combine(monday + timedelta(weeks=n), time(10), ZoneInfo(zone)) for n in range(4)]
    assert sorted(instant(e["start"]) for e in found) == [w.astimezone(UTC) for w in wanted]


# --- 11. the connector's own update, Graph's answer lost -------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "recurring"),
    [("host_wins", False), ("host_wins", True), ("outlook_wins", False)],
    ids=["host-wins", "host-wins-series", "outlook-wins"],
)
async def test_an_update_whose_answer_is_lost_is_not_taken_for_an_outlook_edit(
    org: Org, outlook_wins_org: Org, policy: str, recurring: bool
) -> None:
    """Graph applies the PATCH and answers 503; the SDK's retry (the old If-Match) meets a 412. Outlook holds
    exactly the host's new version (its text body stored as Exchange's HTML): no conflict, no rewrite."""
    org = outlook_wins_org if policy == "outlook_wins" else org
    since = cursor(org)
    appointment_id, subject = unique(f"lost-patch-{policy}")
    adele = org.user("adele")
    extra: dict[str, Any] = {"body": "Bring the forms.\nAnd the ID card."}
    if recurring:
        extra["recurrence"] = {"rrule": "FREQ=DAILY;COUNT=4"}
    body = appointment(subject, ["s-adele"], days=44, **extra)
    assert put(org, appointment_id, body).status_code == 202
    first = copies(settled(org, appointment_id, 1))["s-adele"]["event_id"]
    async with org.connector.control() as control:
        rule = await control.add_fault(
            status=503, method="PATCH", path=r"/events/", mailbox=adele, count=1, when="after"
        )
    try:
        moved = {**body, "subject": f"{subject} v2", "start": local(45, 8), "end": local(45, 9)}
        assert put(org, appointment_id, moved).status_code == 202
        record = settled(org, appointment_id, 2)
        async with org.connector.control() as control:
            assert rule["id"] not in {r["id"] for r in await control.faults()}, "the fault never fired"
        assert record["state"] == "synced" and copies(record)["s-adele"]["event_id"] == first, record
        held = event(org, adele, first)
        assert held is not None and held["subject"] == f"{subject} v2"
        assert instant(held["start"]) == datetime.fromisoformat(local(45, 8)).replace(
            tzinfo=ZoneInfo(AMSTERDAM)
        ).astimezone(UTC)
        never_echoed(org, since, names=("adele",))  # also gives a recheck time to report (it must not)
        assert outlook_changes(org, since, appointment_id) == []
        assert copies(get(org, appointment_id).json())["s-adele"]["state"] == "synced"
    finally:
        async with org.connector.control() as control:
            if rule["id"] in {r["id"] for r in await control.faults()}:
                await control.remove_fault(rule["id"])


async def test_a_removal_whose_answer_is_lost_is_not_reported_as_an_outlook_deletion(org: Org) -> None:
    """ben leaves the appointment: Graph deletes his copy but answers 503, and refuses the SDK's retries
    (503): the job is queued again. The host puts him back meanwhile: his copy is made anew, and nobody is
    told it was deleted in Outlook."""
    since = cursor(org)
    appointment_id, subject = unique("lost-delete")
    ben = org.user("ben")
    body = appointment(subject, ["s-adele", "s-ben"], days=46)
    assert put(org, appointment_id, body).status_code == 202
    first = copies(settled(org, appointment_id, 1))["s-ben"]["event_id"]
    rules: list[dict[str, Any]] = []

    async def fault(**rule: Any) -> None:
        async with org.connector.control() as control:
            rules.append(
                await control.add_fault(status=503, method="DELETE", path=r"/events/", mailbox=ben, **rule)
            )

    async def fired(rule: dict[str, Any], times: int) -> None:
        deadline = datetime.now(UTC) + timedelta(seconds=60)
        while True:
            async with org.connector.control() as control:
                found = [r for r in await control.faults() if r["id"] == rule["id"]]
            if not found or int(found[0]["fired"]) >= times:
                return
            assert datetime.now(UTC) < deadline, f"the fault fired {found[0]['fired']} of {times} times"
            await asyncio.sleep(0.1)

    try:
        await fault(count=1, when="after")  # deleted, the answer lost
        assert put(org, appointment_id, {**body, "staff_ids": ["s-adele"]}).status_code == 202
        await fired(rules[0], 1)
        await fault(count=50, when="before")  # the SDK's retries refused: the delete goes unanswered
        await fired(rules[1], 2)
        assert event(org, ben, first) is None
        assert put(org, appointment_id, body).status_code == 202  # before any retry got an answer
        await asyncio.sleep(3)
        async with org.connector.control() as control:
            await control.remove_fault(rules[1]["id"])
        record = settled(org, appointment_id, 3, timeout=120)
        assert record["state"] == "synced", record
        again = only(events(org, ben, subject), "ben")
        assert copies(record)["s-ben"]["event_id"] == again["id"] != first
        never_echoed(org, since)
        assert outlook_changes(org, since, appointment_id) == []
    finally:
        async with org.connector.control() as control:
            live = {r["id"] for r in await control.faults()}
            for rule in rules:
                if rule["id"] in live:
                    await control.remove_fault(rule["id"])
