"""Host writes accepted (202) whose job went missing (the queue message lost with a storage restart, the
enqueue failing after the row was stored) reach Outlook through the renewal timer's tenant job, which
queues the jobs of rows left unfinished for `STALLED_AFTER` again; a row being worked on is left alone,
and a job queued twice writes once."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from shared.domain.appointments import Appointment, AppointmentRecord
from shared.domain.mail import MailState
from shared.domain.tasks import TaskState
from shared.domain.tenants import TenantState
from shared.domain.users import StaffSwitches
from shared.service import jobs
from shared.service.appointment_api import delete_appointment, get_appointment, put_appointment
from shared.service.errors import NotFound
from shared.service.job_handlers import run_job
from shared.service.mail_api import get_mail, put_mail
from shared.service.mail_bodies import parse_mail
from shared.service.stalled_writes import STALLED_AFTER
from shared.service.task_api import get_task, put_task
from shared.service.task_bodies import parse_task
from tests.fakes.services import FakeWorld, add_tenant, fake_world

pytestmark = pytest.mark.unit

TID = "contoso.example"
AMS = ZoneInfo("Europe/Amsterdam")
LIST = "Tasks from the host"


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, matched=2)
    user = await w.users.get(TID, "s1")
    assert user is not None
    await w.users.save(replace(user, staff=replace(user.staff, switches=StaffSwitches(mail=True))))
    return w


def intake() -> Appointment:
    return Appointment(
        appointment_id="a-1",
        subject="Intake",
        start=datetime(2026, 12, 1, 10, tzinfo=AMS),
        end=datetime(2026, 12, 1, 11, tzinfo=AMS),
        time_zone="Europe/Amsterdam",
        all_day=False,
        staff_ids=("s1", "s2"),
    )


async def run_all(world: FakeWorld) -> None:
    for _ in range(50):
        batch = [j for j in world.jobs.take() if j.queue != jobs.DELIVERY_QUEUE]
        if not batch:
            return
        for job in batch:
            world.clock.advance(seconds=job.delay_seconds)
            await run_job(world.services, job)
    raise AssertionError("the queues never went quiet")


def lose_queued(world: FakeWorld) -> None:
    """The queue messages gone (Azurite restarted, or the enqueue after the row failed)."""
    world.jobs.take()


async def renewal_timer(world: FakeWorld) -> None:
    await run_job(world.services, jobs.renew_tenant(TID))
    await run_all(world)


def events_in(world: FakeWorld, user: str) -> list[str]:
    return sorted(e.subject for e in world.mailboxes.mailbox(user).events.values())


async def test_a_deletion_whose_job_was_lost_removes_every_copy_at_the_renewal_run(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake())
    await run_all(world)
    assert events_in(world, "g1") == events_in(world, "g2") == ["Intake"]

    await delete_appointment(world.services, TID, "a-1")
    lose_queued(world)
    await renewal_timer(world)  # just accepted: its job may be running still; left alone
    assert events_in(world, "g1") == ["Intake"]

    world.clock.advance(seconds=STALLED_AFTER.total_seconds() + 1)
    await renewal_timer(world)

    assert events_in(world, "g1") == events_in(world, "g2") == []
    with pytest.raises(NotFound):
        await get_appointment(world.services, TID, "a-1")


async def test_an_appointment_whose_write_was_lost_is_written_once(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake())
    lose_queued(world)
    world.clock.advance(seconds=STALLED_AFTER.total_seconds() + 1)

    await renewal_timer(world)
    await renewal_timer(world)  # settled: nothing queued again

    assert events_in(world, "g1") == events_in(world, "g2") == ["Intake"]
    record = await get_appointment(world.services, TID, "a-1")
    assert record.reported_revision == record.revision == 1


async def test_a_task_whose_write_was_lost_reaches_to_do(world: FakeWorld) -> None:
    await put_task(world.services, TID, parse_task("t1", {"staff_id": "s1", "title": "Call back"}))
    lose_queued(world)
    world.clock.advance(seconds=STALLED_AFTER.total_seconds() + 1)

    await renewal_timer(world)

    assert [t.draft.title for t in world.todo.tasks_in("g1", LIST)] == ["Call back"]
    assert (await get_task(world.services, TID, "t1")).state is TaskState.SYNCED


async def test_mail_accepted_whose_send_job_was_lost_is_sent_once(world: FakeWorld) -> None:
    body = {
        "from_staff_id": "s1",
        "to": [{"name": "Customer", "address": "customer@fabrikam.example"}],
        "subject": "Your quote",
        "body": {"content_type": "text", "content": "Attached."},
    }
    record, accepted = await put_mail(world.services, TID, parse_mail("m-1", body))
    assert accepted and record.state is MailState.QUEUED
    lose_queued(world)
    world.clock.advance(seconds=STALLED_AFTER.total_seconds() + 1)

    await renewal_timer(world)
    await renewal_timer(world)

    assert (await get_mail(world.services, TID, "m-1")).state is MailState.SENT
    assert world.outlook_mail.copies("m-1") == 1


class StorageRestarting(ConnectionError):
    """Table storage gone for a moment (Azurite restarting)."""


def storage_fails_once_after_a_create(world: FakeWorld) -> None:
    """The appointment row cannot be saved once Graph has made an event: the write job dies between
    Graph's answer and storing its copies."""
    save = world.appointments.save

    async def failing(record: AppointmentRecord) -> AppointmentRecord:
        if any(c.event_id for c in record.copies.values()) and not failed:
            failed.append(record)
            raise StorageRestarting("the table service is restarting")
        return await save(record)

    failed: list[AppointmentRecord] = []
    world.appointments.save = failing  # type: ignore[method-assign]


async def test_events_made_by_a_job_that_died_before_storing_them_go_with_the_deletion(
    world: FakeWorld,
) -> None:
    await put_appointment(world.services, TID, intake())
    storage_fails_once_after_a_create(world)
    [job] = [j for j in world.jobs.take() if j.queue == jobs.WRITE_QUEUE]
    with pytest.raises(StorageRestarting):
        await run_job(world.services, job)  # its message lost with the restart: never run again
    assert events_in(world, "g1") == events_in(world, "g2") == ["Intake"]

    await delete_appointment(world.services, TID, "a-1")
    await run_all(world)

    assert events_in(world, "g1") == events_in(world, "g2") == []
    with pytest.raises(NotFound):
        await get_appointment(world.services, TID, "a-1")


async def test_a_staff_member_dropped_after_a_job_died_keeps_no_event(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, intake())
    storage_fails_once_after_a_create(world)
    [job] = [j for j in world.jobs.take() if j.queue == jobs.WRITE_QUEUE]
    with pytest.raises(StorageRestarting):
        await run_job(world.services, job)

    await put_appointment(world.services, TID, replace(intake(), staff_ids=("s2",), subject="Intake 2"))
    await run_all(world)

    assert events_in(world, "g1") == []
    assert events_in(world, "g2") == ["Intake 2"]  # the event made the first time, updated: not a second
