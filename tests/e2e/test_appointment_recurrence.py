"""A recurring appointment, end to end: what Outlook shows is what the host's RRULE says.

For generated RRULEs (FREQ, INTERVAL, BYDAY sets and ordinals, BYMONTHDAY, COUNT, UNTIL as a date or
a UTC time, or no end) starting on a generated day and time (or all-day) in zones with daylight-saving
changes,
the appointment is PUT through the host API; once it is synced, the occurrences of its series are read
from the staff calendar's calendarView on the emulator and their start instants compared with
dateutil's expansion of the RRULE (`shared.domain.recurrence.expand`) over the same window. Rules the
API refuses as inexpressible in Outlook (422) are assumed away (hypothesis fails as unsatisfiable if
it finds no accepted rule at all). Each example is a full round through the host, the queue and Graph,
so there are few of them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shared.domain.recurrence import expand
from tests.e2e.test_appointments import Org, delete, events, instant, only, organisation, put, settled, view
from tests.fixtures.connector import Connector

pytestmark = pytest.mark.e2e

TODAY = datetime.now(UTC).date()
ZONES = [
    "Europe/Amsterdam",
    "America/New_York",
    "America/Santiago",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Europe/London",
]
CODES = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
WINDOW_DAYS = {"DAILY": 45, "WEEKLY": 120, "MONTHLY": 400, "YEARLY": 1200}


@pytest.fixture(scope="module")
async def org(connector: Connector) -> Org:
    return await organisation(connector)


@st.composite
def series(draw: st.DrawFn) -> dict[str, Any]:
    """A zone, a first local day and time, and an RRULE mostly anchored on that day (so that the API's
    rule 'the start must be an occurrence' rarely refuses it)."""
    zone = draw(st.sampled_from(ZONES))
    first = TODAY + timedelta(days=draw(st.integers(1, 150)))
    at = time(draw(st.integers(6, 21)), draw(st.sampled_from([0, 15, 30, 45])))
    freq = draw(st.sampled_from(list(WINDOW_DAYS)))
    parts = [f"FREQ={freq}"]
    interval = draw(st.integers(1, 3))
    if interval > 1 or draw(st.booleans()):
        parts.append(f"INTERVAL={interval}")
    weekday = CODES[first.weekday()]
    ordinal = (first.day - 1) // 7 + 1
    last = (first + timedelta(days=7)).month != first.month
    if freq in ("DAILY", "WEEKLY"):
        days = draw(st.sets(st.sampled_from(CODES), max_size=3))
        if freq == "WEEKLY" or (interval == 1 and days):
            chosen = sorted(
                {weekday, *days} if draw(st.integers(0, 9)) else days or {weekday}, key=CODES.index
            )
            if chosen:
                parts.append("BYDAY=" + ",".join(chosen))
    else:
        if freq == "YEARLY" and draw(st.booleans()):
            parts.append(f"BYMONTH={first.month}")
        kinds = ["plain", "monthday"] + (["nth"] if ordinal <= 4 else []) + (["last"] if last else [])
        kind = draw(st.sampled_from(kinds))
        if kind != "plain" and freq == "YEARLY" and not any(p.startswith("BYMONTH=") for p in parts):
            parts.append(f"BYMONTH={first.month}")
        if kind == "monthday":
            parts.append(f"BYMONTHDAY={first.day}")
        elif kind == "nth":
            parts.append(f"BYDAY={ordinal}{weekday}")
        elif kind == "last":
            parts.append(f"BYDAY=-1{weekday}")
    end = draw(st.sampled_from(["count", "until-date", "until-utc", "none"]))
    if end == "count":
        parts.append(f"COUNT={draw(st.integers(1, 12))}")
    elif end != "none":
        until_day = first + timedelta(days=draw(st.integers(0, WINDOW_DAYS[freq])))
        if end == "until-date":
            parts.append(f"UNTIL={until_day:%Y%m%d}")
        else:
            until = datetime.combine(until_day, at, ZoneInfo(zone)) + timedelta(
                minutes=draw(st.sampled_from([-1, 0, 1]))
            )
            parts.append(f"UNTIL={until.astimezone(UTC):%Y%m%dT%H%M%SZ}")
    all_day = draw(st.integers(0, 4)) == 0
    return {"zone": zone, "first": first, "at": at, "rrule": ";".join(parts), "all_day": all_day}


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)
@given(case=series())
def test_outlook_shows_the_occurrences_of_the_hosts_rrule(org: Org, case: dict[str, Any]) -> None:
    zone, first, at, rrule = case["zone"], case["first"], case["at"], case["rrule"]
    token = uuid.uuid4().hex[:8]
    appointment_id, subject = f"prop-{token}", f"prop {token}"
    start = datetime.combine(first, at)
    body: dict[str, Any] = {
        "subject": subject,
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=45)).isoformat(),
        "time_zone": zone,
        "staff_ids": ["s-adele"],
        "recurrence": {"rrule": rrule},
    }
    if case["all_day"]:
        body.update(all_day=True, start=first.isoformat(), end=(first + timedelta(days=1)).isoformat())
    answer = put(org, appointment_id, body)
    assume(answer.status_code != 422)
    assert answer.status_code == 202, answer.text
    try:
        record = settled(org, appointment_id, 1)
        assert record["state"] == "synced", record
        adele = org.user("adele")
        master = only(events(org, adele, subject), "series masters")
        window_start = datetime.combine(first, time(), ZoneInfo(zone))
        window_end = window_start + timedelta(days=WINDOW_DAYS[rrule.split(";")[0].removeprefix("FREQ=")])
        found = [
            e for e in view(org, adele, window_start, window_end) if e.get("seriesMasterId") == master["id"]
        ]
        if case["all_day"]:
            assert all(e["isAllDay"] for e in found), found
            got: list[Any] = sorted(e["start"]["dateTime"][:10] for e in found)
            want: list[Any] = [
                day.isoformat() for day in expand(rrule, first, zone, window_start, window_end)
            ]
        else:
            got = sorted(instant(e["start"]) for e in found)
            aware = start.replace(tzinfo=ZoneInfo(zone))
            want = [
                moment.astimezone(UTC)
                for moment in expand(rrule, aware, zone, window_start, window_end)
                if isinstance(moment, datetime)
            ]
        assert want and got == want, (rrule, zone, start)
    finally:
        delete(org, appointment_id)
