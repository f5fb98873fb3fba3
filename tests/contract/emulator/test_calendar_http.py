"""The emulator's calendar through HTTP: events CRUD, idempotency, concurrency, extended properties,
time zones, all-day events, series with exceptions and cancelled occurrences, Teams, cancel.

Runs the calendar routes on a bare aiohttp app (`m365emulator.calendar.testing.Harness`);
test_calendar_sdk.py drives the same paths through msgraph-sdk against the whole emulator.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer

from m365emulator.calendar.model import MailboxOwner
from m365emulator.calendar.testing import Harness

pytestmark = pytest.mark.contract

ALICE = MailboxOwner(
    "8a6f4c1e-0000-4000-8000-000000000001",
    "5b1f7d3a-0000-4000-8000-0000000000a1",
    "alice@contoso.com",
    "alice@contoso.com",
    "Alice Able",
    "W. Europe Standard Time",
)
BASE = "/v1.0/users/alice@contoso.com"
PROP = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name HostAppointmentId"


@pytest.fixture
async def graph():
    harness = Harness([ALICE])
    client = TestClient(TestServer(harness.app()))
    await client.start_server()
    yield harness, client
    await client.close()


def meeting(**extra):
    body = {
        "subject": "Fitting",
        "body": {"contentType": "HTML", "content": "<p>Bring <b>shoes</b></p>"},
        "start": {"dateTime": "2026-05-04T09:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2026-05-04T10:00:00", "timeZone": "W. Europe Standard Time"},
    }
    body.update(extra)
    return body


async def post(client, body, path="/events", headers=None):
    resp = await client.post(BASE + path, json=body, headers=headers or {})
    return resp.status, await resp.json()


async def get(client, path, headers=None, params=None):
    resp = await client.get(BASE + path, headers=headers or {}, params=params)
    data = await resp.json() if resp.status != 204 else None
    return resp.status, data, resp.headers


# ---------------------------------------------------------------------------------------------- CRUD


async def test_create_get_patch_delete_round_trip(graph):
    harness, client = graph
    status, created = await post(client, meeting(categories=["Blue"], showAs="tentative"))
    assert status == 201
    assert created["type"] == "singleInstance"
    assert created["start"] == {"dateTime": "2026-05-04T07:00:00.0000000", "timeZone": "UTC"}
    assert created["originalStartTimeZone"] == "W. Europe Standard Time"
    assert created["organizer"]["emailAddress"] == {"name": "Alice Able", "address": "alice@contoso.com"}
    assert created["isOrganizer"] is True
    assert created["body"]["contentType"] == "html"
    assert created["bodyPreview"] == "Bring shoes"
    assert created["showAs"] == "tentative" and created["categories"] == ["Blue"]
    assert created["@odata.etag"] == f'W/"{created["changeKey"]}"'
    assert "transactionId" not in created
    assert "singleValueExtendedProperties" not in created

    status, fetched, _ = await get(client, f"/events/{created['id']}")
    assert status == 200 and fetched["subject"] == "Fitting"
    status, fetched, _ = await get(client, f"/calendar/events/{created['id']}")
    assert status == 200

    resp = await client.patch(f"{BASE}/events/{created['id']}", json={"subject": "Fitting (moved)"})
    patched = await resp.json()
    assert resp.status == 200
    assert patched["subject"] == "Fitting (moved)"
    assert patched["changeKey"] != created["changeKey"]

    resp = await client.delete(f"{BASE}/events/{created['id']}")
    assert resp.status == 204
    status, error, _ = await get(client, f"/events/{created['id']}")
    assert status == 404 and error["error"]["code"] == "ErrorItemNotFound"

    kinds = [(c.change_type, c.event_id) for _, c in harness.changes]
    assert kinds == [("created", created["id"]), ("updated", created["id"]), ("deleted", created["id"])]


async def test_transaction_id_makes_a_retried_post_return_the_same_event(graph):
    harness, client = graph
    body = meeting(transactionId="7E163156-7762-4BEB-A1C6-729EA81755A7")
    status1, first = await post(client, body)
    status2, second = await post(client, body)
    assert (status1, status2) == (201, 201)
    assert first["id"] == second["id"]
    assert second["transactionId"] == "7E163156-7762-4BEB-A1C6-729EA81755A7"
    assert harness.stores[ALICE.user_id].event_count() == 1
    assert len(harness.changes) == 1


async def test_if_match_with_a_stale_etag_is_412_and_changes_nothing(graph):
    _, client = graph
    _, created = await post(client, meeting())
    url = f"{BASE}/events/{created['id']}"
    resp = await client.patch(url, json={"subject": "v2"}, headers={"If-Match": created["@odata.etag"]})
    v2 = await resp.json()
    assert resp.status == 200

    resp = await client.patch(url, json={"subject": "v3"}, headers={"If-Match": created["@odata.etag"]})
    error = await resp.json()
    assert resp.status == 412
    assert error["error"]["code"] == "ErrorIrresolvableConflict"
    resp = await client.delete(url, headers={"If-Match": created["@odata.etag"]})
    assert resp.status == 412
    _, current, _ = await get(client, f"/events/{created['id']}")
    assert current["subject"] == "v2"

    resp = await client.delete(url, headers={"If-Match": v2["@odata.etag"]})
    assert resp.status == 204


async def test_unknown_property_and_missing_times_are_400(graph):
    _, client = graph
    status, error = await post(client, meeting(colour="red"))
    assert status == 400 and error["error"]["code"] == "RequestBodyRead"
    status, _ = await post(client, {"subject": "no times"})
    assert status == 400
    status, error = await post(
        client, meeting(start={"dateTime": "2026-05-04T09:00:00", "timeZone": "Mars/Olympus"})
    )
    assert status == 400 and error["error"]["code"] == "TimeZoneNotSupportedException"


# ------------------------------------------------------------------------------- extended properties


async def test_extended_property_is_set_hidden_expanded_and_filtered(graph):
    _, client = graph
    _, tagged = await post(client, meeting(singleValueExtendedProperties=[{"id": PROP, "value": "Appt-42"}]))
    await post(
        client, meeting(subject="other", singleValueExtendedProperties=[{"id": PROP, "value": "Appt-7"}])
    )
    assert "singleValueExtendedProperties" not in tagged

    expand = f"singleValueExtendedProperties($filter=id eq '{PROP}')"
    _, fetched, _ = await get(client, f"/events/{tagged['id']}", params={"$expand": expand})
    assert fetched["singleValueExtendedProperties"] == [{"id": PROP, "value": "Appt-42"}]

    def any_filter(prop_id, value):
        return f"singleValueExtendedProperties/Any(ep: ep/id eq '{prop_id}' and ep/value eq '{value}')"

    _, found, _ = await get(client, "/events", params={"$filter": any_filter(PROP, "appt-42")})
    assert [e["id"] for e in found["value"]] == [tagged["id"]]  # value: case-insensitive
    upper_guid = PROP.replace("66f5a359", "66F5A359")
    _, found, _ = await get(client, "/events", params={"$filter": any_filter(upper_guid, "Appt-42")})
    assert len(found["value"]) == 1  # GUID: case-insensitive
    other_case_name = PROP.replace("HostAppointmentId", "hostappointmentid")
    _, found, _ = await get(client, "/events", params={"$filter": any_filter(other_case_name, "Appt-42")})
    assert found["value"] == []  # Name: case-sensitive

    resp = await client.patch(
        f"{BASE}/events/{tagged['id']}",
        json={"singleValueExtendedProperties": [{"id": PROP, "value": "Appt-43"}]},
    )
    assert resp.status == 200
    _, found, _ = await get(client, "/events", params={"$filter": any_filter(PROP, "Appt-43")})
    assert [e["id"] for e in found["value"]] == [tagged["id"]]


# -------------------------------------------------------------------------------------- time zones


@pytest.mark.parametrize(
    ("prefer", "label", "start"),
    [
        ('outlook.timezone="Pacific Standard Time"', "Pacific Standard Time", "2026-05-04T00:00:00.0000000"),
        ('outlook.timezone="America/Los_Angeles"', "America/Los_Angeles", "2026-05-04T00:00:00.0000000"),
        (
            'odata.maxpagesize=50, outlook.timezone="Tokyo Standard Time"',
            "Tokyo Standard Time",
            "2026-05-04T16:00:00.0000000",
        ),
    ],
)
async def test_prefer_outlook_timezone_renders_in_the_zone_and_says_so(graph, prefer, label, start):
    _, client = graph
    _, created = await post(client, meeting())
    status, fetched, headers = await get(client, f"/events/{created['id']}", headers={"Prefer": prefer})
    assert status == 200
    assert fetched["start"] == {"dateTime": start, "timeZone": label}
    assert f'outlook.timezone="{label}"' in headers["Preference-Applied"]


async def test_iana_input_zone_and_default_utc_output(graph):
    _, client = graph
    status, created = await post(
        client,
        meeting(
            start={"dateTime": "2026-01-15T09:00:00.0000000", "timeZone": "America/New_York"},
            end={"dateTime": "2026-01-15T09:30:00", "timeZone": "America/New_York"},
        ),
    )
    assert status == 201
    assert created["start"]["dateTime"] == "2026-01-15T14:00:00.0000000"
    assert created["originalStartTimeZone"] == "America/New_York"


@pytest.mark.parametrize("zone", ["Tokyo Standard Time", "Pacific Standard Time", "Australia/Sydney", "UTC"])
@pytest.mark.parametrize("view_zone", ["Hawaiian Standard Time", "Line Islands Standard Time", "UTC"])
async def test_all_day_events_keep_their_dates_in_every_zone(graph, zone, view_zone):
    _, client = graph
    status, created = await post(
        client,
        meeting(
            isAllDay=True,
            start={"dateTime": "2026-07-01T00:00:00", "timeZone": zone},
            end={"dateTime": "2026-07-03T00:00:00", "timeZone": zone},
        ),
    )
    assert status == 201
    prefer = {"Prefer": f'outlook.timezone="{view_zone}"'}
    _, fetched, _ = await get(client, f"/events/{created['id']}", headers=prefer)
    assert fetched["isAllDay"] is True
    assert fetched["start"] == {"dateTime": "2026-07-01T00:00:00.0000000", "timeZone": view_zone}
    assert fetched["end"] == {"dateTime": "2026-07-03T00:00:00.0000000", "timeZone": view_zone}


async def test_all_day_event_must_be_midnight_to_midnight_in_one_zone(graph):
    _, client = graph
    not_midnight = meeting(
        isAllDay=True,
        start={"dateTime": "2026-07-01T09:00:00", "timeZone": "UTC"},
        end={"dateTime": "2026-07-02T00:00:00", "timeZone": "UTC"},
    )
    two_zones = meeting(
        isAllDay=True,
        start={"dateTime": "2026-07-01T00:00:00", "timeZone": "UTC"},
        end={"dateTime": "2026-07-02T00:00:00", "timeZone": "Tokyo Standard Time"},
    )
    for body in (not_midnight, two_zones):
        status, error = await post(client, body)
        assert status == 400 and error["error"]["code"] == "ErrorInvalidParameter"


# -------------------------------------------------------------------------------------- recurrence


def weekly_series(**extra):
    return meeting(
        subject="Standup",
        recurrence={
            "pattern": {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": ["monday", "wednesday"],
                "firstDayOfWeek": "sunday",
            },
            "range": {"type": "numbered", "startDate": "2026-03-23", "numberOfOccurrences": 6},
        },
        start={"dateTime": "2026-03-23T09:00:00", "timeZone": "W. Europe Standard Time"},
        end={"dateTime": "2026-03-23T09:15:00", "timeZone": "W. Europe Standard Time"},
        **extra,
    )


WINDOW = {"startDateTime": "2026-03-01T00:00:00Z", "endDateTime": "2026-05-01T00:00:00Z"}


async def test_series_occurrences_exceptions_and_cancellations(graph):
    harness, client = graph
    status, master = await post(client, weekly_series())
    assert status == 201 and master["type"] == "seriesMaster"
    assert master["recurrence"]["pattern"]["daysOfWeek"] == ["monday", "wednesday"]
    assert master["recurrence"]["range"]["recurrenceTimeZone"] == "W. Europe Standard Time"

    _, view, _ = await get(client, "/calendarView", params=WINDOW)
    occurrences = view["value"]
    assert [o["start"]["dateTime"][:16] for o in occurrences] == [
        "2026-03-23T08:00",  # CET
        "2026-03-25T08:00",
        "2026-03-30T07:00",  # CEST: same wall clock
        "2026-04-01T07:00",
        "2026-04-06T07:00",
        "2026-04-08T07:00",
    ]
    assert {o["type"] for o in occurrences} == {"occurrence"}
    assert {o["seriesMasterId"] for o in occurrences} == {master["id"]}
    assert len({o["iCalUId"] for o in occurrences} | {master["iCalUId"]}) == 7
    assert occurrences[2]["originalStart"] == "2026-03-30T07:00:00Z"
    assert occurrences[0]["recurrence"] is None

    # an occurrence is addressable by its id, stable across reads
    _, again, _ = await get(client, "/calendarView", params=WINDOW)
    assert [o["id"] for o in again["value"]] == [o["id"] for o in occurrences]
    status, one, _ = await get(client, f"/events/{occurrences[1]['id']}")
    assert status == 200 and one["type"] == "occurrence"

    # PATCH an occurrence: it becomes an exception with the same id
    resp = await client.patch(
        f"{BASE}/events/{occurrences[1]['id']}",
        json={
            "subject": "Standup (late)",
            "start": {"dateTime": "2026-03-25T11:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-25T11:15:00", "timeZone": "UTC"},
        },
    )
    exception = await resp.json()
    assert resp.status == 200
    assert exception["type"] == "exception" and exception["id"] == occurrences[1]["id"]
    assert exception["originalStart"] == "2026-03-25T08:00:00Z"
    assert exception["iCalUId"] == occurrences[1]["iCalUId"]

    # DELETE an occurrence: it is cancelled and listed on the master
    resp = await client.delete(f"{BASE}/events/{occurrences[2]['id']}")
    assert resp.status == 204
    _, master_now, _ = await get(client, f"/events/{master['id']}")
    assert master_now["cancelledOccurrences"] == [f"OID.{master['id']}.2026-03-30"]
    status, _, _ = await get(client, f"/events/{occurrences[2]['id']}")
    assert status == 404

    _, view, _ = await get(client, "/calendarView", params=WINDOW)
    assert [(o["type"], o["start"]["dateTime"][:16]) for o in view["value"]] == [
        ("occurrence", "2026-03-23T08:00"),
        ("exception", "2026-03-25T11:00"),
        ("occurrence", "2026-04-01T07:00"),
        ("occurrence", "2026-04-06T07:00"),
        ("occurrence", "2026-04-08T07:00"),
    ]
    _, listed, _ = await get(client, "/events")
    assert [e["type"] for e in listed["value"]] == ["seriesMaster"]

    _, inst, _ = await get(client, f"/events/{master['id']}/instances", params=WINDOW)
    assert len(inst["value"]) == 5

    changed = {(c.change_type, c.event_id) for _, c in harness.changes}
    assert ("updated", occurrences[1]["id"]) in changed
    assert ("deleted", occurrences[2]["id"]) in changed


async def test_patching_the_pattern_drops_exceptions_it_no_longer_has(graph):
    _, client = graph
    _, master = await post(client, weekly_series())
    _, view, _ = await get(client, "/calendarView", params=WINDOW)
    monday, wednesday = view["value"][0], view["value"][1]
    await client.patch(f"{BASE}/events/{monday['id']}", json={"subject": "Monday special"})
    await client.patch(f"{BASE}/events/{wednesday['id']}", json={"subject": "Wednesday special"})

    resp = await client.patch(
        f"{BASE}/events/{master['id']}",
        json={
            "recurrence": {
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                "range": {"type": "numbered", "startDate": "2026-03-23", "numberOfOccurrences": 3},
            }
        },
    )
    assert resp.status == 200
    _, view, _ = await get(client, "/calendarView", params=WINDOW)
    assert [(o["type"], o["subject"]) for o in view["value"]] == [
        ("exception", "Monday special"),
        ("occurrence", "Standup"),
        ("occurrence", "Standup"),
    ]


async def test_master_start_moves_to_the_first_occurrence(graph):
    _, client = graph
    body = weekly_series()
    body["recurrence"]["range"]["startDate"] = "2026-03-22"  # a Sunday; the pattern starts Monday
    body["start"]["dateTime"] = "2026-03-22T09:00:00"
    body["end"]["dateTime"] = "2026-03-22T09:15:00"
    _, master = await post(client, body)
    assert master["start"]["dateTime"] == "2026-03-23T08:00:00.0000000"


@pytest.mark.parametrize(
    "recurrence",
    [
        {"pattern": {"type": "weekly", "interval": 1}, "range": {"type": "noEnd", "startDate": "2026-03-23"}},
        {"pattern": {"type": "daily", "interval": 0}, "range": {"type": "noEnd", "startDate": "2026-03-23"}},
        {"pattern": {"type": "hourly", "interval": 1}, "range": {"type": "noEnd", "startDate": "2026-03-23"}},
        {
            "pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday"], "index": "fifth"},
            "range": {"type": "noEnd", "startDate": "2026-03-23"},
        },
        {
            "pattern": {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 5},
            "range": {"type": "noEnd", "startDate": "2026-03-23"},
        },
        {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": "2026-03-23"},
        },
        {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "endDate", "startDate": "2026-03-23"},
        },
        {"pattern": {"type": "daily", "interval": 1}, "range": {"type": "noEnd"}},
        {
            "pattern": {"type": "daily", "interval": 1, "daysOfWeek": ["someday"]},
            "range": {"type": "noEnd", "startDate": "2026-03-23"},
        },
    ],
)
async def test_invalid_recurrence_is_400(graph, recurrence):
    harness, client = graph
    status, error = await post(client, meeting(recurrence=recurrence))
    assert status == 400
    assert error["error"]["code"] == "ErrorInvalidParameter"
    assert harness.stores[ALICE.user_id].event_count() == 0


async def test_calendar_view_requires_its_window(graph):
    _, client = graph
    for params in ({}, {"startDateTime": "", "endDateTime": ""}, {"startDateTime": "2026-01-01T00:00:00Z"}):
        status, error, _ = await get(client, "/calendarView", params=params)
        assert status == 400
        assert error["error"] == {
            "code": "ErrorInvalidParameter",
            "message": "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
            "innerError": error["error"]["innerError"],
        }


async def test_calendar_view_pages_with_next_links(graph):
    _, client = graph
    for day in range(1, 8):
        await post(
            client,
            meeting(
                subject=f"day {day}",
                start={"dateTime": f"2026-06-{day:02d}T09:00:00", "timeZone": "UTC"},
                end={"dateTime": f"2026-06-{day:02d}T10:00:00", "timeZone": "UTC"},
            ),
        )
    window = {"startDateTime": "2026-06-01T00:00:00Z", "endDateTime": "2026-07-01T00:00:00Z", "$top": "3"}
    _, page, _ = await get(client, "/calendarView", params=window)
    subjects = [e["subject"] for e in page["value"]]
    while "@odata.nextLink" in page:
        assert page["@odata.nextLink"].startswith(str(client.make_url("/")))
        resp = await client.session.get(page["@odata.nextLink"])
        page = await resp.json()
        subjects += [e["subject"] for e in page["value"]]
    assert subjects == [f"day {d}" for d in range(1, 8)]

    _, ordered, _ = await get(
        client, "/events", params={"$orderby": "start/dateTime desc", "$top": "2", "$select": "subject,start"}
    )
    assert [e["subject"] for e in ordered["value"]] == ["day 7", "day 6"]
    assert set(ordered["value"][0]) == {"@odata.etag", "id", "subject", "start"}


# ------------------------------------------------------------------------------------ Teams, cancel


async def test_teams_meeting_gets_a_join_url_that_stays(graph):
    _, client = graph
    _, created = await post(client, meeting(isOnlineMeeting=True, onlineMeetingProvider="teamsForBusiness"))
    join = created["onlineMeeting"]["joinUrl"]
    assert created["isOnlineMeeting"] is True and created["onlineMeetingProvider"] == "teamsForBusiness"
    assert join.startswith("https://teams.microsoft.com/l/meetup-join/19%3ameeting_")
    assert "%40thread.v2/0?context=" in join
    assert quote(ALICE.tenant_id) in join and ALICE.user_id in join
    assert created["onlineMeetingUrl"] is None

    resp = await client.patch(
        f"{BASE}/events/{created['id']}", json={"isOnlineMeeting": False, "subject": "x"}
    )
    patched = await resp.json()
    assert patched["isOnlineMeeting"] is True
    assert patched["onlineMeeting"]["joinUrl"] == join


async def test_cancel_is_202_for_the_organizer_and_400_for_an_attendee(graph):
    harness, client = graph
    _, created = await post(client, meeting(attendees=[{"emailAddress": {"address": "bob@contoso.com"}}]))
    resp = await client.post(f"{BASE}/events/{created['id']}/cancel", json={"Comment": "sorry"})
    assert resp.status == 202
    status, _, _ = await get(client, f"/events/{created['id']}")
    assert status == 404
    assert harness.changes[-1][1].change_type == "deleted"

    invited = harness.stores[ALICE.user_id].seed_event(
        meeting(organizer={"emailAddress": {"name": "Bob", "address": "bob@contoso.com"}})
    )
    assert invited["isOrganizer"] is False
    resp = await client.post(f"{BASE}/events/{invited['id']}/cancel", json={})
    error = await resp.json()
    assert resp.status == 400
    assert error["error"]["message"] == (
        "Your request can't be completed. You need to be an organizer to cancel a meeting."
    )


async def test_seeded_events_are_found_by_their_legacy_ews_id(graph):
    harness, _ = graph
    store = harness.stores[ALICE.user_id]
    seeded = store.seed_event(meeting(), ews_id="AAMkAGLegacy+/ews==")
    assert store.find_by_ews_id("AAMkAGLegacy+/ews==") == seeded["id"]
    plain = store.seed_event(meeting(subject="plain"))
    assert store.find_by_ews_id(store.ews_id_of(plain["id"])) == plain["id"]
    assert store.find_by_ews_id("AAMkAGnothing") is None
    assert harness.changes[-1][1].change_type == "created"


async def test_clock_drives_created_and_modified_times(graph):
    harness, client = graph
    _, created = await post(client, meeting())
    harness.clock.advance(timedelta(hours=2))
    resp = await client.patch(f"{BASE}/events/{created['id']}", json={"subject": "later"})
    patched = await resp.json()
    assert patched["lastModifiedDateTime"] > created["lastModifiedDateTime"]
    assert patched["createdDateTime"] == created["createdDateTime"]


@pytest.mark.parametrize("view_zone", ["Tokyo Standard Time", "Hawaiian Standard Time"])
async def test_all_day_yearly_series_keeps_its_dates_in_every_zone(graph, view_zone):
    _, client = graph
    status, master = await post(
        client,
        meeting(
            subject="Birthday",
            isAllDay=True,
            start={"dateTime": "2026-02-28T00:00:00", "timeZone": "Europe/Amsterdam"},
            end={"dateTime": "2026-03-01T00:00:00", "timeZone": "Europe/Amsterdam"},
            recurrence={
                "pattern": {"type": "absoluteYearly", "interval": 1, "month": 2, "dayOfMonth": 28},
                "range": {"type": "noEnd", "startDate": "2026-02-28"},
            },
        ),
    )
    assert status == 201
    _, view, _ = await get(
        client,
        "/calendarView",
        params={"startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2029-01-01T00:00:00Z"},
        headers={"Prefer": f'outlook.timezone="{view_zone}"'},
    )
    assert [(o["start"]["dateTime"], o["end"]["dateTime"]) for o in view["value"]] == [
        ("2026-02-28T00:00:00.0000000", "2026-03-01T00:00:00.0000000"),
        ("2027-02-28T00:00:00.0000000", "2027-03-01T00:00:00.0000000"),
        ("2028-02-28T00:00:00.0000000", "2028-02-29T00:00:00.0000000"),
    ]
    assert all(o["isAllDay"] and o["seriesMasterId"] == master["id"] for o in view["value"])


async def test_events_can_be_found_by_ical_uid(graph):
    _, client = graph
    _, wanted = await post(client, meeting(subject="wanted"))
    await post(client, meeting(subject="other"))
    _, found, _ = await get(client, "/events", params={"$filter": f"iCalUId eq '{wanted['iCalUId']}'"})
    assert [e["id"] for e in found["value"]] == [wanted["id"]]


@pytest.mark.parametrize(
    ("prefer", "content_type", "applied"),
    [
        (None, "html", None),
        ('outlook.body-content-type="text"', "text", 'outlook.body-content-type="text"'),
        ('outlook.body-content-type="html"', "html", 'outlook.body-content-type="html"'),
        ('outlook.body-content-type="rtf"', "html", None),  # an unknown value is ignored
    ],
)
async def test_body_content_type_preference_is_applied_and_confirmed(graph, prefer, content_type, applied):
    _, client = graph
    status, created = await post(client, meeting(body={"contentType": "text", "content": "Line 1\nLine 2"}))
    assert status == 201
    headers = {"Prefer": prefer} if prefer else {}
    status, fetched, answer_headers = await get(client, f"/events/{created['id']}", headers=headers)
    assert status == 200 and fetched["body"]["contentType"] == content_type
    assert answer_headers.get("Preference-Applied") == applied
    expected = "Line 1\nLine 2" if content_type == "text" else "Line 1<br>\r\nLine 2"
    assert expected in fetched["body"]["content"]
