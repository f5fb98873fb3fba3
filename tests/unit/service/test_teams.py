"""Video appointments on fakes: one Teams meeting per appointment whatever the method, its join details in
every copy, moved and ended with the appointment; a staff member Teams refuses keeps their copy with the
error; each staff member's Teams status found with their match."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.domain.appointments import Appointment, AppointmentRecord, CopyState, body_words
from shared.domain.teams import TeamsStatus
from shared.domain.tenants import TeamsMethod, TenantState
from shared.domain.users import DirectoryUser, StaffMember
from shared.service import jobs
from shared.service.appointment_api import delete_appointment, put_appointment
from shared.service.appointment_commands import parse_appointment
from shared.service.appointment_writes import run_write_job
from shared.service.errors import Conflict, InvalidInput
from shared.service.tenant_jobs import discover
from shared.service.tenant_settings import update_settings
from shared.service.users import put_staff
from tests.fakes.directory import FakeOrganisation
from tests.fakes.services import FakeWorld, add_tenant, fake_world

pytestmark = pytest.mark.unit

TID = "contoso.example"
AMS = ZoneInfo("Europe/Amsterdam")
STAFF = ("s1", "s2", "s3")


async def world_with(method: TeamsMethod, organiser: str | None = None) -> FakeWorld:
    w = fake_world()
    tenant = await add_tenant(w, TID, TenantState.ACTIVE, matched=3)
    settings = replace(tenant.settings, teams_method=method, teams_organizer=organiser)
    await w.tenants.save(replace(tenant, settings=settings))
    users = {
        f"g{n}": DirectoryUser(f"g{n}", f"user{n}@contoso.example", f"user{n}@contoso.example", (), True)
        for n in range(1, 4)
    }
    users["g-org"] = DirectoryUser("g-org", "teams@contoso.example", "teams@contoso.example", (), True)
    w.directory.add(FakeOrganisation("dir-1", {TID}, users, consented=True))
    return w


def video(*staff: str, **changes: Any) -> Appointment:
    base = Appointment(
        appointment_id="v-1",
        subject="Consult",
        start=datetime(2026, 12, 1, 10, tzinfo=AMS),
        end=datetime(2026, 12, 1, 11, tzinfo=AMS),
        time_zone="Europe/Amsterdam",
        all_day=False,
        staff_ids=staff,
        video=True,
    )
    return replace(base, **changes)


async def run_writes(world: FakeWorld) -> None:
    for _ in range(20):
        batch = [j for j in world.jobs.take() if j.queue == jobs.WRITE_QUEUE]
        if not batch:
            return
        for job in batch:
            await run_write_job(world.services, job)


async def record_of(world: FakeWorld) -> AppointmentRecord:
    record = await world.appointments.get(TID, "v-1")
    assert record is not None
    return record


def event_of(world: FakeWorld, user: str) -> Any:
    (event,) = world.mailboxes.mailbox(user).events.values()
    return event


def join_in_bodies(world: FakeWorld, join_url: str, users: tuple[str, ...]) -> bool:
    return all(join_url in body_words(event_of(world, u).body, "html") for u in users)


def outcomes(world: FakeWorld) -> list[dict[str, Any]]:
    return [c.data for c in world.feed.entries.get(TID, []) if c.type.startswith("appointment.")]


@pytest.mark.parametrize("method", list(TeamsMethod))
async def test_one_meeting_and_one_join_url_in_every_copy(method: TeamsMethod) -> None:
    world = await world_with(method, "teams@contoso.example")
    await put_appointment(world.services, TID, video(*STAFF))
    await run_writes(world)
    record = await record_of(world)
    meeting = record.meeting
    assert meeting is not None and meeting.method is method
    assert {c.join_url for c in record.copies.values()} == {meeting.join_url}
    online = [u for u in ("g1", "g2", "g3") if event_of(world, u).join_url]
    if method is TeamsMethod.EVENT:
        assert online == ["g1"]  # the first staff member's event is the meeting; no second one
        assert event_of(world, "g1").join_url == meeting.join_url
        assert join_in_bodies(world, meeting.join_url, ("g2", "g3"))
        assert world.meetings.meetings == {}
    else:
        assert online == []  # a standalone meeting: no event is a meeting of its own
        assert len(world.meetings.meetings) == 1
        assert join_in_bodies(world, meeting.join_url, ("g1", "g2", "g3"))
        organiser = next(iter(world.meetings.meetings.values())).organizer_id
        assert organiser == ("g-org" if method is TeamsMethod.SERVICE_ACCOUNT else "g1")
    assert meeting.conference_id and meeting.toll_number
    (synced,) = outcomes(world)
    assert synced["meeting"]["join_url"] == meeting.join_url
    assert {s["join_url"] for s in synced["staff"]} == {meeting.join_url}


@pytest.mark.parametrize("method", list(TeamsMethod))
async def test_a_moved_appointment_keeps_its_meeting_and_a_deleted_one_ends_it(method: TeamsMethod) -> None:
    world = await world_with(method, "teams@contoso.example")
    await put_appointment(world.services, TID, video(*STAFF))
    await run_writes(world)
    first = (await record_of(world)).meeting
    assert first is not None
    later = video(
        *STAFF, start=datetime(2026, 12, 2, 14, tzinfo=AMS), end=datetime(2026, 12, 2, 15, tzinfo=AMS)
    )
    await put_appointment(world.services, TID, later)
    await run_writes(world)
    moved = (await record_of(world)).meeting
    assert moved is not None and moved.join_url == first.join_url
    assert {event_of(world, u).start for u in ("g1", "g2", "g3")} == {later.start}
    if method is not TeamsMethod.EVENT:
        (held,) = world.meetings.meetings.values()
        assert (held.start, held.end) == (later.start, later.end)  # PATCHed, not made anew
    await delete_appointment(world.services, TID, "v-1")
    await run_writes(world)
    assert world.meetings.meetings == {}
    assert all(not world.mailboxes.mailbox(u).events for u in ("g1", "g2", "g3"))


async def test_video_turned_off_ends_the_events_meeting_and_clears_every_copy() -> None:
    world = await world_with(TeamsMethod.EVENT)
    await put_appointment(world.services, TID, video(*STAFF))
    await run_writes(world)
    join = (await record_of(world)).meeting
    assert join is not None
    await put_appointment(world.services, TID, video(*STAFF, video=False))
    await run_writes(world)
    record = await record_of(world)
    assert record.meeting is None
    assert all(event_of(world, u).join_url is None for u in ("g1", "g2", "g3"))  # g1's event made anew
    assert not any(join.join_url in body_words(event_of(world, u).body, "html") for u in ("g1", "g2", "g3"))
    assert {c.join_url for c in record.copies.values()} == {None}


async def test_a_staff_member_without_an_access_policy_keeps_their_copy_with_the_error() -> None:
    world = await world_with(TeamsMethod.ACCESS_POLICY)
    world.meetings.revoke_all(except_for={"g2", "g3"})  # the first staff member is not covered
    await put_appointment(world.services, TID, video(*STAFF))
    await run_writes(world)
    record = await record_of(world)
    assert record.meeting is not None and record.meeting.organizer_user_id == "g2"
    assert join_in_bodies(world, record.meeting.join_url, ("g1", "g2", "g3"))  # everyone has the link
    copies = record.copies
    assert all(c.state is CopyState.SYNCED for c in copies.values())
    assert copies["s1"].error is not None and "access policy" in copies["s1"].error
    assert copies["s2"].error is None and copies["s3"].error is None
    (outcome,) = outcomes(world)
    assert [s["staff_id"] for s in outcome["staff"] if s["error"]] == ["s1"]


async def test_an_organiser_account_teams_refuses_leaves_every_copy_without_a_meeting_saying_why() -> None:
    world = await world_with(TeamsMethod.SERVICE_ACCOUNT, "teams@contoso.example")
    world.meetings.revoke_all()
    await put_appointment(world.services, TID, video("s1", "s2"))
    await run_writes(world)
    record = await record_of(world)
    assert record.meeting is None
    assert all(
        c.state is CopyState.SYNCED and "teams@contoso.example" in (c.error or "")
        for c in record.copies.values()
    )
    assert all(event_of(world, u).join_url is None for u in ("g1", "g2"))


async def test_a_meeting_keeps_its_method_when_the_tenant_changes_it() -> None:
    world = await world_with(TeamsMethod.ACCESS_POLICY)
    await put_appointment(world.services, TID, video(*STAFF))
    await run_writes(world)
    first = (await record_of(world)).meeting
    assert first is not None
    await update_settings(world.services, TID, {"teams_method": "event"})
    told = [c for c in world.feed.entries[TID] if c.type == "tenant.teams_method_changed"]
    assert [c.data for c in told] == [
        {"previous_method": "access_policy", "method": "event", "existing_meetings": "kept"}
    ]
    await update_settings(world.services, TID, {"teams_method": "event"})  # the same method: nothing to tell
    assert len([c for c in world.feed.entries[TID] if c.type == "tenant.teams_method_changed"]) == 1
    await put_appointment(world.services, TID, video(*STAFF, subject="Consult (renamed)"))
    await run_writes(world)
    kept = (await record_of(world)).meeting
    assert kept == first
    assert all(event_of(world, u).join_url is None for u in ("g1", "g2", "g3"))


async def test_service_account_without_an_organiser_refuses_a_video_appointment() -> None:
    world = await world_with(TeamsMethod.SERVICE_ACCOUNT)
    with pytest.raises(Conflict) as refused:
        await put_appointment(world.services, TID, video("s1"))
    assert refused.value.field == "video"
    await put_appointment(world.services, TID, video("s1", video=False))  # no video: nothing to organise


async def test_an_organiser_that_is_not_a_user_of_the_tenant_is_refused() -> None:
    world = await world_with(TeamsMethod.EVENT)
    with pytest.raises(InvalidInput) as refused:
        await update_settings(world.services, TID, {"teams_organizer": "nobody@contoso.example"})
    assert refused.value.field == "settings.teams_organizer"
    with pytest.raises(InvalidInput) as shaped:
        await update_settings(world.services, TID, {"teams_organizer": "not-an-address"})
    assert shaped.value.field == "settings.teams_organizer"
    tenant = await update_settings(
        world.services, TID, {"teams_method": "service_account", "teams_organizer": "Teams@contoso.example"}
    )
    assert tenant.settings.teams_organizer == "Teams@contoso.example"
    assert any(getattr(j, "kind", None) == jobs.TenantWork.REMATCH for j in world.jobs.take())


def test_video_takes_true_or_the_teams_provider_and_names_an_unknown_one() -> None:
    body = {
        "subject": "x",
        "start": "2026-12-01T10:00:00Z",
        "end": "2026-12-01T11:00:00Z",
        "staff_ids": ["s1"],
    }
    assert parse_appointment("a", {**body, "video": {"provider": "teams"}}).video is True
    assert parse_appointment("a", {**body, "video": True}).video is True
    with pytest.raises(InvalidInput) as unknown:
        parse_appointment("a", {**body, "video": {"provider": "zoom"}})
    assert unknown.value.field == "video.provider"
    with pytest.raises(InvalidInput) as wrong:
        parse_appointment("a", {**body, "video": "yes"})
    assert wrong.value.field == "video"


async def test_teams_status_is_found_with_the_match_and_refreshed_by_a_rematch() -> None:
    world = await world_with(TeamsMethod.ACCESS_POLICY)
    world.meetings.revoke_all(except_for={"g1"})
    saved = await put_staff(world.services, TID, StaffMember("s2", "user2@contoso.example", None, "User 2"))
    assert saved.teams is TeamsStatus.FORBIDDEN and "access policy" in (saved.teams_reason or "")
    created = world.meetings.meetings.copy()
    world.meetings.global_policy = True  # the admin granted the policy tenant-wide
    await discover(world.services, jobs.rematch(TID))
    users = {u.staff_id: u for u in await world.users.list_all(TID)}
    assert {s: u.teams for s, u in users.items()} == dict.fromkeys(STAFF, TeamsStatus.MATCHED)
    assert world.meetings.meetings == created  # finding the status made no meeting


async def test_service_account_status_is_the_organisers_for_everyone() -> None:
    world = await world_with(TeamsMethod.SERVICE_ACCOUNT, "nobody@contoso.example")
    await discover(world.services, jobs.rematch(TID))
    users = await world.users.list_all(TID)
    assert {u.teams for u in users} == {TeamsStatus.FORBIDDEN}
    assert all("nobody@contoso.example" in (u.teams_reason or "") for u in users)
    world.meetings.revoke_all()
    tenant = await world.tenants.get(TID)
    assert tenant is not None
    await world.tenants.save(
        replace(tenant, settings=replace(tenant.settings, teams_organizer="teams@contoso.example"))
    )
    world.meetings.allowed = {"g-org"}
    await discover(world.services, jobs.rematch(TID))
    assert {u.teams for u in await world.users.list_all(TID)} == {TeamsStatus.MATCHED}


async def test_event_method_status_follows_the_mailbox() -> None:
    world = await world_with(TeamsMethod.EVENT)
    world.meetings.revoke_all()  # no policy at all: the event method does not need one
    await discover(world.services, jobs.rematch(TID))
    assert {u.teams for u in await world.users.list_all(TID)} == {TeamsStatus.MATCHED}
    assert world.meetings.requests == 0
