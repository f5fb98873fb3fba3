"""Taking over on fakes: an appointment the host made before the connector (linked at migration or at a
later sync) is written by updating its event, never by making a second one; an event made in Outlook is
adopted by a PUT naming it, and bad adoptions are refused naming the field, changing nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.domain.appointments import CopyState
from shared.domain.calendar import EventKind
from shared.domain.tenants import RecurringEvents, TenantState
from shared.domain.users import LegacyLink
from shared.service.appointment_api import delete_appointment, get_appointment, put_appointment
from shared.service.appointment_takeover import Adoption
from shared.service.appointment_writes import run_write_job
from shared.service.errors import Conflict, InvalidInput, NotFound
from tests.fakes.calendar import throttled
from tests.fakes.events import event
from tests.fakes.services import FakeWorld, add_tenant, fake_world
from tests.unit.service.test_appointments import TID, feed_types, intake, run_all, sync

pytestmark = pytest.mark.unit


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    await add_tenant(w, TID, TenantState.ACTIVE, matched=3)
    return w


async def link(world: FakeWorld, staff_id: str, *links: LegacyLink) -> None:
    user = await world.users.get(TID, staff_id)
    assert user is not None
    await world.users.save(replace(user, staff=replace(user.staff, legacy_ids=links)))


def outlook_events(world: FakeWorld, user: str) -> dict[str, str]:
    return {e.id: e.subject for e in world.mailboxes.mailbox(user).events.values()}


async def test_an_appointment_linked_at_migration_is_updated_in_place(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("EWS-ERA", subject="Intake (EWS)", ical_uid="ews-uid"))
    await link(world, "s1", LegacyLink("a-1", ical_uid="ews-uid"))
    await sync(world, "s1")
    assert [t for t in feed_types(world) if t.startswith("event.")] == []  # linked, not announced
    await put_appointment(world.services, TID, intake("s1"))
    await run_all(world)
    assert outlook_events(world, "g1") == {"EWS-ERA": "Intake"}  # the same event, updated
    record = await get_appointment(world.services, TID, "a-1")
    held = record.copies["s1"]
    assert (held.event_id, held.state) == ("EWS-ERA", CopyState.SYNCED)
    await sync(world, "s1")
    assert [t for t in feed_types(world) if t.startswith("event.")] == []  # its echo is the connector's


async def test_events_the_old_ews_sync_writes_after_migration_are_linked_not_announced(
    world: FakeWorld,
) -> None:
    await sync(world, "s1")  # migrated, nothing of the host's yet
    box = world.mailboxes.mailbox("g1")
    world.mailboxes.put("g1", event("BY-PROPERTY"))
    box.appointment_ids["BY-PROPERTY"] = "a-prop"  # the old sync stamped the connector's property
    world.mailboxes.put("g1", event("BY-UID", ical_uid="later-uid"))
    world.mailboxes.put("g1", event("BY-EWS"))
    box.ews_ids["EWS-LATER"] = "BY-EWS"
    world.mailboxes.put("g1", event("OUTLOOK"))  # made by the user: announced
    await link(
        world, "s1", LegacyLink("a-uid", ical_uid="later-uid"), LegacyLink("a-ews", ews_id="EWS-LATER")
    )
    await sync(world, "s1")
    created = [c.data["event"]["id"] for c in world.feed.entries[TID] if c.type == "event.created"]
    assert created == ["OUTLOOK"]
    statuses = world.item_statuses.rows[(TID, "s1")]
    assert {g: s.appointment_id for g, s in statuses.items()} == {
        "BY-PROPERTY": "a-prop",
        "BY-UID": "a-uid",
        "BY-EWS": "a-ews",
        "OUTLOOK": None,
    }
    # and the host's next PUT of one of them updates it
    await put_appointment(world.services, TID, replace(intake("s1"), appointment_id="a-ews"))
    await run_all(world)
    assert outlook_events(world, "g1")["BY-EWS"] == "Intake"
    assert len(outlook_events(world, "g1")) == 4


async def test_a_quiet_sync_after_migration_asks_graph_for_no_links(world: FakeWorld) -> None:
    await sync(world, "s1")
    before = world.mailboxes.requests
    world.mailboxes.put("g1", event("A", ical_uid="known-uid"))
    await link(world, "s1", LegacyLink("a-1", ical_uid="known-uid"))
    await sync(world, "s1")
    # the delta read only (the iCalUId the host gave links it): no property query, no translation
    assert world.mailboxes.requests - before == 1
    assert [c.type for c in world.feed.entries.get(TID, []) if c.type.startswith("event.")] == []


async def test_an_event_made_in_outlook_is_adopted_and_is_the_hosts_from_then_on(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("MINE", subject="Coffee with Chris"))
    await sync(world, "s1")
    assert feed_types(world).count("event.created") == 1  # Outlook's, told as such
    await put_appointment(world.services, TID, intake("s1"), adopt=Adoption("s1", "MINE"))
    await run_all(world)
    assert outlook_events(world, "g1") == {"MINE": "Intake"}
    record = await get_appointment(world.services, TID, "a-1")
    assert (record.copies["s1"].event_id, record.copies["s1"].state) == ("MINE", CopyState.SYNCED)
    await put_appointment(world.services, TID, intake("s1", subject="Intake, moved"))
    await run_all(world)
    assert outlook_events(world, "g1") == {"MINE": "Intake, moved"}
    # an Outlook edit now reaches the host as a change of its appointment, not as an Outlook event
    mine = world.mailboxes.mailbox("g1").events["MINE"]
    world.mailboxes.put("g1", replace(mine, subject="Edited in Outlook"))
    await sync(world, "s1")
    assert [t for t in feed_types(world) if t.startswith("event.")] == ["event.created"]
    assert "appointment.changed_in_outlook" in feed_types(world)


async def test_bad_adoptions_are_refused_naming_the_field_and_change_nothing(world: FakeWorld) -> None:
    world.mailboxes.put("g2", event("BENS"))
    world.mailboxes.put("g1", event("TAKEN", ical_uid="taken-uid"))
    await link(world, "s1", LegacyLink("a-other", ical_uid="taken-uid"))
    await sync(world, "s1")
    cases = [
        (Adoption("s1", "NOWHERE"), InvalidInput, "outlook.event_id"),  # does not exist
        (Adoption("s1", "BENS"), InvalidInput, "outlook.event_id"),  # in another staff member's calendar
        (Adoption("s1", "TAKEN"), Conflict, "outlook.event_id"),  # the host's under another appointment id
        (Adoption("s3", "TAKEN"), InvalidInput, "outlook.staff_id"),  # not one of the appointment's staff
    ]
    for adoption, error, field in cases:
        with pytest.raises(error) as refused:
            await put_appointment(world.services, TID, intake("s1"), adopt=adoption)
        assert refused.value.field == field, adoption
    with pytest.raises(NotFound):
        await get_appointment(world.services, TID, "a-1")
    assert outlook_events(world, "g1")["TAKEN"] != "Intake"


async def test_two_appointments_adopting_one_event_before_its_write_do_not_both_win(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("MINE", subject="Coffee with Chris"))
    await sync(world, "s1")
    first, second = intake("s1"), intake("s1", appointment_id="a-2")
    await put_appointment(world.services, TID, first, adopt=Adoption("s1", "MINE"))
    with pytest.raises(Conflict) as refused:  # before the first one's write job has linked the event
        await put_appointment(world.services, TID, second, adopt=Adoption("s1", "MINE"))
    assert refused.value.field == "outlook.event_id"
    with pytest.raises(NotFound):
        await get_appointment(world.services, TID, "a-2")
    replayed = await put_appointment(world.services, TID, first, adopt=Adoption("s1", "MINE"))
    assert replayed.copies["s1"].event_id == "MINE"  # the same appointment may say it again
    await run_all(world)
    assert outlook_events(world, "g1") == {"MINE": "Intake"}


def adoption_claims(world: FakeWorld) -> dict[str, str]:
    """The claims held on adopted events: key -> the appointment holding it."""
    return {key: held[0] for key, held in world.leases.rows.items() if "/adopt/" in key}


async def test_an_adoption_holds_its_claim_while_pending_and_ends_it_once_written(world: FakeWorld) -> None:
    """A write that keeps waiting (Graph throttles the mailbox) leaves the adoption pending for longer than
    a day: each pass renews the claim, so another appointment still cannot adopt the event; once written,
    the event is the connector's (the checks see it) and the claim is gone."""
    world.mailboxes.put("g1", event("MINE", subject="Coffee with Chris"))
    await sync(world, "s1")
    await put_appointment(world.services, TID, intake("s1"), adopt=Adoption("s1", "MINE"))
    other = intake("s1", appointment_id="a-2")
    box = world.mailboxes.mailbox("g1")
    for _ in range(3):  # each pass throttled; the stalled-writes sweep queues the write again meanwhile
        box.faults = [throttled(1)]
        [job] = world.jobs.take()
        await run_write_job(world.services, job)
        world.clock.advance(hours=20)
    assert adoption_claims(world) == {f"{TID}/s1/adopt/MINE": "a-1"}
    with pytest.raises(Conflict) as refused:  # 60 hours after the first PUT: still a-1's
        await put_appointment(world.services, TID, other, adopt=Adoption("s1", "MINE"))
    assert refused.value.field == "outlook.event_id"

    await run_all(world)
    record = await get_appointment(world.services, TID, "a-1")
    assert (record.copies["s1"].state, record.copies["s1"].adopting) == (CopyState.SYNCED, False)
    assert adoption_claims(world) == {}  # settled: the item status links the event from now on
    with pytest.raises(Conflict) as refused:
        await put_appointment(world.services, TID, other, adopt=Adoption("s1", "MINE"))
    assert refused.value.field == "outlook.event_id"


async def test_an_adoption_removed_before_its_write_ends_its_claim(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("MINE", subject="Coffee with Chris"))
    await sync(world, "s1")
    await put_appointment(world.services, TID, intake("s1"), adopt=Adoption("s1", "MINE"))
    world.jobs.take()  # its write has not run
    await delete_appointment(world.services, TID, "a-1")
    await run_all(world)
    assert adoption_claims(world) == {}
    assert "MINE" not in outlook_events(world, "g1")  # the host's event from the PUT on: deleted with it


async def test_a_meeting_someone_else_organises_cannot_be_adopted(world: FakeWorld) -> None:
    world.mailboxes.put("g1", event("INVITED", is_organizer=False, response="accepted"))
    await sync(world, "s1")
    with pytest.raises(Conflict) as refused:
        await put_appointment(world.services, TID, intake("s1"), adopt=Adoption("s1", "INVITED"))
    assert refused.value.field == "outlook.event_id"
    assert "organis" in refused.value.reason
    with pytest.raises(NotFound):
        await get_appointment(world.services, TID, "a-1")


async def test_an_adoption_in_a_mailbox_graph_closes_is_a_conflict_naming_the_staff_member(
    world: FakeWorld,
) -> None:
    world.mailboxes.mailbox("g1").unavailable = "an access policy leaves the user out"
    with pytest.raises(Conflict) as refused:
        await put_appointment(world.services, TID, intake("s1"), adopt=Adoption("s1", "ANY"))
    assert refused.value.field == "outlook.staff_id"
    with pytest.raises(NotFound):
        await get_appointment(world.services, TID, "a-1")


async def test_a_linked_series_keeps_its_link_for_occurrences_read_after_migration(world: FakeWorld) -> None:
    # Occurrences as events of their own (with `series`, a new occurrence also reads its master: its cost)
    settings = replace(world.tenants.rows[TID].settings, recurring_events=RecurringEvents.OCCURRENCES)
    world.tenants.rows[TID] = replace(world.tenants.rows[TID], settings=settings)
    box = world.mailboxes.mailbox("g1")
    box.appointment_ids["SERIES"] = "a-weekly"  # the host's old sync stamped the series master
    for n in (1, 2):
        world.mailboxes.put("g1", event(f"OCC-{n}", kind=EventKind.OCCURRENCE, series_master_id="SERIES"))
    await sync(world, "s1")
    before = world.mailboxes.requests
    world.mailboxes.put(
        "g1", event("OCC-3", kind=EventKind.OCCURRENCE, series_master_id="SERIES")
    )  # the window moved on
    await sync(world, "s1")
    assert [t for t in feed_types(world) if t.startswith("event.")] == []
    assert world.item_statuses.rows[(TID, "s1")]["OCC-3"].appointment_id == "a-weekly"
    assert world.mailboxes.requests - before == 1  # the delta read: the stored series links it
