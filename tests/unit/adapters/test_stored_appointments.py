"""The stored form of an appointment: every row the connector wrote reads back, and no API rule applies."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.adapters.stored_appointments import from_stored, to_stored
from shared.adapters.tables.appointments import record_from_entity, record_to_entity
from shared.domain.appointments import (
    Appointment,
    AppointmentRecord,
    CopyRole,
    CopyState,
    Customer,
    Override,
    Recurrence,
    RestoredOccurrence,
    StaffCopy,
)
from shared.service.appointment_commands import appointment_document, parse_appointment
from shared.service.limits import MAX_SUBJECT

pytestmark = pytest.mark.unit

AMS = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def weekly() -> Appointment:
    return parse_appointment(
        "a-1",
        {
            "subject": "Weekly",
            "start": "2026-12-07T09:00:00",
            "end": "2026-12-07T09:30:00",
            "time_zone": "Europe/Amsterdam",
            "staff_ids": ["s1", "s2"],
            "customers": [{"name": "Chris", "email": "chris@example.org"}, {"name": "No Mail"}],
            "recurrence": {
                "rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=10",
                "exdates": ["2026-12-14"],
                "overrides": [
                    {
                        "recurrence_id": "2026-12-21",
                        "start": "2026-12-21T10:00:00",
                        "end": "2026-12-21T10:30:00",
                    }
                ],
            },
            "categories": ["Booking"],
            "video": True,
        },
    )


def all_day() -> Appointment:
    body = {
        "subject": "Off",
        "start": "2027-03-01",
        "end": "2027-03-02",
        "all_day": True,
        "staff_ids": ["s1"],
    }
    return parse_appointment("a-2", body)


def with_offset() -> Appointment:  # no zone: kept in UTC
    body = {"subject": "Call", "start": "2027-03-01T10:00:00+02:00", "end": "2027-03-01T11:00:00+02:00"}
    return parse_appointment("a-3", {**body, "staff_ids": ["s1"], "body": "ünïcode", "body_type": "html"})


@pytest.mark.parametrize(
    "appointment", [weekly(), all_day(), with_offset()], ids=["series", "all-day", "utc"]
)
def test_rows_written_in_the_apis_shape_read_back_equal(appointment: Appointment) -> None:
    """Rows written before the stored form had its own codec held `appointment_document`: they still load,
    and what is written now is the same JSON (a worker still on the old code reads it too)."""
    written_before = json.loads(json.dumps(appointment_document(appointment)))
    assert from_stored(appointment.appointment_id, written_before) == appointment
    assert json.loads(json.dumps(to_stored(appointment))) == written_before


def test_a_stored_appointment_the_api_would_now_refuse_still_loads() -> None:
    """A row keeps what was accepted under the rules of its day: a subject longer than today's limit, a
    blank category and an exdate that is no occurrence are read back as they were."""
    start = datetime(2026, 12, 7, 9, tzinfo=AMS)
    appointment = Appointment(
        appointment_id="a-1",
        subject="S" * (MAX_SUBJECT + 100),
        start=start,
        end=start.replace(hour=10),
        time_zone="Europe/Amsterdam",
        all_day=False,
        staff_ids=("s1",),
        customers=(Customer("Chris"),),
        recurrence=Recurrence(
            "FREQ=WEEKLY;BYDAY=MO",
            exdates=(date(2026, 12, 15),),
            overrides=(Override(date(2026, 12, 21), start, start.replace(hour=11), body="moved"),),
        ),
        categories=(" ",),
    )
    record = AppointmentRecord("contoso.example", "a-1", 3, appointment, {}, T0)
    entity = {**record_to_entity(record), "Timestamp": T0}
    document = json.loads(entity["Document0"])
    with pytest.raises(Exception, match="subject"):
        parse_appointment("a-1", document)  # the API's parser refuses it today

    loaded = record_from_entity(entity)

    assert loaded.appointment == appointment
    assert loaded.revision == 3


def test_a_copys_overridden_days_and_restored_occurrences_survive_the_row() -> None:
    copy = StaffCopy(
        "s1",
        CopyRole.COPY,
        CopyState.SYNCED,
        event_id="evt-1",
        exceptions=("occ-1",),
        exception_keys=("ck-1",),
        override_days=(date(2026, 12, 21), date(2026, 12, 28)),
        restored=(RestoredOccurrence(date(2026, 12, 14), "evt-2"),),
    )
    record = AppointmentRecord("contoso.example", "a-1", 2, None, {"s1": copy}, T0)
    loaded = record_from_entity({**record_to_entity(record), "Timestamp": T0})
    assert loaded.copies == {"s1": copy}
