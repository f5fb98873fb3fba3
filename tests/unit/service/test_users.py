"""Matching staff to directory users, against fakes."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace

import pytest

from shared.domain.tenants import UserScope
from shared.domain.users import (
    DirectoryUser,
    MailboxAccess,
    MatchedBy,
    MatchStatus,
    StaffMember,
    SyncState,
    UserRecord,
)
from shared.service import tenant_consent, tenant_settings
from shared.service import users as svc
from shared.service.commands import parse_create_tenant, parse_staff, parse_staff_put
from shared.service.errors import InvalidInput
from shared.service.jobs import Job
from tests.fakes.directory import FakeOrganisation
from tests.fakes.services import FakeWorld, fake_world
from tests.unit.service.test_tenants import CONTOSO, consent_state_of, ok_callback

pytestmark = pytest.mark.unit


def user(
    uid: str, upn: str, mail: str | None = None, proxies: tuple[str, ...] = (), enabled: bool = True
) -> DirectoryUser:
    return DirectoryUser(uid, upn, mail, proxies, enabled, upn.split("@", maxsplit=1)[0].title())


@pytest.fixture
async def world() -> FakeWorld:
    w = fake_world()
    org = w.directory.add(FakeOrganisation(CONTOSO, {"contoso.example"}, consented=True))
    for u in (
        user("u1", "adele@contoso.example", "adele@contoso.example"),
        user("u2", "ben@contoso.example", "ben.smith@contoso.example"),
        user(
            "u3",
            "cara@contoso.example",
            None,
            ("SMTP:cara@contoso.example", "smtp:cara.old@fabrikam.example"),
        ),
        user("u4", "dan@contoso.example", "dan@contoso.example", enabled=False),
        user("u5", "eve@contoso.example", "eve@contoso.example"),
        user("u6", "finn@contoso.example", "finn@contoso.example"),
    ):
        org.users[u.id] = u
    org.mailbox["u5"] = MailboxAccess.NO_MAILBOX
    org.mailbox["u6"] = MailboxAccess.FORBIDDEN
    body = {"tenant_id": CONTOSO, "display_name": "Contoso", "auth": {"mode": "admin_consent"}}
    connection = await tenant_consent.create_tenant(w.services, parse_create_tenant(body))
    await tenant_consent.complete_consent(
        w.services, ok_callback(consent_state_of(connection.consent_url or ""))
    )
    w.jobs.take()
    return w


@pytest.mark.parametrize(
    ("body", "status", "matched_by"),
    [
        ({"upn": "ADELE@contoso.example"}, MatchStatus.MATCHED, MatchedBy.UPN),
        ({"email": "Ben.Smith@contoso.example"}, MatchStatus.MATCHED, MatchedBy.MAIL),
        ({"email": "cara.old@fabrikam.example"}, MatchStatus.MATCHED, MatchedBy.PROXY_ADDRESS),
        ({"email": "dan@contoso.example"}, MatchStatus.DISABLED, MatchedBy.MAIL),
        ({"email": "eve@contoso.example"}, MatchStatus.NO_MAILBOX, MatchedBy.MAIL),
        ({"email": "finn@contoso.example"}, MatchStatus.FORBIDDEN, MatchedBy.MAIL),
        ({"email": "nobody@contoso.example"}, MatchStatus.UNMATCHED, None),
    ],
)
async def test_match_statuses(
    world: FakeWorld, body: dict[str, str], status: MatchStatus, matched_by: MatchedBy | None
) -> None:
    record = await svc.put_staff(world.services, CONTOSO, parse_staff("s1", body))
    assert record.match is status
    assert record.matched_by is matched_by
    queued = [j.kind for j in world.jobs.take()]
    assert queued == (["migrate"] if status is MatchStatus.MATCHED else [])


async def test_rematch_one_after_upn_change(world: FakeWorld) -> None:
    first = await svc.put_staff(world.services, CONTOSO, parse_staff("s1", {"upn": "adele@contoso.example"}))
    assert first.graph_user_id == "u1"
    world.jobs.take()
    moved = await svc.put_staff(world.services, CONTOSO, parse_staff("s1", {"upn": "ben@contoso.example"}))
    assert moved.graph_user_id == "u2" and moved.match is MatchStatus.MATCHED
    assert [j.kind for j in world.jobs.take()] == ["migrate"]


async def test_staff_disabled_by_host(world: FakeWorld) -> None:
    record = await svc.put_staff(
        world.services, CONTOSO, parse_staff("s1", {"upn": "adele@contoso.example", "enabled": False})
    )
    assert record.match is MatchStatus.DISABLED


async def test_match_all_lists_the_directory_once(world: FakeWorld) -> None:
    # Staff stored before the tenant connected wait, pending, for the queued discovery job.
    world.directory.calls = 0
    for i, upn in enumerate(("adele", "ben.smith", "cara.old", "dan", "zed")):
        domain = "fabrikam.example" if upn == "cara.old" else "contoso.example"
        await world.users.save(
            UserRecord(
                CONTOSO,
                StaffMember(f"s{i}", f"{upn}@{domain}", None, upn),
                MatchStatus.PENDING,
                world.clock.now(),
            )
        )
    queued = await svc.match_all(world.services, CONTOSO)
    statuses = {u.staff_id: u.match for u in await world.users.list_all(CONTOSO)}
    assert statuses == {
        "s0": MatchStatus.MATCHED,
        "s1": MatchStatus.MATCHED,
        "s2": MatchStatus.MATCHED,
        "s3": MatchStatus.DISABLED,
        "s4": MatchStatus.UNMATCHED,
    }
    assert queued == 3
    assert world.directory.calls == 1


async def test_all_users_scope_adds_every_enabled_mailbox(world: FakeWorld) -> None:
    await tenant_settings.update_settings(world.services, CONTOSO, {"user_scope": "all_users"})
    await svc.match_all(world.services, CONTOSO)
    rows = {u.graph_user_id: u.match for u in await world.users.list_all(CONTOSO)}
    assert rows == {
        "u1": MatchStatus.MATCHED,
        "u2": MatchStatus.MATCHED,
        "u3": MatchStatus.MATCHED,
        "u5": MatchStatus.NO_MAILBOX,
        "u6": MatchStatus.FORBIDDEN,
    }
    assert world.tenants.rows[CONTOSO].settings.user_scope is UserScope.ALL_USERS


@pytest.mark.parametrize(
    ("staff_id", "body", "field"),
    [
        ("bad/id", {"upn": "a@b.c"}, "staff_id"),
        ("s1", {}, "email"),
        ("s1", {"email": 5}, "email"),
        ("s1", {"email": "no-at-sign"}, "email"),
        ("s1", {"upn": "a@b.c", "legacy_ids": "x"}, "legacy_ids"),
        ("s1", {"upn": "a@b.c", "enabled": "yes"}, "enabled"),
    ],
)
def test_bad_staff_input_names_the_field(staff_id: str, body: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_staff(staff_id, body)
    assert raised.value.field == field


async def _all_users_scope(world: FakeWorld, count: int) -> None:
    org = world.directory.organisations[CONTOSO]
    for n in range(count):
        org.users[f"b{n:04d}"] = user(
            f"b{n:04d}", f"bulk{n:04d}@contoso.example", f"bulk{n:04d}@contoso.example"
        )
    await tenant_settings.update_settings(world.services, CONTOSO, {"user_scope": "all_users"})


async def test_match_all_queues_migrations_chunk_by_chunk_while_discovery_goes_on(world: FakeWorld) -> None:
    await _all_users_scope(world, 250)
    stored_when_queued: list[int] = []
    enqueue = world.jobs.enqueue

    async def observing(queued: Iterable[Job]) -> None:
        batch = list(queued)
        if batch:
            stored_when_queued.append(len(await world.users.list_all(CONTOSO)))
        await enqueue(batch)

    world.jobs.enqueue = observing  # type: ignore[method-assign]

    queued = await svc.match_all(world.services, CONTOSO)

    rows = await world.users.list_all(CONTOSO)
    migrate = [j.staff_id for j in world.jobs.take() if j.kind == "migrate"]
    matched = sorted(u.staff_id for u in rows if u.match is MatchStatus.MATCHED)
    assert queued == len(migrate) == len(matched) == 253  # the bulk users and u1, u2, u3
    assert sorted(migrate) == matched
    # The first migrations waited for neither the last rows nor a full chunk: one probe batch's worth.
    assert stored_when_queued[0] <= 3 + svc.FIRST_CHUNK < len(rows)
    assert len(stored_when_queued) == 1 + math.ceil((253 - svc.FIRST_CHUNK) / svc.CHUNK)


async def test_regression_match_all_saves_a_user_changed_while_discovery_ran(world: FakeWorld) -> None:
    await _all_users_scope(world, 120)
    for n in range(120):
        await world.users.save(
            UserRecord(
                CONTOSO,
                StaffMember(f"s{n}", f"bulk{n:04d}@contoso.example", None, f"Bulk {n}"),
                MatchStatus.PENDING,
                world.clock.now(),
            )
        )
    save_all = world.users.save_all

    async def racing(users: Sequence[UserRecord]) -> list[UserRecord | None]:
        # The host renames s7 between discovery's read and its write.
        current = world.users.rows[(CONTOSO, "s7")]
        world.users.rows[(CONTOSO, "s7")] = replace(
            current, staff=replace(current.staff, display_name="Renamed"), etag='W/"raced"'
        )
        return await save_all(users)

    world.users.save_all = racing  # type: ignore[method-assign]

    await svc.match_all(world.services, CONTOSO)

    s7 = world.users.rows[(CONTOSO, "s7")]
    assert (s7.match, s7.graph_user_id, s7.staff.display_name) == (MatchStatus.MATCHED, "b0007", "Renamed")
    matched = {u.staff_id for u in world.users.rows.values() if u.match is MatchStatus.MATCHED}
    assert {f"s{n}" for n in range(120)} <= matched
    migrate = sorted(j.staff_id for j in world.jobs.take() if j.kind == "migrate")
    assert migrate == sorted(matched)


async def test_the_staff_put_keeps_the_switches_it_does_not_name(world: FakeWorld) -> None:
    def put(body: dict[str, object]) -> tuple[StaffMember, dict[str, bool]]:
        return parse_staff_put("s1", {"upn": "adele@contoso.example", **body})

    created = await svc.put_staff(world.services, CONTOSO, *put({"switches": {"video": False}}))
    assert created.staff.switches.as_dict() == {
        "calendar_to_outlook": True,
        "calendar_from_outlook": True,
        "video": False,
        "mail": False,
        "tasks_to_outlook": True,
        "tasks_from_outlook": True,
    }
    assert [j.kind for j in world.jobs.take()] == ["migrate"]
    pending = await svc.put_staff(world.services, CONTOSO, *put({"switches": {"video": True}}))
    assert [j.kind for j in world.jobs.take()] == ["migrate", "catch_up_writes"]  # not migrated yet
    created = await svc.put_staff(world.services, CONTOSO, *put({"switches": {"video": False}}))
    assert pending.staff.switches.video and not created.staff.switches.video
    world.jobs.take()
    await world.users.save(replace(created, sync_state=SyncState.SYNCED))  # migrated
    again = await svc.put_staff(world.services, CONTOSO, *put({"switches": {"mail": True}}))
    assert (again.staff.switches.video, again.staff.switches.mail) == (False, True)
    assert [j.kind for j in world.jobs.take()] == []  # neither calendar direction changed
    renamed = await svc.put_staff(world.services, CONTOSO, *put({"display_name": "Adele V."}))
    assert (renamed.staff.switches.video, renamed.staff.switches.mail) == (False, True)
    on = await svc.put_staff(
        world.services, CONTOSO, *put({"switches": {"video": True, "calendar_from_outlook": False}})
    )
    assert on.staff.switches.video and not on.staff.switches.calendar_from_outlook
    assert [j.kind for j in world.jobs.take()] == ["catch_up_writes"]
    back = await svc.put_staff(world.services, CONTOSO, *put({"switches": {"calendar_from_outlook": True}}))
    assert back.staff.switches.calendar_from_outlook
    assert [j.kind for j in world.jobs.take()] == ["resync"]  # what changed meanwhile is read in full
    off = await svc.put_staff(world.services, CONTOSO, *put({"switches": {"tasks_from_outlook": False}}))
    assert not off.staff.switches.tasks_from_outlook and off.staff.switches.video
    assert [j.kind for j in world.jobs.take()] == []
    tasks = await svc.put_staff(world.services, CONTOSO, *put({"switches": {"tasks_from_outlook": True}}))
    assert tasks.staff.switches.tasks_from_outlook
    assert [j.kind for j in world.jobs.take()] == ["tasks_resync"]  # the list, read whole
