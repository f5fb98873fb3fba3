"""Outlook series and meetings, end to end, as Outlook users make them (Graph on the emulator as each
user's mailbox): the host's view, replayed from the pull feed, must reconstruct exactly the occurrences
the emulator's calendarView shows, by expanding the carried RRULE with dateutil, taking out the exdates
and putting each exception at its place. A meeting of three staff members is one meeting (one
identity, three responses), and its cancellation reaches every copy as `cancelled`."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from tests.e2e.test_sync import Outlook, feed, wait_for
from tests.e2e.test_tenants import consent, create
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e

BERLIN = ZoneInfo("Europe/Berlin")


async def organisation(
    connector: Connector, names: tuple[str, ...] = ("adele", "ben", "cara")
) -> dict[str, Any]:
    """A tenant with these staff members, migrated (no events yet)."""
    domain = f"series{uuid.uuid4().hex[:8]}.example"
    async with connector.control() as control:
        tenant = await control.create_tenant(f"Series {domain}", [domain], consent_policy="auto-accept")
        for name in names:
            await control.create_user(tenant["id"], f"{name}@{domain}", display_name=name.title())
    response = create(connector, {"domain": domain})
    assert response.status_code == 201, response.text
    assert consent(connector, response.json()["consent_url"]).status_code == 200
    with connector.api() as api:
        for name in names:
            put = api.put(f"/api/v1/tenants/{domain}/staff/s-{name}", json={"upn": f"{name}@{domain}"})
            assert put.json()["match"] == "matched", put.text
        wait_for(lambda: api.get(f"/api/v1/tenants/{domain}").json()["state"] == "active", timeout=120)
    return {"id": tenant["id"], "domain": domain, "upn": {n: f"{n}@{domain}" for n in names}}


def next_weekday(weekday: int, after: int = 2) -> date:
    day = datetime.now(UTC).date() + timedelta(days=after)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def series_body(subject: str, first: date, hour: int, recurrence: dict[str, Any]) -> dict[str, Any]:
    wall = datetime.combine(first, time(hour))
    return {
        "subject": subject,
        "start": {"dateTime": wall.isoformat(), "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": (wall + timedelta(hours=1)).isoformat(), "timeZone": "W. Europe Standard Time"},
        "recurrence": recurrence,
    }


def host_view(changes: list[dict[str, Any]], staff_id: str) -> dict[str, dict[str, Any]]:
    """The events the host holds for a staff member, replayed from the feed (nothing announced twice)."""
    held: dict[str, dict[str, Any]] = {}
    for change in changes:
        if change["staff_id"] != staff_id or not change["type"].startswith("event."):
            continue
        event = change["data"]["event"]
        if change["type"] == "event.created":
            assert event["id"] not in held, f"{event['id']} announced twice"
            held[event["id"]] = event
        elif change["type"] == "event.updated":
            assert event["id"] in held
            held[event["id"]] = event
        else:
            held.pop(event["id"], None)
    return held


def reconstructed(
    held: dict[str, dict[str, Any]], master_id: str, start: datetime, end: datetime
) -> list[str]:
    """The series' occurrences in [start, end) as the host computes them: dateutil over the carried rule,
    less the exdates, each exception in place of the occurrence it replaces (UTC instants, sorted)."""
    master = held[master_id]
    recurrence = master["recurrence"]
    assert recurrence["exact"] is True, recurrence
    zone = ZoneInfo(recurrence["time_zone"])
    first = datetime.fromisoformat(recurrence["start"]).astimezone(zone).replace(tzinfo=None)
    exdates = {date.fromisoformat(d) for d in recurrence["exdates"]}
    overrides = {
        e["original_start"]: e["start"] for e in held.values() if e.get("series_master_id") == master_id
    }
    found = []
    for wall in rrulestr(recurrence["rrule"], dtstart=first):
        instant = wall.replace(tzinfo=zone).astimezone(UTC)
        if instant >= end + timedelta(days=1):
            break
        if wall.date() in exdates:
            continue
        text = instant.strftime("%Y-%m-%dT%H:%M:%SZ")
        found.append(overrides.pop(text, text))
    return sorted(t for t in found if start <= _instant(t) < end)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def outlook_shows(outlook: Outlook, upn: str, master_id: str, start: datetime, end: datetime) -> list[str]:
    """What the emulator's calendarView shows of the series in [start, end) (by instance start)."""
    response = outlook.http.get(
        f"/users/{upn}/calendarView",
        params={"startDateTime": start.isoformat(), "endDateTime": end.isoformat(), "$top": 1000},
        headers={"Prefer": 'outlook.timezone="UTC", IdType="ImmutableId"'},
    )
    assert response.status_code == 200, response.text
    starts = [
        e["start"]["dateTime"][:19] + "Z"
        for e in response.json()["value"]
        if e.get("seriesMasterId") == master_id
    ]
    return sorted(s for s in starts if start <= _instant(s) < end)


def instances(outlook: Outlook, upn: str, master_id: str, days: int = 60) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    response = outlook.http.get(
        f"/users/{upn}/events/{master_id}/instances",
        params={"startDateTime": now.isoformat(), "endDateTime": (now + timedelta(days=days)).isoformat()},
    )
    assert response.status_code == 200, response.text
    return list(response.json()["value"])


def master_of(changes: list[dict[str, Any]], staff_id: str, subject: str) -> dict[str, Any] | None:
    for change in changes:
        event = change["data"].get("event") or {}
        if change["staff_id"] == staff_id and event.get("subject") == subject and event.get("recurrence"):
            return change
    return None


def comparison_window() -> tuple[datetime, datetime]:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today, today + timedelta(days=150)  # inside the sync window (180 days ahead)


async def test_a_weekly_series_with_an_exception_and_a_cancelled_occurrence_is_reconstructed_exactly(
    connector: Connector,
) -> None:
    org = await organisation(connector, ("adele",))
    outlook = Outlook(connector, org["id"])
    adele = org["upn"]["adele"]
    weekly = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["wednesday"], "firstDayOfWeek": "monday"},
        "range": {"type": "noEnd", "startDate": next_weekday(2).isoformat()},
    }
    master = outlook.create(adele, series_body("Weekly review", next_weekday(2), 9, weekly))
    wait_for(lambda: master_of(feed(connector, org["domain"]), "s-adele", "Weekly review"))

    moved, cancelled = instances(outlook, adele, master["id"])[1:3]
    moved_start = datetime.fromisoformat(moved["start"]["dateTime"][:19]) + timedelta(hours=2)
    outlook.update(
        adele,
        moved["id"],
        {
            "subject": "Weekly review (later)",
            "start": {"dateTime": moved_start.isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": (moved_start + timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
        },
    )
    outlook.delete(adele, cancelled["id"])
    cancelled_day = _instant(cancelled["originalStart"]).astimezone(BERLIN).date().isoformat()

    def settled() -> dict[str, dict[str, Any]] | None:
        held = host_view(feed(connector, org["domain"]), "s-adele")
        series = held.get(master["id"], {}).get("recurrence") or {}
        has_override = any(e.get("original_start") for e in held.values())
        return held if cancelled_day in series.get("exdates", ()) and has_override else None

    held = wait_for(settled)
    changes = feed(connector, org["domain"])
    assert not [c for c in changes if (c["data"].get("event") or {}).get("type") == "occurrence"]
    override = next(e for e in held.values() if e.get("original_start"))
    assert (override["type"], override["series_master_id"], override["subject"]) == (
        "exception",
        master["id"],
        "Weekly review (later)",
    )
    assert override["meeting_id"] == held[master["id"]]["meeting_id"] == master["iCalUId"]
    start, end = comparison_window()
    assert reconstructed(held, master["id"], start, end) == outlook_shows(
        outlook, adele, master["id"], start, end
    )


async def test_monthly_nth_weekday_and_yearly_series_are_reconstructed_exactly(connector: Connector) -> None:
    org = await organisation(connector, ("adele",))
    outlook = Outlook(connector, org["id"])
    adele = org["upn"]["adele"]
    first = datetime.now(UTC).date() + timedelta(days=3)
    monthly = {
        "pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"], "index": "second"},
        "range": {"type": "numbered", "startDate": first.isoformat(), "numberOfOccurrences": 10},
    }
    yearly = {
        "pattern": {"type": "absoluteYearly", "interval": 1, "dayOfMonth": first.day, "month": first.month},
        "range": {"type": "noEnd", "startDate": first.isoformat()},
    }
    made = {
        "Board meeting": outlook.create(adele, series_body("Board meeting", first, 14, monthly)),
        "Anniversary": outlook.create(adele, series_body("Anniversary", first, 8, yearly)),
    }
    changes = wait_for(
        lambda: (
            (c := feed(connector, org["domain"]))
            and all(master_of(c, "s-adele", subject) for subject in made)
            and c
        )
    )
    held = host_view(changes, "s-adele")
    board = held[made["Board meeting"]["id"]]["recurrence"]
    assert board["rrule"] == "FREQ=MONTHLY;BYDAY=2TU;COUNT=10"
    assert held[made["Anniversary"]["id"]]["recurrence"]["rrule"].startswith("FREQ=YEARLY;BYMONTH=")
    start, end = comparison_window()
    for master in made.values():
        assert reconstructed(held, master["id"], start, end) == outlook_shows(
            outlook, adele, master["id"], start, end
        )


async def test_a_meeting_of_three_staff_members_is_one_meeting_and_its_cancellation_reaches_all(
    connector: Connector,
) -> None:
    org = await organisation(connector)
    outlook = Outlook(connector, org["id"])
    upn = org["upn"]
    when = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    meeting = outlook.create(
        upn["adele"],
        {
            "subject": "Quarterly planning",
            "start": {"dateTime": when.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {"dateTime": (when + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "attendees": [
                {"emailAddress": {"address": upn["ben"]}, "type": "required"},
                {"emailAddress": {"address": upn["cara"]}, "type": "required"},
            ],
        },
    )

    def copy_in(user: str) -> dict[str, Any] | None:
        found = outlook.http.get(
            f"/users/{user}/events", params={"$filter": f"iCalUId eq '{meeting['iCalUId']}'"}
        )
        values = found.json()["value"]
        return values[0] if values else None

    ben_copy = wait_for(lambda: copy_in(upn["ben"]))
    assert ben_copy["iCalUId"] == meeting["iCalUId"]  # Exchange gives attendees the organiser's iCalUId
    for user, answer in (("ben", "accept"), ("cara", "tentativelyAccept")):
        copy = wait_for(lambda user=user: copy_in(upn[user]))
        response = outlook.http.post(
            f"/users/{upn[user]}/events/{copy['id']}/{answer}", json={"sendResponse": True}
        )
        assert response.status_code == 202, response.text

    def responses() -> dict[str, tuple[Any, ...]] | None:
        found = {}
        for staff in ("s-adele", "s-ben", "s-cara"):
            held = host_view(feed(connector, org["domain"]), staff)
            copies = [e for e in held.values() if e.get("meeting_id") == meeting["iCalUId"]]
            if len(copies) != 1:
                return None
            found[staff] = (copies[0]["is_organizer"], copies[0]["response"])
        wanted = {"s-ben": (False, "accepted"), "s-cara": (False, "tentativelyAccepted")}
        return found if all(found[s] == v for s, v in wanted.items()) else None

    assert wait_for(responses) == {
        "s-adele": (True, "organizer"),
        "s-ben": (False, "accepted"),
        "s-cara": (False, "tentativelyAccepted"),
    }

    assert (
        outlook.http.post(f"/users/{upn['adele']}/events/{meeting['id']}/cancel", json={}).status_code == 202
    )

    def reasons() -> dict[str, str] | None:
        found = {
            c["staff_id"]: c["data"]["reason"]
            for c in feed(connector, org["domain"])
            if c["type"] == "event.deleted"
        }
        return found if len(found) == 3 else None

    assert wait_for(reasons) == {"s-adele": "cancelled", "s-ben": "cancelled", "s-cara": "cancelled"}


async def test_an_event_moved_past_the_windows_far_end_is_out_of_window_and_a_deleted_one_deleted(
    connector: Connector,
) -> None:
    """calendarView delta answers `@removed` alike for both (graph-contract §4.1): the connector reads the
    removed items again by id and tells them apart."""
    org = await organisation(connector, ("adele",))
    outlook = Outlook(connector, org["id"])
    upn = org["upn"]["adele"]
    when = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)

    def single(subject: str, start: datetime) -> dict[str, Any]:
        wall = "%Y-%m-%dT%H:%M:%S"
        return {
            "subject": subject,
            "start": {"dateTime": start.strftime(wall), "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(hours=1)).strftime(wall), "timeZone": "UTC"},
        }

    moved = outlook.create(upn, single("Moved far ahead", when))
    gone = outlook.create(upn, single("Deleted", when + timedelta(hours=2)))

    def announced() -> bool:
        held = host_view(feed(connector, org["domain"]), "s-adele")
        return {moved["id"], gone["id"]} <= held.keys()

    wait_for(announced, timeout=120)
    outlook.update(upn, moved["id"], single("Moved far ahead", when + timedelta(days=400)))
    outlook.delete(upn, gone["id"])

    def reasons() -> dict[str, str] | None:
        found = {
            c["data"]["event"]["id"]: c["data"]["reason"]
            for c in feed(connector, org["domain"])
            if c["type"] == "event.deleted"
        }
        return found if len(found) == 2 else None

    assert wait_for(reasons, timeout=120) == {moved["id"]: "out_of_window", gone["id"]: "deleted"}
