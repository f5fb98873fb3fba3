"""The appointment repository: each behaviour written once, run against the in-memory fake and the Table
Storage adapter on Azurite (etag-guarded saves, deletes, long documents, tenants kept apart)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.adapters.tables.appointments import TableAppointments
from shared.domain.appointments import (
    Appointment,
    AppointmentRecord,
    AppointmentState,
    CopyRole,
    CopyState,
    Customer,
    Override,
    Recurrence,
    StaffCopy,
)
from shared.service.errors import AlreadyExists, StaleWrite
from shared.service.ports.appointments import AppointmentRepository
from tests.fakes.appointments import FakeAppointments
from tests.fixtures.azurite import fresh_storage

pytestmark = pytest.mark.contract

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
AMS = ZoneInfo("Europe/Amsterdam")


@pytest.fixture(params=["fake", "azurite"])
async def repo(request: pytest.FixtureRequest) -> AsyncIterator[AppointmentRepository]:
    if request.param == "fake":
        yield FakeAppointments()
        return
    async with fresh_storage(request.getfixturevalue("azurite"), "appt") as storage:
        yield TableAppointments(storage)


def weekly(body: str = "Agenda") -> Appointment:
    return Appointment(
        appointment_id="a.1~x@y",
        subject="Weekly",
        start=datetime(2026, 12, 7, 9, tzinfo=AMS),
        end=datetime(2026, 12, 7, 9, 30, tzinfo=AMS),
        time_zone="Europe/Amsterdam",
        all_day=False,
        staff_ids=("s1", "s2"),
        body=body,
        customers=(Customer("Chris", "chris@example.org"), Customer("No Mail")),
        recurrence=Recurrence(
            "FREQ=WEEKLY;BYDAY=MO;COUNT=10",
            exdates=(datetime(2026, 12, 14).date(),),
            overrides=(
                Override(
                    datetime(2026, 12, 21).date(),
                    datetime(2026, 12, 21, 10, tzinfo=AMS),
                    datetime(2026, 12, 21, 10, 30, tzinfo=AMS),
                    subject="Moved",
                ),
            ),
        ),
        categories=("Booking",),
        video=True,
    )


def record(appointment: Appointment | None = None, tenant: str = "contoso.example") -> AppointmentRecord:
    copy = StaffCopy("s1", CopyRole.COPY, CopyState.SYNCED, "g1", "evt-1", "ck-1", "uid-1", "h", 1, 0, None)
    appointment = appointment or weekly()
    return AppointmentRecord(tenant, "a.1~x@y", 1, appointment, {"s1": copy}, T0)


async def test_a_saved_record_reads_back_equal(repo: AppointmentRepository) -> None:
    saved = await repo.save(record())
    assert saved.etag is not None
    found = await repo.get("contoso.example", "a.1~x@y")
    assert found == saved
    assert await repo.get("fabrikam.example", "a.1~x@y") is None


async def test_a_long_body_survives_the_property_limits(repo: AppointmentRepository) -> None:
    saved = await repo.save(record(weekly(body="x" * 64_000)))
    found = await repo.get("contoso.example", "a.1~x@y")
    assert found is not None and found.appointment == saved.appointment


async def test_saves_are_guarded_by_the_etag(repo: AppointmentRepository) -> None:
    saved = await repo.save(record())
    with pytest.raises(AlreadyExists):
        await repo.save(record())
    newer = await repo.save(replace(saved, revision=2))
    with pytest.raises(StaleWrite):
        await repo.save(replace(saved, revision=3))
    deleted_marker = await repo.save(replace(newer, appointment=None, revision=3))
    found = await repo.get("contoso.example", "a.1~x@y")
    assert found is not None and found.appointment is None and found.revision == 3
    with pytest.raises(StaleWrite):
        await repo.delete(newer)
    await repo.delete(deleted_marker)
    await repo.delete(deleted_marker)  # gone already is fine
    assert await repo.get("contoso.example", "a.1~x@y") is None


async def test_a_tenant_is_purged_alone(repo: AppointmentRepository) -> None:
    await repo.save(record())
    await repo.save(record(tenant="fabrikam.example"))
    await repo.delete_tenant("contoso.example")
    assert await repo.get("contoso.example", "a.1~x@y") is None
    assert await repo.get("fabrikam.example", "a.1~x@y") is not None


async def test_unsettled_lists_the_revisions_without_an_outcome(repo: AppointmentRepository) -> None:
    saved = await repo.save(record())
    assert await repo.unsettled("contoso.example") == ["a.1~x@y"]
    await repo.save(replace(saved, reported_revision=saved.revision))
    assert await repo.unsettled("contoso.example") == []
    assert await repo.unsettled("fabrikam.example") == []


async def test_unsettled_since_lists_only_rows_unchanged_since(repo: AppointmentRepository) -> None:
    await repo.save(record())  # updated at T0
    assert await repo.unsettled("contoso.example", updated_before=T0 + timedelta(seconds=1)) == ["a.1~x@y"]
    assert await repo.unsettled("contoso.example", updated_before=T0) == []


async def test_naming_lists_the_appointments_of_a_staff_member_and_those_holding_their_copy(
    repo: AppointmentRepository,
) -> None:
    await repo.save(record())  # names s1 and s2, s1's copy written
    other = replace(weekly(), appointment_id="b-2", staff_ids=("s3",))
    await repo.save(replace(record(other), appointment_id="b-2", copies={}))
    gone = replace(record(), appointment_id="c-3", appointment=None)  # deleted; s1's copy still to remove
    await repo.save(gone)
    await repo.save(replace(record(), tenant_id="fabrikam.example"))
    assert sorted(await repo.naming("contoso.example", "s1")) == ["a.1~x@y", "c-3"]
    assert await repo.naming("contoso.example", "s2") == ["a.1~x@y"]
    assert await repo.naming("contoso.example", "s3") == ["b-2"]
    assert await repo.naming("contoso.example", "s9") == []


async def test_a_meeting_is_found_by_its_ical_uid_until_forgotten(repo: AppointmentRepository) -> None:
    assert await repo.meeting("contoso.example", "040000008200E00074C5B7101A82E008/x") is None
    await repo.note_meeting("contoso.example", "040000008200E00074C5B7101A82E008/x", "a.1~x@y")
    await repo.note_meeting("contoso.example", "040000008200E00074C5B7101A82E008/x", "a.1~x@y")  # retried
    await repo.note_meeting("fabrikam.example", "040000008200E00074C5B7101A82E008/x", "other")
    assert await repo.meeting("contoso.example", "040000008200E00074C5B7101A82E008/x") == "a.1~x@y"
    assert await repo.meeting("fabrikam.example", "040000008200E00074C5B7101A82E008/x") == "other"
    assert await repo.naming("contoso.example", "s1") == []  # the index is no appointment
    assert await repo.unsettled("contoso.example") == []
    await repo.forget_meeting("contoso.example", "040000008200E00074C5B7101A82E008/x")
    await repo.forget_meeting("contoso.example", "040000008200E00074C5B7101A82E008/x")  # gone already
    assert await repo.meeting("contoso.example", "040000008200E00074C5B7101A82E008/x") is None
    await repo.delete_tenant("fabrikam.example")
    assert await repo.meeting("fabrikam.example", "040000008200E00074C5B7101A82E008/x") is None


async def test_the_outcome_told_reads_back(repo: AppointmentRepository) -> None:
    told = replace(record(), reported_revision=1, reported_state=AppointmentState.FAILED)
    saved = await repo.save(told)
    back = await repo.get(saved.tenant_id, saved.appointment_id)
    assert back is not None and back.reported_state is AppointmentState.FAILED
