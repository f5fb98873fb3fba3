"""The appointment JSON: every rejection names its field and reason; good input parses to zone-aware times."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.service.appointment_commands import parse_appointment, parse_appointment_id
from shared.service.errors import InvalidInput

pytestmark = pytest.mark.unit


def body(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "subject": "Intake",
        "start": "2027-03-01T09:00:00",
        "end": "2027-03-01T10:00:00",
        "time_zone": "Europe/Amsterdam",
        "staff_ids": ["s1"],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def refused(raw: dict[str, Any]) -> InvalidInput:
    with pytest.raises(InvalidInput) as error:
        parse_appointment("a-1", raw)
    return error.value


def test_wall_clock_times_are_in_the_appointments_zone() -> None:
    appointment = parse_appointment("a-1", body())
    assert appointment.start == datetime(2027, 3, 1, 9, tzinfo=ZoneInfo("Europe/Amsterdam"))
    assert appointment.time_zone == "Europe/Amsterdam"


def test_an_offset_without_a_zone_is_kept_in_utc() -> None:
    appointment = parse_appointment(
        "a-1", body(time_zone=None, start="2027-03-01T09:00:00+01:00", end="2027-03-01T10:00:00+01:00")
    )
    assert appointment.time_zone == "UTC" and appointment.start.isoformat() == "2027-03-01T08:00:00+00:00"


def test_all_day_takes_dates() -> None:
    appointment = parse_appointment("a-1", body(all_day=True, start="2027-03-01", end="2027-03-02"))
    assert (appointment.start, appointment.end) == (date(2027, 3, 1), date(2027, 3, 2))
    assert refused(body(all_day=True)).field == "start"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"end": "2027-03-01T08:00:00"}, "end"),
        ({"time_zone": None}, "start"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "W. Europe Standard Time"}, "time_zone"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2027-03-28T02:30:00"}, "start"),  # skipped by the change to summer time
        ({"subject": ""}, "subject"),
        ({"subject": None}, "subject"),
        ({"staff_ids": []}, "staff_ids"),
        ({"staff_ids": ["s1", "s1"]}, "staff_ids"),
        ({"staff_ids": ["bad id"]}, "staff_ids[0]"),
        ({"show_as": "sleeping"}, "show_as"),
        ({"customers": [{"email": "x@y.org"}]}, "customers[0].name"),
        ({"customers": [{"name": "X", "email": "not-mail"}]}, "customers[0].email"),
        ({"colour": "red"}, "colour"),
        ({"body": "x" * 64_001}, "body"),
        ({"recurrence": {"rrule": "FREQ=SOMETIMES"}}, "recurrence.rrule"),
        ({"recurrence": {"rrule": "FREQ=HOURLY"}}, "recurrence.rrule"),
        (
            {"recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=MO", "exdates": ["2027-03-02"]}},
            "recurrence.exdates[0]",
        ),
        (
            {
                "recurrence": {
                    "rrule": "FREQ=WEEKLY;BYDAY=MO",
                    "overrides": [{"recurrence_id": "2027-03-08", "start": "2027-03-08T11:00:00"}],
                }
            },
            "recurrence.overrides[0].end",
        ),
    ],
)
def test_bad_input_names_the_field(changes: dict[str, Any], field: str) -> None:
    raw = body()
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    assert refused(raw).field == field


def test_an_rrule_outlook_cannot_hold_says_which_part() -> None:
    error = refused(body(recurrence={"rrule": "FREQ=MINUTELY;INTERVAL=15"}))
    assert error.status == 422 and "FREQ" in error.reason


def test_a_recurrence_with_exdates_and_overrides_parses() -> None:
    appointment = parse_appointment(
        "a-1",
        body(
            recurrence={
                "rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=5",
                "exdates": ["2027-03-08T09:00:00"],
                "overrides": [
                    {
                        "recurrence_id": "2027-03-15",
                        "start": "2027-03-15T11:00:00",
                        "end": "2027-03-15T12:00:00",
                        "subject": "Moved",
                    }
                ],
            }
        ),
    )
    assert appointment.recurrence is not None
    assert appointment.recurrence.exdates == (date(2027, 3, 8),)
    assert [o.subject for o in appointment.recurrence.overrides] == ["Moved"]


def test_appointment_ids_are_key_safe() -> None:
    assert parse_appointment_id("booking-42.1") == "booking-42.1"
    with pytest.raises(InvalidInput):
        parse_appointment_id("a/b")


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"staff_ids": None}, "staff_ids", "must be a non-empty list of staff ids"),
        ({"staff_ids": "s1"}, "staff_ids", "must be a non-empty list of staff ids"),
        ({"staff_ids": [f"s{n}" for n in range(21)]}, "staff_ids", "must have at most 20 staff members"),
        ({"staff_ids": ["s1", "s1"]}, "staff_ids", "lists a staff member twice"),
        ({"staff_ids": ["s1", 7]}, "staff_ids[1]", "is not a valid staff id"),
        ({"subject": "   "}, "subject", "must not be empty"),
        ({"subject": 7}, "subject", "must be a string"),
        ({"subject": "x" * 256}, "subject", "must be at most 255 characters"),
        ({"start": 9}, "start", "must be an ISO 8601 string"),
        ({"time_zone": 1}, "time_zone", "must be an IANA time zone name such as Europe/Amsterdam"),
        ({"all_day": "yes"}, "all_day", "must be true or false"),
        ({"show_as": "sleeping"}, "show_as", "must be one of: free, tentative, busy, oof, workingElsewhere"),
        ({"customers": {}}, "customers", "must be a list"),
        ({"customers": [{"name": "C"}] * 101}, "customers", "must have at most 100 entries"),
        ({"customers": ["C"]}, "customers[0]", "must be an object with name and email"),
        ({"customers": [{"name": "C", "phone": "1"}]}, "customers[0].phone", "is not a field of a customer"),
        ({"customers": [{"name": "C", "email": "c"}]}, "customers[0].email", "is not an email address"),
        ({"categories": "Host"}, "categories", "must be a list of category names"),
        ({"categories": [" "]}, "categories[0]", "must be a non-empty name of at most 255 characters"),
        ({"recurrence": "weekly"}, "recurrence", "must be an object with rrule, exdates and overrides"),
        (
            {"recurrence": {"exdates": []}},
            "recurrence.rrule",
            "is required (an RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=MO)",
        ),
        ({"recurrence": {"rrule": "FREQ=DAILY", "x": 1}}, "recurrence.x", "is not a field of a recurrence"),
        (
            {"recurrence": {"rrule": "FREQ=DAILY", "exdates": ["2027-03-02"] * 201}},
            "recurrence.exdates",
            "must have at most 200 dates",
        ),
        (
            {"recurrence": {"rrule": "FREQ=DAILY", "overrides": [{"start": "x", "end": "y"}]}},
            "recurrence.overrides[0].recurrence_id",
            "must be an ISO 8601 date or date-time of an occurrence",
        ),
        (
            {"recurrence": {"rrule": "FREQ=DAILY", "overrides": [7]}},
            "recurrence.overrides[0]",
            "must be an object",
        ),
        ({"colour": None}, "colour", "is not a field of an appointment"),
    ],
)
def test_a_rejection_keeps_the_parsers_wording(changes: dict[str, Any], field: str, reason: str) -> None:
    error = refused({**body(), **changes})  # a null member is an absent one
    assert (error.field, error.reason) == (field, reason)


def test_texts_are_kept_as_sent() -> None:
    appointment = parse_appointment(
        "a-1", body(subject="  Intake  ", customers=[{"name": " Chris ", "email": ""}], location=" R1 ")
    )
    assert (appointment.subject, appointment.location) == ("  Intake  ", " R1 ")
    assert [(c.name, c.email) for c in appointment.customers] == [(" Chris ", None)]
