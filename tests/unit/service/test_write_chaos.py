"""A bounded, seeded chaos run of both sides: the host PUTs and DELETEs appointments, users edit and delete
the connector's copies and make events of their own in Outlook, syncs and write jobs run in random order,
and about a third of the steps inject a fault (429/503 before a request, on reads and writes alike, or after a
write took effect, its answer lost). Then the faults stop and everything settles.

Failures: a job that raises (an unhandled error), an `event.*` change about a connector copy (an echo), an
`appointment.changed_in_outlook` about a copy nobody touched in Outlook (a false conflict), and calendars that
do not converge to exactly one event per appointment and staff member, holding the host's last version."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest

from shared.domain.appointments import Appointment, AppointmentState, Recurrence
from shared.domain.calendar import OutlookEvent
from shared.domain.tenants import TenantState
from shared.service import jobs
from shared.service.appointment_api import delete_appointment, get_appointment, put_appointment
from shared.service.appointment_writes import run_write_job
from shared.service.errors import EventChanged
from shared.service.job_handlers import run_job
from shared.service.jobs import Job
from shared.service.schedules import nightly_tenant
from tests.fakes.calendar import throttled
from tests.fakes.events import event as outlook_event
from tests.fakes.services import FakeWorld, add_tenant, fake_world
from tests.unit.service.test_appointments import TID, intake

pytestmark = pytest.mark.unit

STAFF = ("s1", "s2", "s3")
APPOINTMENTS = tuple(f"a-{n}" for n in range(5))
OPERATIONS = 300
FAULT_SHARE = 1 / 3
BODIES = ("", "Bring the forms.", "Bring the forms.\nAnd the ID card.", "<p>Notes</p>")


def mailbox_of(staff_id: str) -> str:
    return "g" + staff_id[1:]


@dataclass
class Chaos:
    world: FakeWorld
    rng: random.Random
    host: dict[str, Appointment | None] = field(default_factory=dict)
    pending: list[Job] = field(default_factory=list)
    touched: set[tuple[str, str]] = field(default_factory=set)  # (appointment, staff) changed in Outlook
    crashes: list[str] = field(default_factory=list)
    own: int = 0  # events users made in Outlook

    async def run(self, job: Job) -> None:
        try:
            if job.queue == jobs.WRITE_QUEUE:
                await run_write_job(self.world.services, job)
            elif job.queue == jobs.SYNC_QUEUE:  # a calendar or a To Do list
                await run_job(self.world.services, job)
        except Exception as error:  # every unhandled error is a finding
            self.crashes.append(f"{job}: {error!r}")

    def collect(self) -> None:
        self.pending += [j for j in self.world.jobs.take() if j.queue in (jobs.WRITE_QUEUE, jobs.SYNC_QUEUE)]

    async def step(self) -> None:
        rng = self.rng
        if rng.random() < FAULT_SHARE:
            self.fault()
        roll = rng.random()
        if roll < 0.25:
            await self.host_put()
        elif roll < 0.30:
            await self.host_delete()
        elif roll < 0.40:
            self.outlook_edit()
        elif roll < 0.43:
            self.outlook_delete()
        elif roll < 0.48:
            self.outlook_own()
        elif roll < 0.60:
            await self.world.jobs.enqueue([jobs.sync_user(TID, rng.choice(STAFF))])
        else:
            self.collect()
            if self.pending:
                await self.run(self.pending.pop(rng.randrange(len(self.pending))))
        self.collect()

    def fault(self) -> None:
        rng, box = self.rng, mailbox_of(self.rng.choice(STAFF))
        kind = rng.random()
        if kind < 0.5:  # refused before it happens (reads, delta, instances and writes alike)
            self.world.mailboxes.mailbox(box).faults.append(throttled(1))
        elif kind < 0.8:  # applied, then every attempt answered 429/503
            self.world.writer.after.setdefault(box, []).append(throttled(1))
        else:  # applied, answered 503, and the SDK's retry met the changed event (412)
            self.world.writer.after.setdefault(box, []).append(EventChanged("412 ErrorIrresolvableConflict"))

    async def host_put(self) -> None:
        rng = self.rng
        appointment_id = rng.choice(APPOINTMENTS)
        staff = tuple(sorted(rng.sample(STAFF, rng.randint(1, len(STAFF)))))
        start = intake().start + timedelta(days=rng.randint(0, 5), hours=rng.randint(0, 6))
        changes: dict[str, object] = {
            "appointment_id": appointment_id,
            "subject": f"{appointment_id} v{rng.randint(1, 4)}",
            "body": rng.choice(
                ["", "Bring the forms.", "Bring the forms.\nAnd the ID card.", "<p>Notes</p>"]
            ),
            "start": start,
            "end": start + timedelta(hours=1),
        }
        if changes["body"] == "<p>Notes</p>":
            changes["body_type"] = "html"
        if appointment_id == "a-4":  # one series (the fake keeps a series as one event)
            changes["recurrence"] = Recurrence(rng.choice(["FREQ=DAILY;COUNT=3", "FREQ=WEEKLY;COUNT=4"]))
        appointment = intake(*staff, **changes)
        await put_appointment(self.world.services, TID, appointment)
        self.host[appointment_id] = appointment

    async def host_delete(self) -> None:
        live = sorted(a for a, v in self.host.items() if v is not None)
        if live:
            appointment_id = self.rng.choice(live)
            await delete_appointment(self.world.services, TID, appointment_id)
            self.host[appointment_id] = None

    def copies(self) -> list[tuple[str, str, OutlookEvent]]:
        """(appointment, staff, event) of every connector copy in the calendars now."""
        found = []
        for staff_id in STAFF:
            box = self.world.mailboxes.mailbox(mailbox_of(staff_id))
            for event_id, event in box.events.items():
                appointment_id = box.appointment_ids.get(event_id)
                if appointment_id is not None:
                    found.append((appointment_id, staff_id, event))
        return sorted(found, key=lambda f: (f[0], f[1]))  # the same choices whatever the ids are

    def outlook_edit(self) -> None:
        copies = self.copies()
        if copies:
            appointment_id, staff_id, event = self.rng.choice(copies)
            self.touched.add((appointment_id, staff_id))
            edited = replace(event, subject=f"{event.subject} (edited in Outlook)")
            self.world.mailboxes.put(mailbox_of(staff_id), edited)

    def outlook_delete(self) -> None:
        copies = self.copies()
        if copies:
            appointment_id, staff_id, event = self.rng.choice(copies)
            self.touched.add((appointment_id, staff_id))
            self.world.mailboxes.remove(mailbox_of(staff_id), event.id)

    def outlook_own(self) -> None:
        self.own += 1
        staff_id = self.rng.choice(STAFF)
        mine = outlook_event(f"own-{staff_id}-{self.own}", subject=f"Own {self.own}")
        self.world.mailboxes.put(mailbox_of(staff_id), mine)

    async def settle(self) -> None:
        """The faults stop; what the queues hold runs, then the nightly run and every user's sync."""
        for staff_id in STAFF:
            self.world.mailboxes.mailbox(mailbox_of(staff_id)).faults.clear()
        self.world.writer.after.clear()
        for _ in range(3):
            await nightly_tenant(self.world.services, TID)  # requeues appointments whose jobs gave up
            await self.world.jobs.enqueue([jobs.sync_user(TID, s) for s in STAFF])
            for _ in range(200):
                self.collect()
                if not self.pending:
                    break
                await self.run(self.pending.pop(0))
            else:
                raise AssertionError("the queues never went quiet")


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_writes_under_faults_converge_without_echoes_false_conflicts_or_crashes(seed: int) -> None:
    world = fake_world()
    await add_tenant(world, TID, TenantState.ACTIVE, matched=len(STAFF))
    chaos = Chaos(world, random.Random(seed))
    await world.jobs.enqueue([jobs.sync_user(TID, s) for s in STAFF])  # migrated first
    chaos.collect()
    while chaos.pending:
        await chaos.run(chaos.pending.pop(0))
        chaos.collect()
    for _ in range(OPERATIONS):
        await chaos.step()
    await chaos.settle()

    assert chaos.crashes == []
    feed = world.feed.entries.get(TID, [])
    connector_ids = {
        event_id
        for staff_id in STAFF
        for event_id in world.mailboxes.mailbox(mailbox_of(staff_id)).appointment_ids
    }
    echoes = [
        c
        for c in feed
        if c.type.startswith("event.")
        and (c.data.get("appointment_id") or c.data["event"]["id"] in connector_ids)
    ]
    assert echoes == []
    false_conflicts = [
        c
        for c in feed
        if c.type == "appointment.changed_in_outlook"
        and (c.data["appointment_id"], c.staff_id) not in chaos.touched
    ]
    assert false_conflicts == []

    held: dict[tuple[str, str], list[OutlookEvent]] = {}
    for appointment_id, staff_id, event in chaos.copies():
        held.setdefault((appointment_id, staff_id), []).append(event)
    expected = {
        (appointment_id, staff_id): appointment
        for appointment_id, appointment in chaos.host.items()
        if appointment is not None
        for staff_id in appointment.staff_ids
    }
    assert set(held) == set(expected)
    for key, appointment in expected.items():
        [event] = held[key]  # exactly one event per appointment and staff member
        assert (event.subject, event.start) == (appointment.subject, appointment.start), key
    for appointment_id, appointment in chaos.host.items():
        record = await world.appointments.get(TID, appointment_id)
        if appointment is None:
            assert record is None, record
        else:
            assert (await get_appointment(world.services, TID, appointment_id)).state is (
                AppointmentState.SYNCED
            )
