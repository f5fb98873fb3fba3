"""Per-user switches on fakes: each direction stopped at once while its switch is off, its state kept, and
caught up without duplicates once it is on again (host to Outlook, Outlook to host, video)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.domain.appointments import Appointment, AppointmentRecord, CopyState, body_words
from shared.domain.tenants import TeamsMethod, TenantState
from shared.domain.users import DirectoryUser
from shared.service import jobs
from shared.service.appointment_api import put_appointment
from shared.service.commands import parse_staff_put, parse_switches_update
from shared.service.errors import InvalidInput, NotFound
from shared.service.records import UserQuery
from shared.service.user_queries import parse_switch_filter
from shared.service.users import list_users, set_switches
from tests.fakes.directory import FakeOrganisation
from tests.fakes.events import event
from tests.fakes.services import FakeWorld, add_tenant, fake_world, run_queued

pytestmark = pytest.mark.unit

TID = "contoso.example"
AMS = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, matched=3)
    return w


async def run_all(world: FakeWorld) -> None:
    await run_queued(world)


def visit(*staff: str, subject: str = "Visit", appointment_id: str = "a-1", **changes: Any) -> Appointment:
    base = Appointment(
        appointment_id=appointment_id,
        subject=subject,
        start=datetime(2026, 12, 1, 10, tzinfo=AMS),
        end=datetime(2026, 12, 1, 11, tzinfo=AMS),
        time_zone="Europe/Amsterdam",
        all_day=False,
        staff_ids=staff,
    )
    return replace(base, **changes)


def subjects(world: FakeWorld, user: str) -> list[str]:
    return sorted(e.subject for e in world.mailboxes.mailbox(user).events.values())


def feed(world: FakeWorld, staff_id: str | None = None) -> list[str]:
    return [c.type for c in world.feed.entries.get(TID, []) if staff_id is None or c.staff_id == staff_id]


async def record_of(world: FakeWorld, appointment_id: str = "a-1") -> AppointmentRecord:
    record = await world.appointments.get(TID, appointment_id)
    assert record is not None
    return record


async def switch(world: FakeWorld, staff_id: str, **switches: bool) -> None:
    await set_switches(world.services, TID, [staff_id], switches)
    await run_all(world)


# --- the bodies and the listing -------------------------------------------------------------------------


def test_a_new_staff_member_has_the_calendar_video_and_task_switches_on_and_mail_off() -> None:
    staff, given = parse_staff_put("s1", {"email": "a@contoso.example"})
    assert staff.switches.as_dict() == {
        "calendar_to_outlook": True,
        "calendar_from_outlook": True,
        "video": True,
        "mail": False,
        "tasks_to_outlook": True,
        "tasks_from_outlook": True,
    }
    assert given == {}
    _, given = parse_staff_put("s1", {"email": "a@contoso.example", "switches": {"video": False, "tasks": 1}})
    assert given == {"video": False}  # a later capability's switch is not refused, nor kept


@pytest.mark.parametrize("name", ["calendar_to_outlook", "calendar_from_outlook", "video", "mail"])
@pytest.mark.parametrize("value", ["yes", 1, [], {}])
def test_a_switch_that_is_not_a_boolean_is_refused_by_name(name: str, value: object) -> None:
    with pytest.raises(InvalidInput) as put:
        parse_staff_put("s1", {"email": "a@contoso.example", "switches": {name: value}})
    assert put.value.field == f"switches.{name}"
    with pytest.raises(InvalidInput) as mass:
        parse_switches_update({"staff_ids": ["s1"], "switches": {name: value}})
    assert mass.value.field == f"switches.{name}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"switches": {"video": False}}, "staff_ids"),
        ({"staff_ids": [], "switches": {"video": False}}, "staff_ids"),
        ({"staff_ids": ["s 1"], "switches": {"video": False}}, "staff_ids[0]"),
        ({"staff_ids": ["s1"]}, "switches"),
        ({"staff_ids": ["s1"], "switches": {}}, "switches"),
        ({"staff_ids": ["s1"], "switches": {"video": True}, "extra": 1}, "extra"),
    ],
)
def test_a_bad_mass_update_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_switches_update(body)
    assert refused.value.field == field


async def test_the_mass_update_sets_only_the_named_switches_and_refuses_unknown_staff(
    world: FakeWorld,
) -> None:
    changed = await set_switches(world.services, TID, ["s1", "s2"], {"calendar_to_outlook": False})
    assert [u.staff_id for u in changed] == ["s1", "s2"]
    assert all(not u.staff.switches.calendar_to_outlook and u.staff.switches.video for u in changed)
    with pytest.raises(NotFound) as unknown:
        await set_switches(world.services, TID, ["s3", "nobody"], {"video": False})
    assert unknown.value.field == "staff_ids[1]"
    s3 = await world.users.get(TID, "s3")
    assert s3 is not None and s3.staff.switches.video  # nothing changed
    off = await list_users(
        world.services, TID, UserQuery(switches=parse_switch_filter("calendar_to_outlook:off"))
    )
    assert [u.staff_id for u in off.users] == ["s1", "s2"]
    both = parse_switch_filter("calendar_to_outlook:on,video:on")
    assert [u.staff_id for u in (await list_users(world.services, TID, UserQuery(switches=both))).users] == [
        "s3"
    ]


@pytest.mark.parametrize("value", ["video", "video:maybe", "tasks:on", "video:on,"])
def test_a_bad_switch_filter_is_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_switch_filter(value)
    assert refused.value.field == "switch"


# --- calendar_to_outlook -------------------------------------------------------------------------------


async def test_calendar_to_outlook_off_leaves_the_copy_and_on_again_brings_it_up_without_a_second(
    world: FakeWorld,
) -> None:
    await put_appointment(world.services, TID, visit("s1", "s2"))
    await run_all(world)
    assert subjects(world, "g1") == subjects(world, "g2") == ["Visit"]

    await switch(world, "s1", calendar_to_outlook=False)
    await put_appointment(world.services, TID, visit("s1", "s2", subject="Visit (moved)"))
    await put_appointment(world.services, TID, visit("s1", appointment_id="a-2", subject="New"))
    await run_all(world)
    assert subjects(world, "g1") == ["Visit"]  # neither updated nor created while off
    assert subjects(world, "g2") == ["Visit (moved)"]
    copy = (await record_of(world)).copies["s1"]
    assert copy.state is CopyState.DISABLED and copy.event_id is not None
    assert copy.error is not None and "calendar_to_outlook" in copy.error
    synced = [c.data for c in world.feed.entries[TID] if c.type == "appointment.synced"]
    assert {s["staff_id"]: s["state"] for s in synced[-2]["staff"]} == {"s1": "disabled", "s2": "synced"}

    await switch(world, "s1", calendar_to_outlook=True)
    assert subjects(world, "g1") == ["New", "Visit (moved)"]  # the same event updated, one made
    assert (await record_of(world)).copies["s1"].state is CopyState.SYNCED
    assert (await record_of(world, "a-2")).copies["s1"].state is CopyState.SYNCED

    await switch(world, "s1", calendar_to_outlook=True)  # a second catch-up changes nothing
    assert subjects(world, "g1") == ["New", "Visit (moved)"]


async def test_an_appointment_deleted_while_off_is_removed_once_the_switch_is_on(world: FakeWorld) -> None:
    await put_appointment(world.services, TID, visit("s1", "s2"))
    await run_all(world)
    await switch(world, "s1", calendar_to_outlook=False)
    await put_appointment(world.services, TID, visit("s2"))  # s1 taken off the appointment
    await run_all(world)
    assert subjects(world, "g1") == ["Visit"]
    await switch(world, "s1", calendar_to_outlook=True)
    assert subjects(world, "g1") == []
    assert set((await record_of(world)).copies) == {"s2"}


# --- calendar_from_outlook -----------------------------------------------------------------------------


async def test_calendar_from_outlook_off_announces_nothing_but_keeps_the_busy_index(world: FakeWorld) -> None:
    await world.jobs.enqueue([jobs.migrate_user(TID, "s1")])
    kept = world.mailboxes.put("g1", event("KEPT", subject="Kept"))
    gone = world.mailboxes.put("g1", event("GONE", subject="Gone"))
    await run_all(world)
    assert feed(world, "s1").count("event.created") == 2

    await switch(world, "s1", calendar_from_outlook=False)
    world.mailboxes.put("g1", event("NEW", subject="New"))
    world.mailboxes.put("g1", replace(kept, subject="Kept (renamed)", change_key="ck-2"))
    world.mailboxes.remove("g1", gone.id)
    world.mailboxes.put("g1", event("BRIEF", subject="Brief"))
    world.mailboxes.remove("g1", "BRIEF")
    before = len(feed(world, "s1"))
    await world.jobs.enqueue([jobs.sync_user(TID, "s1")])
    await run_all(world)
    assert feed(world, "s1")[before:] == []
    index = world.busy.indexes[(TID, "s1")]
    assert len(index.instances) == 2  # Kept and New: availability still knows

    await switch(world, "s1", calendar_from_outlook=True)
    announced = [
        (c.type, c.data["event"]["id"]) for c in world.feed.entries[TID][before:] if c.staff_id == "s1"
    ]
    assert sorted(announced) == [
        ("event.created", "NEW"),
        ("event.deleted", "GONE"),
        ("event.updated", "KEPT"),
    ]
    await world.jobs.enqueue([jobs.sync_user(TID, "s1", kind="resync")])
    await run_all(world)
    assert len(feed(world, "s1")) == before + 3  # announced once


# --- video ----------------------------------------------------------------------------------------------


async def video_world(method: TeamsMethod) -> FakeWorld:
    w = fake_world()
    tenant = await add_tenant(w, TID, TenantState.ACTIVE, matched=3)
    await w.tenants.save(replace(tenant, settings=replace(tenant.settings, teams_method=method)))
    users = {
        f"g{n}": DirectoryUser(f"g{n}", f"user{n}@contoso.example", f"user{n}@contoso.example", (), True)
        for n in range(1, 4)
    }
    w.directory.add(FakeOrganisation("dir-1", {TID}, users, consented=True))
    return w


def join_urls(world: FakeWorld, user: str) -> list[str | None]:
    return [e.join_url for e in world.mailboxes.mailbox(user).events.values()]


def body_of(world: FakeWorld, user: str) -> str:
    (written,) = world.mailboxes.mailbox(user).events.values()
    return body_words(written.body, "html")


@pytest.mark.parametrize("method", [TeamsMethod.EVENT, TeamsMethod.ACCESS_POLICY])
async def test_video_off_carries_no_meeting_nor_organises_and_on_again_joins(method: TeamsMethod) -> None:
    world = await video_world(method)
    await set_switches(world.services, TID, ["s1"], {"video": False})
    await put_appointment(world.services, TID, visit("s1", "s2", "s3", video=True))
    await run_all(world)
    record = await record_of(world)
    meeting = record.meeting
    assert meeting is not None
    assert record.copies["s1"].join_url is None and meeting.join_url not in body_of(world, "g1")
    assert join_urls(world, "g1") == [None]  # no meeting of its own
    assert {record.copies[s].join_url for s in ("s2", "s3")} == {meeting.join_url}
    if method is TeamsMethod.EVENT:
        assert meeting.holder_staff_id == "s2" and join_urls(world, "g2") == [meeting.join_url]
    else:
        assert meeting.organizer_user_id == "g2"

    await switch(world, "s1", video=True)
    record = await record_of(world)
    assert record.copies["s1"].join_url == meeting.join_url
    assert meeting.join_url in body_of(world, "g1")
    assert record.meeting == meeting  # the same meeting: nobody's link changed
    assert [len(world.mailboxes.mailbox(g).events) for g in ("g1", "g2", "g3")] == [1, 1, 1]

    await switch(world, "s1", video=False)
    record = await record_of(world)
    assert record.copies["s1"].join_url is None and meeting.join_url not in body_of(world, "g1")
    assert record.meeting == meeting
