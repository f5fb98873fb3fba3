"""The sync state's repositories: each behaviour written once, run against the in-memory fakes and the
Table Storage adapters on Azurite (item statuses, leases, the subscription index, dead letters)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.adapters.tables.dead_letters import MAX_REASON, TableDeadLetters
from shared.adapters.tables.item_statuses import TableItemStatuses
from shared.adapters.tables.leases import TableLeases
from shared.adapters.tables.rows import escape_key, unescape_key
from shared.adapters.tables.subscription_index import TableSubscriptionIndex
from shared.service.ports.feed import DeadLetterRepository
from shared.service.ports.sync_storage import ItemStatusRepository, LeaseStore, SubscriptionIndex
from shared.service.records import Announcement, Change, DeadLetter, LeaseOutcome, SubscriptionRecord
from tests.fakes.statuses import item_status as status
from tests.fakes.storage import FakeDeadLetters, FakeItemStatuses, FakeLeases, FakeSubscriptionIndex
from tests.fixtures.azurite import fresh_storage

pytestmark = pytest.mark.contract

T0 = datetime(2026, 11, 22, 9, 0, 0, 123456, tzinfo=UTC)
TTL = timedelta(minutes=5)
CONTOSO = "contoso.example"
CONTOSO_NET = "contoso.example.net"  # starts with CONTOSO: a prefix must not reach it
FABRIKAM = "6f1d2c7e-1b7a-4a57-9d55-0c0f1c6f4a11"
AWKWARD_IDS = [
    "AAMkAGI2TG93AAA=",
    "AAMkAGI2/TG93+AAA==",
    "a/b\\c#d?e%f'g",
    "nur ein Termin: Müller",
    "+/=",
]


@dataclass
class SyncRepositories:
    statuses: ItemStatusRepository
    leases: LeaseStore
    index: SubscriptionIndex
    dead_letters: DeadLetterRepository


@pytest.fixture(params=["fake", "azurite"])
async def repos(request: pytest.FixtureRequest) -> AsyncIterator[SyncRepositories]:
    if request.param == "fake":
        yield SyncRepositories(FakeItemStatuses(), FakeLeases(), FakeSubscriptionIndex(), FakeDeadLetters())
        return
    async with fresh_storage(request.getfixturevalue("azurite"), "sync") as storage:
        yield SyncRepositories(
            TableItemStatuses(storage),
            TableLeases(storage),
            TableSubscriptionIndex(storage),
            TableDeadLetters(storage),
        )


# --- keys ----------------------------------------------------------------------------------------


@given(st.text())
def test_escaped_keys_round_trip_and_hold_only_safe_characters(value: str) -> None:
    key = escape_key(value)
    assert unescape_key(key) == value
    assert all(c.isascii() and (c.isalnum() or c in "._-!") for c in key), key


@given(st.text(), st.text())
def test_escaped_keys_keep_prefixes(prefix: str, rest: str) -> None:
    assert escape_key(prefix + rest).startswith(escape_key(prefix))
    assert escape_key(prefix + rest) < escape_key(prefix) + "{"  # the range delete_prefix queries


# --- item statuses -------------------------------------------------------------------------------


async def test_statuses_round_trip_with_awkward_graph_ids(repos: SyncRepositories) -> None:
    stored = [status(graph_id, n) for n, graph_id in enumerate(AWKWARD_IDS)]
    stored.append(
        status(
            "AAMk-linked",
            appointment_id="appt-7",
            series_master_id="AAMk/master=",
            change_key=None,
            ical_uid=None,
            admitted=False,
        )
    )
    stored.append(status("AAMk-written-master", appointment_id="appt-8", written=True, master=True))
    await repos.statuses.apply(CONTOSO, "anna", stored, [])

    loaded = await repos.statuses.load(CONTOSO, "anna")

    assert loaded == {s.graph_id: s for s in stored}
    assert await repos.statuses.load(CONTOSO, "ben") == {}


async def test_statuses_store_end_times_as_utc(repos: SyncRepositories) -> None:
    vienna = timezone(timedelta(hours=1))
    await repos.statuses.apply(
        CONTOSO, "anna", [status("a", ends_at=datetime(2026, 12, 1, 10, tzinfo=vienna))], []
    )

    ends_at = (await repos.statuses.load(CONTOSO, "anna"))["a"].ends_at

    assert ends_at == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert ends_at.utcoffset() == timedelta(0)


async def test_more_than_one_transaction_of_upserts_and_deletes_in_one_apply(repos: SyncRepositories) -> None:
    first = [status(f"item/{n}", n) for n in range(250)]
    await repos.statuses.apply(CONTOSO, "anna", first, [])
    assert len(await repos.statuses.load(CONTOSO, "anna")) == 250

    changed = [status(f"item/{n}", n + 1000) for n in range(0, 250, 2)]  # 125 upserts
    deleted = [f"item/{n}" for n in range(1, 250, 2)]  # 125 deletes
    await repos.statuses.apply(CONTOSO, "anna", changed, deleted)

    assert await repos.statuses.load(CONTOSO, "anna") == {s.graph_id: s for s in changed}


async def test_applying_the_same_plan_twice_changes_nothing_more(repos: SyncRepositories) -> None:
    await repos.statuses.apply(CONTOSO, "anna", [status(f"old{n}") for n in range(120)], [])
    upserts = [status(f"new{n}", n) for n in range(30)]
    deletes = [f"old{n}" for n in range(110)] + ["never-stored/+="]

    await repos.statuses.apply(CONTOSO, "anna", upserts, deletes)
    after_once = await repos.statuses.load(CONTOSO, "anna")
    await repos.statuses.apply(CONTOSO, "anna", upserts, deletes)  # a redelivered job

    assert await repos.statuses.load(CONTOSO, "anna") == after_once
    assert set(after_once) == {f"new{n}" for n in range(30)} | {f"old{n}" for n in range(110, 120)}


async def test_an_id_upserted_twice_or_also_deleted_keeps_the_last_upsert(repos: SyncRepositories) -> None:
    await repos.statuses.apply(CONTOSO, "anna", [status("x", 1)], [])

    await repos.statuses.apply(CONTOSO, "anna", [status("x", 2), status("y", 1), status("y", 3)], ["x", "y"])

    assert await repos.statuses.load(CONTOSO, "anna") == {"x": status("x", 2), "y": status("y", 3)}


async def test_a_large_mailbox_round_trips_through_many_changes(repos: SyncRepositories) -> None:
    graph_id = "AAMkAGI2NGVhZTVlLTI1OGMtNDI4My1iZmE1LTI5OTg0YzM5MzM5OQBGAAAAAAC{n:06d}iRAAA="
    mailbox = [
        status(graph_id.format(n=n), n, appointment_id=f"appt-{n}" if n % 7 == 0 else None)
        for n in range(2500)
    ]
    await repos.statuses.apply(CONTOSO, "anna", mailbox, [])  # several rounds; pages split on the way
    expected = {s.graph_id: s for s in mailbox}
    assert await repos.statuses.load(CONTOSO, "anna") == expected

    changed = [status(s.graph_id, 9000 + n) for n, s in enumerate(mailbox[::6])]
    deleted = [s.graph_id for s in mailbox[1::9]] + ["never-stored"]
    added = [status(f"added-{n}", n) for n in range(200)]
    await repos.statuses.apply(CONTOSO, "anna", changed + added, deleted)

    for graph_id in deleted:
        expected.pop(graph_id, None)
    expected |= {s.graph_id: s for s in changed + added}
    assert await repos.statuses.load(CONTOSO, "anna") == expected
    assert await repos.statuses.load(CONTOSO, "anna", probably_empty=True) == expected


async def test_notes_are_seen_at_once_and_kept_through_the_next_apply(repos: SyncRepositories) -> None:
    await repos.statuses.apply(CONTOSO, "anna", [status("a"), status("b"), status("c")], [])
    written = status("d", 4, written=True, appointment_id="appt-1")
    await repos.statuses.note(CONTOSO, "anna", [status("b", 2), written], ["c"])  # the write side
    await repos.statuses.note(CONTOSO, "anna", [status("e", 5)], ["e"])  # an upsert after a delete wins

    expected = {"a": status("a"), "b": status("b", 2), "d": written, "e": status("e", 5)}
    assert await repos.statuses.load(CONTOSO, "anna") == expected
    await repos.statuses.apply(CONTOSO, "anna", [], [])  # the run folds what it saw
    assert await repos.statuses.load(CONTOSO, "anna") == expected
    await repos.statuses.apply(CONTOSO, "anna", [status("f", 6)], ["a"])
    del expected["a"]
    assert await repos.statuses.load(CONTOSO, "anna") == {**expected, "f": status("f", 6)}


async def test_a_note_made_after_a_load_outlives_that_runs_apply(repos: SyncRepositories) -> None:
    await repos.statuses.apply(CONTOSO, "anna", [status("a"), status("b")], [])
    await repos.statuses.note(CONTOSO, "anna", [status("a", 3, written=True)], [])
    await repos.statuses.load(CONTOSO, "anna")  # the run reads (the note too) ...
    written = status("a", 7, written=True)
    await repos.statuses.note(CONTOSO, "anna", [written], ["b"])  # ... the write side notes again ...
    plan = [status("b", 1), status("c", 1)]  # ... and a plan from before those notes is applied
    await repos.statuses.apply(CONTOSO, "anna", plan, [])

    assert await repos.statuses.load(CONTOSO, "anna") == {"a": written, "c": status("c", 1)}
    await repos.statuses.apply(CONTOSO, "anna", [], [])  # the next run folds them in
    assert await repos.statuses.load(CONTOSO, "anna") == {"a": written, "c": status("c", 1)}


async def test_a_user_with_notes_only_is_not_taken_for_empty(repos: SyncRepositories) -> None:
    written = status("AAMk/written=", written=True)
    await repos.statuses.note(CONTOSO, "anna", [written], [])
    assert await repos.statuses.load(CONTOSO, "anna", probably_empty=True) == {written.graph_id: written}
    await repos.statuses.delete_user(CONTOSO, "anna")
    assert await repos.statuses.load(CONTOSO, "anna") == {}


@pytest.mark.parametrize("probably_empty", [False, True], ids=["read", "first-read"])
async def test_the_first_read_hint_never_hides_what_was_stored(
    repos: SyncRepositories, probably_empty: bool
) -> None:
    def load(staff_id: str) -> Any:
        return repos.statuses.load(CONTOSO, staff_id, probably_empty=probably_empty)

    assert await load("anna") == {}
    many = [status("~"), status("!7E"), *(status(f"item{n}", n) for n in range(120))]  # past one transaction
    await repos.statuses.apply(CONTOSO, "anna", many, [])
    await repos.statuses.apply(CONTOSO, "anna", [], ["item0"])  # deletes only
    assert await load("anna") == {s.graph_id: s for s in many if s.graph_id != "item0"}

    written = status("AAMkWritten=", written=True)  # the write side remembers one event
    await repos.statuses.apply(CONTOSO, "ben", [written], [])
    assert await load("ben") == {written.graph_id: written}

    await repos.statuses.apply(CONTOSO, "anna", [], [s.graph_id for s in many])
    assert await load("anna") == {}


async def test_deleting_a_user_or_a_tenant_leaves_the_others(repos: SyncRepositories) -> None:
    owners = [
        (CONTOSO, "anna"),
        (CONTOSO, "anna.b"),  # starts with another staff id
        (CONTOSO, "ben+1@x=y~z"),
        (CONTOSO_NET, "anna"),  # a tenant id that starts with another
        (FABRIKAM, "anna"),
    ]
    for n, (tenant_id, staff_id) in enumerate(owners):
        await repos.statuses.apply(tenant_id, staff_id, [status(f"{staff_id}/{n}/{i}") for i in range(3)], [])

    await repos.statuses.delete_user(CONTOSO, "anna")
    await repos.statuses.delete_user(CONTOSO, "nobody")  # idempotent

    assert await repos.statuses.load(CONTOSO, "anna") == {}
    assert len(await repos.statuses.load(CONTOSO, "anna.b")) == 3

    await repos.statuses.delete_tenant(CONTOSO)
    await repos.statuses.delete_tenant(CONTOSO)  # idempotent

    for tenant_id, staff_id in owners[:3]:
        assert await repos.statuses.load(tenant_id, staff_id) == {}
    for tenant_id, staff_id in owners[3:]:
        assert len(await repos.statuses.load(tenant_id, staff_id)) == 3


async def test_a_tenant_with_many_rows_is_deleted_completely(repos: SyncRepositories) -> None:
    for staff_id in ("anna", "ben"):
        await repos.statuses.apply(CONTOSO, staff_id, [status(f"{staff_id}{n}") for n in range(150)], [])

    await repos.statuses.delete_tenant(CONTOSO)

    assert await repos.statuses.load(CONTOSO, "anna") == {}
    assert await repos.statuses.load(CONTOSO, "ben") == {}


# --- leases --------------------------------------------------------------------------------------


async def test_a_free_lease_is_acquired_and_released(repos: SyncRepositories) -> None:
    assert await repos.leases.acquire("sync/contoso/anna", "w1", TTL, T0) == LeaseOutcome.ACQUIRED
    assert await repos.leases.release("sync/contoso/anna", "w1") is False
    assert await repos.leases.acquire("sync/contoso/anna", "w2", TTL, T0) == LeaseOutcome.ACQUIRED


async def test_work_asked_for_while_held_runs_once_more(repos: SyncRepositories) -> None:
    key = "sync/contoso/anna"
    assert await repos.leases.acquire(key, "w1", TTL, T0) == LeaseOutcome.ACQUIRED
    assert await repos.leases.acquire(key, "w2", TTL, T0) == LeaseOutcome.DEFERRED
    assert await repos.leases.acquire(key, "w3", TTL, T0) == LeaseOutcome.DEFERRED

    assert await repos.leases.release(key, "w1") is True  # run once more, still holding it
    assert await repos.leases.acquire(key, "w4", TTL, T0) == LeaseOutcome.DEFERRED  # held meanwhile
    assert await repos.leases.release(key, "w1") is True
    assert await repos.leases.release(key, "w1") is False
    assert await repos.leases.release(key, "w1") is False
    assert await repos.leases.acquire(key, "w2", TTL, T0) == LeaseOutcome.ACQUIRED


async def test_the_holder_acquires_again(repos: SyncRepositories) -> None:
    assert await repos.leases.acquire("k", "w1", TTL, T0) == LeaseOutcome.ACQUIRED
    assert await repos.leases.acquire("k", "w1", TTL, T0 + timedelta(minutes=1)) == LeaseOutcome.ACQUIRED
    # ... which extends it
    assert await repos.leases.acquire("k", "w2", TTL, T0 + timedelta(minutes=5)) == LeaseOutcome.DEFERRED


async def test_an_expired_lease_is_taken_over(repos: SyncRepositories) -> None:
    assert await repos.leases.acquire("k", "w1", TTL, T0) == LeaseOutcome.ACQUIRED
    assert (
        await repos.leases.acquire("k", "w2", TTL, T0 + TTL - timedelta(seconds=1)) == LeaseOutcome.DEFERRED
    )

    assert await repos.leases.acquire("k", "w3", TTL, T0 + TTL) == LeaseOutcome.ACQUIRED

    assert await repos.leases.release("k", "w1") is False  # not the old holder's any more
    assert await repos.leases.acquire("k", "w4", TTL, T0 + TTL) == LeaseOutcome.DEFERRED
    assert await repos.leases.release("k", "w3") is True


async def test_a_lease_held_by_an_earlier_delivery_of_the_same_message_is_taken_over_at_once(
    repos: SyncRepositories,
) -> None:
    key = f"{CONTOSO}/anna"
    assert await repos.leases.acquire(key, "m1/1/a", TTL, T0) == LeaseOutcome.ACQUIRED  # then it died
    later = T0 + timedelta(seconds=30)
    assert await repos.leases.acquire(key, "m2/1/b", TTL, later) == LeaseOutcome.DEFERRED  # another message
    assert await repos.leases.acquire(key, "m1/1/c", TTL, later, succeeds=()) == LeaseOutcome.DEFERRED
    assert await repos.leases.acquire(key, "m1/2/d", TTL, later, succeeds=("m1/1/",)) == LeaseOutcome.ACQUIRED
    assert await repos.leases.release(key, "m1/1/a") is False  # the dead delivery's owner no longer holds it
    # m2's ask was of the dead run; the run taking over starts after it, so it covers it
    assert await repos.leases.release(key, "m1/2/d") is False
    assert await repos.leases.acquire(key, "m2/1/e", TTL, later) == LeaseOutcome.ACQUIRED


async def test_only_the_holder_releases(repos: SyncRepositories) -> None:
    assert await repos.leases.release("k", "w1") is False  # nobody holds it
    assert await repos.leases.acquire("k", "w1", TTL, T0) == LeaseOutcome.ACQUIRED

    assert await repos.leases.release("k", "w2") is False

    assert await repos.leases.acquire("k", "w3", TTL, T0) == LeaseOutcome.DEFERRED
    assert await repos.leases.release("k", "w1") is True


async def test_leases_taken_together_are_held_and_let_go_together(repos: SyncRepositories) -> None:
    calendar, tasks = f"{CONTOSO}/anna", f"{CONTOSO}/anna/tasks"
    assert await repos.leases.acquire_together([calendar, tasks], "m1/1/a", TTL, T0) is True

    assert await repos.leases.acquire(calendar, "w2", TTL, T0) == LeaseOutcome.DEFERRED
    assert await repos.leases.release_together([calendar, tasks], "m1/1/a") is False  # calendar's flag set
    assert await repos.leases.release(tasks, "m1/1/a") is False  # nothing asked of the list: let go
    assert await repos.leases.release(calendar, "m1/1/a") is True  # the calendar's run goes once more
    assert await repos.leases.release(calendar, "m1/1/a") is False
    assert await repos.leases.acquire_together([calendar, tasks], "w3", TTL, T0) is True
    assert await repos.leases.release_together([calendar, tasks], "w3") is True
    assert await repos.leases.acquire(tasks, "w4", TTL, T0) == LeaseOutcome.ACQUIRED  # both free again
    assert await repos.leases.acquire(calendar, "w4", TTL, T0) == LeaseOutcome.ACQUIRED


async def test_leases_are_taken_together_only_when_none_has_a_row(repos: SyncRepositories) -> None:
    calendar, tasks = f"{CONTOSO}/anna", f"{CONTOSO}/anna/tasks"
    assert await repos.leases.acquire(tasks, "m1/1/a", TTL, T0) == LeaseOutcome.ACQUIRED
    later = T0 + TTL  # lapsed, or an earlier delivery's: still `acquire`'s to decide

    assert await repos.leases.acquire_together([calendar, tasks], "m1/2/b", TTL, later) is False

    assert await repos.leases.acquire(calendar, "w2", TTL, later) == LeaseOutcome.ACQUIRED  # not taken
    assert await repos.leases.release(tasks, "m1/1/a") is False
    assert await repos.leases.release_together([calendar, tasks], "m1/2/b") is False  # never its to let go
    assert await repos.leases.release(calendar, "w2") is False


async def test_leases_taken_together_and_deleted_meanwhile_are_let_go_one_by_one(
    repos: SyncRepositories,
) -> None:
    calendar, tasks = f"{CONTOSO}/anna", f"{CONTOSO}/anna/tasks"
    assert await repos.leases.acquire_together([calendar, tasks], "w1", TTL, T0) is True
    await repos.leases.delete_prefix(f"{CONTOSO}/")  # the tenant disconnected meanwhile

    assert await repos.leases.release_together([calendar, tasks], "w1") is False
    assert await repos.leases.release(calendar, "w1") is False
    assert await repos.leases.release(tasks, "w1") is False


async def test_leases_of_two_tenants_are_never_taken_together(repos: SyncRepositories) -> None:
    with pytest.raises(ValueError, match="one tenant"):
        await repos.leases.acquire_together([f"{CONTOSO}/anna", f"{FABRIKAM}/anna"], "w1", TTL, T0)


async def test_concurrent_acquires_let_exactly_one_in(repos: SyncRepositories) -> None:
    outcomes = await asyncio.gather(*(repos.leases.acquire("k", f"w{n}", TTL, T0) for n in range(10)))

    assert sorted(outcomes) == [LeaseOutcome.ACQUIRED] + [LeaseOutcome.DEFERRED] * 9
    holder = f"w{outcomes.index(LeaseOutcome.ACQUIRED)}"
    assert await repos.leases.release("k", holder) is True
    assert await repos.leases.release("k", holder) is False


async def test_concurrent_releases_and_acquires_never_lose_a_request(repos: SyncRepositories) -> None:
    assert await repos.leases.acquire("k", "w0", TTL, T0) == LeaseOutcome.ACQUIRED

    release, *outcomes = await asyncio.gather(
        repos.leases.release("k", "w0"), *(repos.leases.acquire("k", f"w{n}", TTL, T0) for n in range(1, 6))
    )

    # Either a request came in before the release (the holder runs again) or one of them took it over.
    runs_again = release is True
    taken_over = outcomes.count(LeaseOutcome.ACQUIRED)
    assert runs_again or taken_over == 1
    assert taken_over <= 1


async def test_deleting_leases_by_prefix(repos: SyncRepositories) -> None:
    keys = [  # the sync handler's keys are "{tenant id}/{staff id}"; the purge deletes "{tenant id}/"
        f"{CONTOSO}/anna",
        f"{CONTOSO}/ben+1@x=y~z",
        f"{CONTOSO}/a#b?c%d'e\\f",
        f"{CONTOSO_NET}/anna",  # a tenant id that starts with another
        f"{CONTOSO}.net",
        f"{FABRIKAM}/anna",
    ]
    for key in keys:
        assert await repos.leases.acquire(key, "w1", TTL, T0) == LeaseOutcome.ACQUIRED

    await repos.leases.delete_prefix(f"{CONTOSO}/")
    await repos.leases.delete_prefix(f"{CONTOSO}/")  # idempotent

    outcomes = {key: await repos.leases.acquire(key, "w2", TTL, T0) for key in keys}
    assert outcomes == {
        key: LeaseOutcome.ACQUIRED if n < 3 else LeaseOutcome.DEFERRED for n, key in enumerate(keys)
    }


# --- subscription index --------------------------------------------------------------------------


def record(
    subscription_id: str, tenant_id: str = CONTOSO, hours: float = 24, **changes: Any
) -> SubscriptionRecord:
    base = SubscriptionRecord(
        subscription_id=subscription_id,
        tenant_id=tenant_id,
        staff_id=f"staff-{subscription_id[:4]}",
        graph_user_id=f"user-{subscription_id[:4]}",
        expires_at=T0 + timedelta(hours=hours),
    )
    return replace(base, **changes)


def unversioned(records: list[SubscriptionRecord]) -> list[SubscriptionRecord]:
    return [replace(r, etag=None) for r in records]


async def test_subscriptions_are_put_read_and_deleted(repos: SyncRepositories) -> None:
    sub = record("2f1c9a8e-0000-4000-8000-000000000001", staff_id="ben+1@x=y")
    assert await repos.index.get(sub.subscription_id) is None

    await repos.index.put(sub)
    got = await repos.index.get(sub.subscription_id)
    assert got is not None and got.etag
    assert replace(got, etag=None) == sub

    notified = replace(sub, last_notified_at=T0 + timedelta(minutes=3), expires_at=T0 + timedelta(days=3))
    await repos.index.put(notified)
    assert unversioned([await repos.index.get(sub.subscription_id)]) == [notified]  # type: ignore[list-item]

    await repos.index.put(sub)  # a later put without last_notified_at clears it
    assert unversioned([await repos.index.get(sub.subscription_id)]) == [sub]  # type: ignore[list-item]

    signed = replace(sub, key_version="0f" * 16)  # the notification key version its clientState names
    await repos.index.put(signed)
    assert unversioned([await repos.index.get(sub.subscription_id)]) == [signed]  # type: ignore[list-item]
    assert unversioned(await repos.index.for_tenant(CONTOSO)) == [signed]

    await repos.index.delete(sub.subscription_id)
    await repos.index.delete(sub.subscription_id)  # idempotent
    assert await repos.index.get(sub.subscription_id) is None


async def test_subscription_times_come_back_in_utc(repos: SyncRepositories) -> None:
    vienna = timezone(timedelta(hours=1))
    sub = record(
        "sub-1",
        expires_at=datetime(2026, 12, 1, 10, tzinfo=vienna),
        last_notified_at=datetime(2026, 11, 30, 10, tzinfo=vienna),
    )
    await repos.index.put(sub)

    got = await repos.index.get("sub-1")

    assert got is not None and replace(got, etag=None) == sub
    assert got.expires_at.utcoffset() == timedelta(0)
    assert got.last_notified_at is not None and got.last_notified_at.utcoffset() == timedelta(0)


async def test_expiring_subscriptions_soonest_first(repos: SyncRepositories) -> None:
    late, soon, sooner, exact = (
        record("sub-late", hours=48),
        record("sub-soon", FABRIKAM, hours=5),
        record("sub-sooner", hours=1),
        record("sub-exact", hours=12),
    )
    for sub in (late, soon, sooner, exact):
        await repos.index.put(sub)

    expiring = await repos.index.expiring(T0 + timedelta(hours=12))

    assert unversioned(expiring) == [sooner, soon]  # `before` itself is not included
    assert await repos.index.expiring(T0) == []


async def test_subscriptions_of_a_tenant(repos: SyncRepositories) -> None:
    subs = [
        record("sub-b", CONTOSO),
        record("sub-a", CONTOSO),
        record("sub-c", CONTOSO_NET),
        record("sub-d", "o'brien.example"),  # the filter quotes its value
    ]
    for sub in subs:
        await repos.index.put(sub)

    assert unversioned(await repos.index.for_tenant(CONTOSO)) == [subs[1], subs[0]]
    assert unversioned(await repos.index.for_tenant("o'brien.example")) == [subs[3]]
    assert await repos.index.for_tenant(FABRIKAM) == []


# --- dead letters --------------------------------------------------------------------------------


def letter(tenant_id: str, first: int, last: int | None = None, reason: str = "HTTP 500") -> DeadLetter:
    return DeadLetter(
        tenant_id=tenant_id,
        first_sequence=first,
        last_sequence=last if last is not None else first + 9,
        attempts=8,
        reason=reason,
        failed_at=T0 + timedelta(seconds=first),
    )


async def test_dead_letters_list_in_sequence_order(repos: SyncRepositories) -> None:
    letters = [letter(CONTOSO, first) for first in (100, 9, 1_000_001, 10)]
    for dead in [*letters, letter(FABRIKAM, 5)]:
        await repos.dead_letters.add(dead)

    listed = await repos.dead_letters.list(CONTOSO)

    assert listed == sorted(letters, key=lambda d: d.first_sequence)
    assert await repos.dead_letters.list(CONTOSO_NET) == []


async def test_a_dead_letter_added_again_replaces_the_first(repos: SyncRepositories) -> None:
    await repos.dead_letters.add(letter(CONTOSO, 1, 5, reason="timeout"))
    await repos.dead_letters.add(letter(CONTOSO, 1, 7, reason="HTTP 503"))

    assert await repos.dead_letters.list(CONTOSO) == [letter(CONTOSO, 1, 7, reason="HTTP 503")]


async def test_a_long_reason_is_cut(repos: SyncRepositories) -> None:
    await repos.dead_letters.add(letter(CONTOSO, 1, reason="x" * 100_000))

    [stored] = await repos.dead_letters.list(CONTOSO)

    assert stored.reason == "x" * MAX_REASON


async def test_dead_letters_are_deleted_one_by_one_or_by_tenant(repos: SyncRepositories) -> None:
    for dead in (letter(CONTOSO, 1), letter(CONTOSO, 11), letter(CONTOSO_NET, 1), letter(FABRIKAM, 1)):
        await repos.dead_letters.add(dead)

    await repos.dead_letters.delete(CONTOSO, 1)
    await repos.dead_letters.delete(CONTOSO, 1)  # idempotent
    assert await repos.dead_letters.list(CONTOSO) == [letter(CONTOSO, 11)]

    await repos.dead_letters.delete_tenant(CONTOSO)
    await repos.dead_letters.delete_tenant(CONTOSO)  # idempotent
    assert await repos.dead_letters.list(CONTOSO) == []
    assert await repos.dead_letters.list(CONTOSO_NET) == [letter(CONTOSO_NET, 1)]
    assert await repos.dead_letters.list(FABRIKAM) == [letter(FABRIKAM, 1)]


# --- announcements (the outbox a sync run stores with its statuses) ----------------------------------


def announced_change(n: int, *, size: int = 0) -> Change:
    data: dict[str, Any] = {"event": {"id": f"AAMk/{n}", "subject": f"Termin {n}: Müller"}, "n": n}
    if size:
        data["body"] = "x" * size
    return Change("event.created", CONTOSO, data, T0 + timedelta(seconds=n), "anna")


async def test_an_announcement_stored_with_the_statuses_is_pending_until_announced(
    repos: SyncRepositories,
) -> None:
    changes = (announced_change(1), announced_change(2))
    await repos.statuses.apply(
        CONTOSO, "anna", [status("item/1", 1)], [], announcing=Announcement("run-1", changes)
    )

    assert await repos.statuses.load(CONTOSO, "anna", probably_empty=True) == {"item/1": status("item/1", 1)}
    assert await repos.statuses.pending(CONTOSO, "anna") == Announcement("run-1", changes)
    assert await repos.statuses.pending(CONTOSO, "bert") is None

    await repos.statuses.announced(CONTOSO, "anna", "other")  # not its key: kept
    assert await repos.statuses.pending(CONTOSO, "anna") == Announcement("run-1", changes)
    await repos.statuses.announced(CONTOSO, "anna", "run-1")
    await repos.statuses.announced(CONTOSO, "anna", "run-1")  # idempotent
    await repos.statuses.load(CONTOSO, "anna")
    assert await repos.statuses.pending(CONTOSO, "anna") is None
    assert await repos.statuses.load(CONTOSO, "anna") == {"item/1": status("item/1", 1)}


async def test_an_announcement_without_status_changes_or_larger_than_a_page_round_trips(
    repos: SyncRepositories,
) -> None:
    large = tuple(announced_change(n, size=3_000) for n in range(200))  # ~600,000 characters: several rows
    await repos.statuses.apply(CONTOSO, "anna", [], [], announcing=Announcement("big", large))
    await repos.statuses.load(CONTOSO, "anna", probably_empty=True)
    assert await repos.statuses.pending(CONTOSO, "anna") == Announcement("big", large)

    await repos.statuses.announced(CONTOSO, "anna", "big")
    many = [status(f"item/{n}", n) for n in range(600)]  # more than one round of pages
    await repos.statuses.apply(CONTOSO, "anna", many, [], announcing=Announcement("next", large[:3]))
    assert len(await repos.statuses.load(CONTOSO, "anna")) == 600
    assert await repos.statuses.pending(CONTOSO, "anna") == Announcement("next", large[:3])
