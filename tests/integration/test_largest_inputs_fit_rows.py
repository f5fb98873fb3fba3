"""The largest input the host API accepts fits the Table Storage row that keeps it (a property holds 64 KiB,
an entity 1 MiB, both in UTF-16), with characters that JSON escapes at their longest (astral ones: two
\\uXXXX, twelve characters). Past the limits the parsers answer a 400 (tests/unit/functions/test_limits.py);
up to them, Azurite takes the row and gives it back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.adapters.storage import StorageClients
from shared.adapters.tables.appointments import TableAppointments
from shared.adapters.tables.tenants import TableTenants
from shared.adapters.tables.users import TableUsers
from shared.domain.appointments import AppointmentRecord, CopyRole, CopyState, StaffCopy
from shared.domain.tenants import AuthMode, Tenant, TenantState
from shared.domain.users import MatchStatus, StaffMember, UserRecord
from shared.service import limits
from shared.service import limits as appointment_limits
from shared.service.appointment_commands import appointment_document, parse_appointment
from shared.service.commands import parse_legacy_ids, parse_settings
from shared.service.errors import InvalidInput
from tests.fixtures.azurite import fresh_storage

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
TENANT = "contoso.example"
WIDE = "\U0001f4c5"  # a calendar emoji: one character, twelve in ASCII JSON


@pytest.fixture
async def storage(azurite: Any) -> AsyncIterator[StorageClients]:
    async with fresh_storage(azurite, "limits") as clients:
        yield clients


async def test_the_largest_settings_fit_the_tenant_row(storage: StorageClients) -> None:
    names = limits.MAX_CATEGORY_CHARS // limits.MAX_CATEGORIES
    settings = parse_settings(
        {
            "import_filter": {
                "mode": "categories",
                "categories": [f"{n:02}" + WIDE * (names - 2) for n in range(limits.MAX_CATEGORIES)],
            },
            "todo_list_name": WIDE * limits.MAX_TODO_LIST_NAME,
        }
    )
    tenants = TableTenants(storage)
    tenant = Tenant(TENANT, "dir-1", "Contoso", AuthMode.ADMIN_CONSENT, TenantState.ACTIVE, settings, T0, T0)

    await tenants.add(tenant)

    stored = await tenants.get(TENANT)
    assert stored is not None and stored.settings == settings


async def test_the_largest_legacy_ids_fit_the_user_row(storage: StorageClients) -> None:
    wide_ids = [WIDE * 7 + f"{n:04}" for n in range(limits.MAX_LEGACY_IDS)]  # 88 characters each as JSON
    raw = [{"appointment_id": f"a-{n:04}", "ews_id": ews, "ical_uid": ews} for n, ews in enumerate(wide_ids)]
    links = parse_legacy_ids(raw)  # 392,000 characters as JSON, near the budget
    with pytest.raises(InvalidInput) as refused:  # twice as long: past it
        parse_legacy_ids([{**link, "ews_id": link["ews_id"] * 2} for link in raw])
    assert refused.value.field == "legacy_ids"
    users = TableUsers(storage)
    staff = StaffMember("s1", "s1@contoso.example", None, "Staff One", legacy_ids=links)

    await users.save(UserRecord(TENANT, staff, MatchStatus.MATCHED, T0, graph_user_id="g1"))

    stored = await users.get(TENANT, "s1")
    assert stored is not None and stored.staff.legacy_ids == links


async def test_the_largest_appointment_fits_its_row(storage: StorageClients) -> None:
    staff_ids = [f"s{n}" for n in range(appointment_limits.MAX_STAFF)]
    body = {
        "subject": WIDE * appointment_limits.MAX_SUBJECT,
        "location": WIDE * appointment_limits.MAX_LOCATION,
        "start": "2027-03-01T09:00:00",
        "end": "2027-03-01T10:00:00",
        "time_zone": "Europe/Amsterdam",
        "staff_ids": staff_ids,
        "customers": [{"name": WIDE * 256, "email": f"c{n}@example.org"} for n in range(20)],
        "body": WIDE * 64_000,
    }
    with pytest.raises(InvalidInput) as refused:
        parse_appointment("a-1", body)
    assert refused.value.field == "body"
    # The widest body the stored-size budget leaves room for.
    rest = len(json.dumps(appointment_document(parse_appointment("a-1", {**body, "body": ""}))))
    body["body"] = WIDE * ((appointment_limits.MAX_STORED - rest) // 12)
    appointment = parse_appointment("a-1", body)
    copies = {
        staff_id: StaffCopy(
            staff_id,
            CopyRole.COPY,
            CopyState.SYNCED,
            graph_user_id=f"{n:08}-0000-0000-0000-000000000000",
            event_id="AAMkAGI2TG93AAA=" * 10,
            change_key="DwAAABYAAAA=" * 4,
            ical_uid="040000008200E00074C5B7101A82E008" * 4,
            join_url="https://teams.microsoft.com/l/meetup-join/" + "x" * 400,
            revision=1,
        )
        for n, staff_id in enumerate(staff_ids)
    }
    record = AppointmentRecord(TENANT, "a-1", 1, appointment, copies, T0)
    appointments = TableAppointments(storage)

    saved = await appointments.save(record)

    stored = await appointments.get(TENANT, "a-1")
    assert stored is not None and stored.appointment == appointment
    assert replace(stored, etag=None) == replace(saved, etag=None)
