"""A handler needs only the ports its signature names: driven with an object that holds just those (no
`Services`), a read-only use case answers as it does in the app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from shared.domain.appointments import Appointment
from shared.domain.tenants import TenantState
from shared.service.appointment_api import get_appointment, put_appointment
from shared.service.errors import NotFound
from shared.service.records import UserQuery
from shared.service.users import list_users
from tests.fakes.appointments import FakeAppointments
from tests.fakes.services import add_tenant, fake_world
from tests.fakes.storage import FakeTenants, FakeUsers

pytestmark = pytest.mark.unit

TID = "contoso.example"


@dataclass(frozen=True, slots=True)
class AppointmentReading:
    """What `get_appointment` declares (`AppointmentReadPorts`), and nothing else."""

    tenants: FakeTenants
    appointments: FakeAppointments


@dataclass(frozen=True, slots=True)
class StaffListing:
    """What `list_users` declares (`StaffPorts`), and nothing else."""

    tenants: FakeTenants
    users: FakeUsers


async def test_the_appointment_get_runs_on_its_two_ports_alone() -> None:
    world = fake_world()
    await add_tenant(world, TID, TenantState.ACTIVE, matched=1)
    appointment = Appointment(
        appointment_id="a-1",
        subject="Intake",
        start=datetime(2026, 12, 1, 9, tzinfo=UTC),
        end=datetime(2026, 12, 1, 10, tzinfo=UTC),
        time_zone="UTC",
        all_day=False,
        staff_ids=("s1",),
    )
    await put_appointment(world.services, TID, appointment)
    reading = AppointmentReading(world.tenants, world.appointments)

    record = await get_appointment(reading, TID, "a-1")

    assert (record.appointment, record.revision) == (appointment, 1)
    with pytest.raises(NotFound) as missing:
        await get_appointment(reading, TID, "a-2")
    assert missing.value.field == "appointment_id"


async def test_the_user_listing_runs_on_its_two_ports_alone() -> None:
    world = fake_world()
    await add_tenant(world, TID, TenantState.ACTIVE, matched=2)

    page = await list_users(StaffListing(world.tenants, world.users), TID, UserQuery(page_size=1))

    assert ([u.staff_id for u in page.users], page.total) == (["s1"], 2)
    with pytest.raises(NotFound) as missing:
        await list_users(StaffListing(world.tenants, world.users), "fabrikam.example", UserQuery())
    assert missing.value.field == "tenant_id"
