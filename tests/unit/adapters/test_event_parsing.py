"""Graph's event JSON into `OutlookEvent`: the shapes Graph (and the emulator) really send."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from benchmarks.parse_bench import delta_page
from shared.adapters.graph.events import (
    EventPayloadError,
    parse_delta_page,
    parse_event,
    parse_graph_datetime,
)
from shared.domain.calendar import Attendee, EventKind, OutlookEvent, Person, RemovedEvent

pytestmark = pytest.mark.unit

# A Teams meeting as calendarView delta renders it with `Prefer: outlook.timezone="UTC"` (trimmed from
# the contract's create response and the emulator's renderer).
TEAMS_MEETING: dict[str, Any] = {
    "@odata.type": "#microsoft.graph.event",
    "@odata.etag": 'W/"ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ=="',
    "id": "AAMkAGI1AAAt9AHjAAA=",
    "createdDateTime": "2026-11-02T03:00:50.7579581Z",
    "lastModifiedDateTime": "2026-11-02T03:00:51.2453721Z",
    "changeKey": "ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ==",
    "categories": ["Customer", "Red category"],
    "originalStartTimeZone": "Pacific Standard Time",
    "originalEndTimeZone": "Pacific Standard Time",
    "iCalUId": "040000008200E00074C5B7101A82E00800000000DA2B357D94B5D20100000000000000001000000",
    "reminderMinutesBeforeStart": 15,
    "isReminderOn": True,
    "hasAttachments": False,
    "subject": "Let's go brunch",
    "bodyPreview": "Does noon work for you?",
    "importance": "normal",
    "sensitivity": "private",
    "isAllDay": False,
    "isCancelled": False,
    "isOrganizer": True,
    "responseRequested": True,
    "seriesMasterId": None,
    "showAs": "tentative",
    "type": "singleInstance",
    "webLink": "https://outlook.office365.com/owa/?itemid=AAMkAGI1AAAt9AHjAAA%3D&exvsurl=1&path=/calendar/item",
    "onlineMeetingUrl": None,
    "isOnlineMeeting": True,
    "onlineMeetingProvider": "teamsForBusiness",
    "onlineMeeting": {
        "joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_M2Iz%40thread.v2/0?context=%7b%7d",
        "conferenceId": "177513992",
        "tollNumber": "+1 425 555 0123",
    },
    "allowNewTimeProposals": True,
    "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
    "body": {"contentType": "html", "content": "<html><body>Does noon work for you?</body></html>"},
    "start": {"dateTime": "2026-11-22T19:00:00.0000000", "timeZone": "UTC"},
    "end": {"dateTime": "2026-11-22T20:30:00.0000000", "timeZone": "UTC"},
    "location": {
        "displayName": "Harry's Bar",
        "locationType": "default",
        "uniqueId": "Harry's Bar",
        "uniqueIdType": "private",
    },
    "locations": [{"displayName": "Harry's Bar", "locationType": "default", "uniqueIdType": "unknown"}],
    "recurrence": None,
    "attendees": [
        {
            "type": "required",
            "status": {"response": "accepted", "time": "2026-11-02T04:00:00Z"},
            "emailAddress": {"name": "Samantha Booth", "address": "samanthab@contoso.com"},
        },
        {
            "type": "resource",
            "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
            "emailAddress": {"name": "Room 2", "address": "room2@contoso.com"},
        },
    ],
    "organizer": {"emailAddress": {"name": "Dana Swope", "address": "danas@contoso.com"}},
}

ALL_DAY_OCCURRENCE: dict[str, Any] = {
    "@odata.type": "#microsoft.graph.event",
    "id": "AAMkAGI1AAAt9AHjAAA=OID.2026-12-24",
    "changeKey": "EZ9r3czxY0m2jz8c45czkwAAFXcvIQ==",
    "iCalUId": "040000008200E00074C5B7101A82E008",
    "subject": "Christmas Eve (office closed)",
    "isAllDay": True,
    "type": "occurrence",
    "seriesMasterId": "AAMkAGI1AAAt9AHjAAA=",
    "originalStart": "2026-12-23T23:00:00Z",
    "originalStartTimeZone": "W. Europe Standard Time",
    "showAs": "oof",
    # the dates as Outlook shows them, rendered as midnights in the requested zone (UTC)
    "start": {"dateTime": "2026-12-24T00:00:00.0000000", "timeZone": "UTC"},
    "end": {"dateTime": "2026-12-25T00:00:00.0000000", "timeZone": "UTC"},
}


def test_a_teams_meeting_parses_every_field_the_host_sees():
    event = parse_event(TEAMS_MEETING)
    assert event == OutlookEvent(
        id="AAMkAGI1AAAt9AHjAAA=",
        change_key="ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ==",
        ical_uid="040000008200E00074C5B7101A82E00800000000DA2B357D94B5D20100000000000000001000000",
        kind=EventKind.SINGLE,
        series_master_id=None,
        subject="Let's go brunch",
        body="<html><body>Does noon work for you?</body></html>",
        body_type="html",
        location="Harry's Bar",
        start=datetime(2026, 11, 22, 19, 0, tzinfo=UTC),
        end=datetime(2026, 11, 22, 20, 30, tzinfo=UTC),
        all_day=False,
        show_as="tentative",
        sensitivity="private",
        categories=("Customer", "Red category"),
        cancelled=False,
        organizer=Person("Dana Swope", "danas@contoso.com"),
        attendees=(
            Attendee("Samantha Booth", "samanthab@contoso.com", "required", "accepted"),
            Attendee("Room 2", "room2@contoso.com", "resource", "none"),
        ),
        join_url="https://teams.microsoft.com/l/meetup-join/19%3ameeting_M2Iz%40thread.v2/0?context=%7b%7d",
        original_time_zone="Pacific Standard Time",
        last_modified=datetime(2026, 11, 2, 3, 0, 51, 245372, tzinfo=UTC),
        is_organizer=True,
        response="organizer",
    )
    assert event.start.tzinfo is UTC


def test_an_occurrence_knows_its_place_and_a_master_its_pattern_and_cancelled_dates():
    occurrence = parse_event(ALL_DAY_OCCURRENCE)
    assert occurrence.original_start == datetime(2026, 12, 23, 23, 0, tzinfo=UTC)
    recurrence = {
        "pattern": {"type": "yearly", "interval": 1},
        "range": {"type": "noEnd", "startDate": "2026-12-24"},
    }
    master = parse_event(
        {
            **ALL_DAY_OCCURRENCE,
            "id": "AAMkAGI1AAAt9AHjAAA=",
            "type": "seriesMaster",
            "seriesMasterId": None,
            "originalStart": None,
            "recurrence": recurrence,
            "cancelledOccurrences": ["OID.AAMkAGI1AAAt9AHjAAA=.2027-12-24", "OID.AAMkAGI1AAAt9AHjAAA=.bad"],
            "isOrganizer": False,
            "responseStatus": {"response": "accepted", "time": "2026-11-02T04:00:00Z"},
        }
    )
    assert master.kind is EventKind.SERIES_MASTER
    assert master.recurrence == recurrence
    assert master.cancelled_dates == (date(2027, 12, 24),)
    assert (master.is_organizer, master.response) == (False, "accepted")


def test_an_all_day_occurrence_keeps_its_dates_and_its_series():
    event = parse_event(ALL_DAY_OCCURRENCE)
    assert (event.start, event.end, event.all_day) == (date(2026, 12, 24), date(2026, 12, 25), True)
    assert type(event.start) is date  # never a midnight datetime
    assert event.kind is EventKind.OCCURRENCE
    assert event.series_master_id == "AAMkAGI1AAAt9AHjAAA="
    assert event.show_as == "oof"
    assert event.ends_at() == datetime(2026, 12, 25, tzinfo=UTC)


def test_an_all_day_event_rendered_in_another_zone_is_not_shifted():
    raw = copy.deepcopy(ALL_DAY_OCCURRENCE)
    raw["start"] = {"dateTime": "2026-12-24T00:00:00.0000000", "timeZone": "Tokyo Standard Time"}
    raw["end"] = {"dateTime": "2026-12-25T00:00:00.0000000", "timeZone": "Tokyo Standard Time"}
    event = parse_event(raw)
    assert (event.start, event.end) == (date(2026, 12, 24), date(2026, 12, 25))


def test_a_cancelled_meeting_is_cancelled():
    raw = {**TEAMS_MEETING, "isCancelled": True, "subject": "Canceled: Let's go brunch"}
    assert parse_event(raw).cancelled is True


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("singleInstance", EventKind.SINGLE),
        ("occurrence", EventKind.OCCURRENCE),
        ("exception", EventKind.EXCEPTION),
        ("seriesMaster", EventKind.SERIES_MASTER),
        ("somethingNew", EventKind.SINGLE),
    ],
)
def test_type_becomes_the_event_kind(kind, expected):
    assert parse_event({**TEAMS_MEETING, "type": kind}).kind is expected


def test_the_sparse_delta_sample_from_the_documentation_parses_with_defaults():
    # the docs' calendarView delta item: a handful of properties, no type, no location, no showAs
    raw = {
        "@odata.type": "#microsoft.graph.event",
        "@odata.etag": 'W/"EZ9r3czxY0m2jz8c45czkwAAFXcvIQ=="',
        "subject": "Plan shopping list",
        "body": {"contentType": "html", "content": ""},
        "start": {"dateTime": "2016-12-09T20:30:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2016-12-09T22:00:00.0000000", "timeZone": "UTC"},
        "attendees": [],
        "organizer": {
            "emailAddress": {"name": "Samantha Booth", "address": "samanthab@contoso.onmicrosoft.com"}
        },
        "id": "AAMkADNVxRAAA=",
    }
    event = parse_event(raw)
    assert event.kind is EventKind.SINGLE
    assert (event.location, event.show_as, event.sensitivity, event.categories) == ("", "busy", "normal", ())
    assert (event.change_key, event.ical_uid, event.join_url, event.last_modified) == (None, None, None, None)
    assert event.organizer == Person("Samantha Booth", "samanthab@contoso.onmicrosoft.com")
    assert event.start == datetime(2016, 12, 9, 20, 30, tzinfo=UTC)


def test_nulls_and_missing_optional_objects_do_not_crash():
    raw = {
        "id": "AAMk=",
        "start": {"dateTime": "2026-01-05T08:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-01-05T08:30:00.0000000", "timeZone": "UTC"},
        "subject": None,
        "body": None,
        "location": None,
        "categories": None,
        "organizer": None,
        "onlineMeeting": None,
        "attendees": [{"emailAddress": {"address": "x@contoso.com"}}, {}],
        "lastModifiedDateTime": None,
        "originalStartTimeZone": None,
    }
    event = parse_event(raw)
    assert (event.subject, event.body, event.body_type, event.location) == ("", "", "text", "")
    assert event.organizer is None
    assert event.attendees == (
        Attendee("", "x@contoso.com", "required", "none"),
        Attendee("", "", "required", "none"),
    )
    assert event.original_time_zone is None


def test_an_organizer_without_an_email_address_is_no_organizer():
    assert parse_event({**TEAMS_MEETING, "organizer": {}}).organizer is None
    assert parse_event({**TEAMS_MEETING, "organizer": {"emailAddress": None}}).organizer is None


def test_the_legacy_online_meeting_url_is_the_join_url_when_there_is_no_teams_object():
    raw = {**TEAMS_MEETING, "onlineMeeting": None, "onlineMeetingUrl": "https://meet.lync.com/contoso/x"}
    assert parse_event(raw).join_url == "https://meet.lync.com/contoso/x"


def test_a_time_in_another_zone_is_converted_to_utc_when_the_preference_was_not_honoured():
    raw = {
        **TEAMS_MEETING,
        "start": {"dateTime": "2026-07-01T09:00:00.0000000", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": "2026-07-01T10:00:00.0000000", "timeZone": "America/Los_Angeles"},
    }
    event = parse_event(raw)
    assert event.start == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)  # PDT is UTC-7
    assert event.end == datetime(2026, 7, 1, 17, 0, tzinfo=UTC)


def test_an_unknown_zone_or_a_missing_start_is_a_clear_error():
    with pytest.raises(EventPayloadError, match="unknown time zone"):
        parse_event(
            {**TEAMS_MEETING, "start": {"dateTime": "2026-07-01T09:00:00", "timeZone": "Mars/Olympus"}}
        )
    with pytest.raises(EventPayloadError, match="no start"):
        parse_event({k: v for k, v in TEAMS_MEETING.items() if k != "start"})
    with pytest.raises(EventPayloadError, match="without an id"):
        parse_event({k: v for k, v in TEAMS_MEETING.items() if k != "id"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T09:00:00.0000000", datetime(2026, 11, 22, 9, tzinfo=UTC)),
        ("2026-11-22T09:00:00.1234567", datetime(2026, 11, 22, 9, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-22T09:00:00.1234567Z", datetime(2026, 11, 22, 9, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-22T09:00:00Z", datetime(2026, 11, 22, 9, tzinfo=UTC)),
        ("2026-11-22T09:00:00", datetime(2026, 11, 22, 9, tzinfo=UTC)),
        ("2026-11-22T10:00:00.1234567+01:00", datetime(2026, 11, 22, 9, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_graph_date_times_are_aware_utc(text, expected):
    value = parse_graph_datetime(text)
    assert value == expected
    assert value.utcoffset() is not None and value.utcoffset().total_seconds() == 0


def test_a_delta_page_keeps_order_and_turns_removed_entries_into_removed_events():
    page = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
        "@odata.nextLink": "https://graph.microsoft.com/v1.0/users/u/calendarView/delta?$skiptoken=R0usmcCM996atia_s",
        "value": [
            TEAMS_MEETING,
            {"@odata.type": "#microsoft.graph.event", "id": "AAMkGone=", "@removed": {"reason": "deleted"}},
            ALL_DAY_OCCURRENCE,
        ],
    }
    items, next_link, delta_link = parse_delta_page(json.dumps(page).encode())
    assert [type(i) for i in items] == [OutlookEvent, RemovedEvent, OutlookEvent]
    assert items[1] == RemovedEvent("AAMkGone=")
    assert next_link.endswith("$skiptoken=R0usmcCM996atia_s")
    assert delta_link is None


def test_the_last_page_of_a_round_carries_the_delta_link_and_may_be_empty():
    body = b'{"@odata.deltaLink":"https://graph.microsoft.com/v1.0/me/calendarView/delta?$deltatoken=R0usmcMDNGg0J1E","value":[]}'
    assert parse_delta_page(body) == (
        [],
        None,
        "https://graph.microsoft.com/v1.0/me/calendarView/delta?$deltatoken=R0usmcMDNGg0J1E",
    )


def test_every_instance_the_emulator_renders_for_a_realistic_mailbox_parses():
    body = delta_page(200)
    raw = json.loads(body)["value"]
    items, _, _ = parse_delta_page(body)
    assert len(items) == 200
    for source, item in zip(raw, items, strict=True):
        assert item.id == source["id"]
        if isinstance(item, OutlookEvent):
            assert item.subject == source["subject"]
            assert item.all_day == source["isAllDay"]
            assert isinstance(item.start, date if item.all_day else datetime)
            assert item.start <= item.end
            assert (item.join_url is not None) == source["isOnlineMeeting"]
            assert len(item.attendees) == len(source["attendees"])
    kinds = {i.kind for i in items if isinstance(i, OutlookEvent)}
    assert {EventKind.SINGLE, EventKind.OCCURRENCE} <= kinds
    assert any(isinstance(i, OutlookEvent) and i.all_day for i in items)
