"""The change feed's contract, written once and run against the in-memory fake and the Table Storage feed on
Azurite: gapless sequences from 1, `read(after, limit)` returning at most `limit` changes after the cursor in
order from any cursor (the Table feed packs many changes into a row: cursors in the middle of a row, reads
across rows and transactions), writers in two workers, pruning by age (the newest row kept), a clear that
keeps the numbering, `ChangesPruned` for a cursor before what is kept, and `delete_tenant`."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shared.adapters.storage import StorageClients
from shared.adapters.tables.change_feed import FEED_ROW_CHARS, TableChangeFeed
from shared.domain.calendar import BODY_LIMIT, Attendee
from shared.domain.planner import Observation, Visibility, plan
from shared.service.change_json import MAX_CHANGE_CHARS, change_json
from shared.service.errors import ChangesPruned, ChangeTooLarge
from shared.service.ports.feed import ChangeFeed
from shared.service.records import Change
from tests.fakes.events import event
from tests.fakes.storage import FakeFeed
from tests.fixtures.azurite import fresh_storage, storage_on

pytestmark = pytest.mark.contract

T0 = datetime(2026, 11, 22, 9, 0, 0, 123456, tzinfo=UTC)
CONTOSO = "contoso.example"
CONTOSO_NET = "contoso.example.net"  # starts with CONTOSO: a prefix must not reach it


@dataclass
class Feeds:
    """`worker()` is the feed as one more worker sees it: the same storage, its own in-memory state."""

    worker: Callable[[], ChangeFeed]
    opened: list[StorageClients] = field(default_factory=list)

    @property
    def feed(self) -> ChangeFeed:
        return self.first

    def __post_init__(self) -> None:
        self.first = self.worker()


@pytest.fixture(params=["fake", "azurite"])
async def feeds(request: pytest.FixtureRequest) -> AsyncIterator[Feeds]:
    if request.param == "fake":
        fake = FakeFeed()
        yield Feeds(lambda: fake)
        return
    azurite: Any = request.getfixturevalue("azurite")
    prefix = f"feed{uuid.uuid4().hex[:12]}"  # fresh tables for every test
    opened: list[StorageClients] = []

    def worker() -> ChangeFeed:
        storage = storage_on(azurite, prefix)
        opened.append(storage)
        return TableChangeFeed(storage)

    try:
        yield Feeds(worker, opened)
    finally:
        for storage in opened:
            await storage.close()


def change(n: int, *, size: int = 0, staff: str | None = "anna", kind: str = "event.created") -> Change:
    data: dict[str, Any] = {"event": {"id": f"AAMk-{n}", "subject": f"Termin {n}: Müller"}}
    if size:
        data["body"] = "x" * size
    return Change(kind, CONTOSO, data, T0 + timedelta(seconds=n), staff)


def numbers(changes: list[Change]) -> list[int]:
    return [c.sequence or 0 for c in changes]


async def test_appends_number_changes_gaplessly_from_one_and_read_returns_them_in_order(feeds: Feeds) -> None:
    first = await feeds.feed.append(CONTOSO, [change(1), change(2), change(3)])
    second = await feeds.feed.append(CONTOSO, [change(4)])

    assert numbers(first) == [1, 2, 3]
    assert numbers(second) == [4]
    assert [c.data for c in first + second] == [change(n).data for n in range(1, 5)]
    read = await feeds.feed.read(CONTOSO, 0, 100)
    assert read == first + second


async def test_an_empty_append_takes_no_number(feeds: Feeds) -> None:
    assert await feeds.feed.append(CONTOSO, []) == []
    assert numbers(await feeds.feed.append(CONTOSO, [change(1)])) == [1]


def awkward_changes() -> list[Change]:
    """Nested data, no staff, an offset other than UTC, characters JSON and keys must escape."""
    vienna = timezone(timedelta(hours=1))
    reason = 'ẞ 🗓 "q"'
    return [
        Change("user.migrated", CONTOSO, {"events": 3, "nested": {"a": [1, None, True]}}, T0, "anna"),
        Change("tenant.migrated", CONTOSO, {"users": 2}, datetime(2026, 12, 1, 10, tzinfo=vienna)),
        Change("event.deleted", CONTOSO, {"event": {"id": "a/b\\c#d?e%f'g"}, "reason": reason}, T0, "b/c"),
    ]


async def test_changes_round_trip_with_their_fields(feeds: Feeds) -> None:
    sent = awkward_changes()
    await feeds.feed.append(CONTOSO, sent)

    read = await feeds.feed.read(CONTOSO, 0, 10)

    assert [(c.type, c.tenant_id, c.data, c.staff_id) for c in read] == [
        (c.type, c.tenant_id, c.data, c.staff_id) for c in sent
    ]
    assert [c.occurred_at for c in read] == [c.occurred_at for c in sent]
    assert all(c.occurred_at.utcoffset() == timedelta(0) for c in read if c.type != "tenant.migrated")


async def test_changes_read_as_json_text_are_the_pull_feed_shape(feeds: Feeds) -> None:
    await feeds.feed.append(CONTOSO, [change(1), *awkward_changes()])

    texts = await feeds.feed.read_json(CONTOSO, 1, 10)

    assert [sequence for sequence, _ in texts] == [2, 3, 4]
    read = await feeds.feed.read(CONTOSO, 1, 10)
    in_utc = [replace(c, occurred_at=c.occurred_at.astimezone(UTC)) for c in read]  # the text says UTC
    assert [json.loads(text) for _, text in texts] == [change_json(c) for c in in_utc]
    assert all(text.isascii() for _, text in texts)
    assert await feeds.feed.read_json(CONTOSO, 4, 10) == []


async def test_reads_from_every_cursor_with_every_limit_across_packed_rows(feeds: Feeds) -> None:
    # About six changes fill a row: 40 changes span several rows, written by two appends.
    sizes = [FEED_ROW_CHARS // 6 if n % 7 else 10 for n in range(1, 41)]
    await feeds.feed.append(CONTOSO, [change(n, size=s) for n, s in zip(range(1, 26), sizes, strict=False)])
    await feeds.feed.append(
        CONTOSO, [change(n, size=s) for n, s in zip(range(26, 41), sizes[25:], strict=True)]
    )

    for after in range(0, 42):
        for limit in (1, 2, 5, 13, 1000):
            read = await feeds.feed.read(CONTOSO, after, limit)
            assert numbers(read) == list(range(after + 1, min(40, after + limit) + 1)), (after, limit)
    everything = await feeds.feed.read(CONTOSO, 0, 1000)
    assert [c.data["event"]["id"] for c in everything] == [f"AAMk-{n}" for n in range(1, 41)]


async def test_regression_a_cursor_in_the_middle_of_a_packed_row_skips_what_it_has_seen(feeds: Feeds) -> None:
    await feeds.feed.append(CONTOSO, [change(n) for n in range(1, 11)])  # one small row

    read = await feeds.feed.read(CONTOSO, 4, 3)

    assert numbers(read) == [5, 6, 7]
    assert [c.data["event"]["id"] for c in read] == ["AAMk-5", "AAMk-6", "AAMk-7"]


async def test_a_change_larger_than_a_row_round_trips(feeds: Feeds) -> None:
    big = change(2, size=3 * FEED_ROW_CHARS + 17)
    await feeds.feed.append(CONTOSO, [change(1), big, change(3)])

    read = await feeds.feed.read(CONTOSO, 0, 10)

    assert numbers(read) == [1, 2, 3]
    assert read[1].data == big.data
    assert numbers(await feeds.feed.read(CONTOSO, 1, 1)) == [2]


async def test_the_largest_event_the_planner_announces_round_trips(feeds: Feeds) -> None:
    # The worst case the body limit allows: astral characters, 12 each as ASCII JSON, and a full meeting.
    attendees = tuple(
        Attendee(f"Gäst {n} \U0001f4c5", f"g{n}@contoso.example", "required", "none") for n in range(100)
    )
    huge = replace(event("A"), body="\U0001f4c5" * (BODY_LIMIT + 1000), attendees=attendees)
    (created,) = plan(Observation([huge], False, T0), {}, Visibility()).changes
    largest = Change(created.type.value, CONTOSO, created.data, T0, "anna")

    await feeds.feed.append(CONTOSO, [change(1), largest, change(3)])

    read = await feeds.feed.read(CONTOSO, 0, 10)
    assert numbers(read) == [1, 2, 3]
    assert read[1].data == largest.data
    assert read[1].data["event"]["body"]["truncated"] is True


async def test_an_append_with_a_change_over_the_limit_is_refused_whole(feeds: Feeds) -> None:
    await feeds.feed.append(CONTOSO, [change(1)])

    with pytest.raises(ChangeTooLarge):
        await feeds.feed.append(CONTOSO, [change(2), change(3, size=MAX_CHANGE_CHARS)])

    assert numbers(await feeds.feed.append(CONTOSO, [change(4)])) == [2]
    assert numbers(await feeds.feed.read(CONTOSO, 0, 10)) == [1, 2]


async def test_an_append_larger_than_one_transaction_stays_gapless(feeds: Feeds) -> None:
    # 250 rows of one change each: three transactions of at most 99 rows (and the head).
    appended = await feeds.feed.append(CONTOSO, [change(n, size=FEED_ROW_CHARS - 200) for n in range(1, 251)])
    many_small = await feeds.feed.append(CONTOSO, [change(n) for n in range(251, 1501)])

    assert numbers(appended) == list(range(1, 251))
    assert numbers(many_small) == list(range(251, 1501))
    assert numbers(await feeds.feed.read(CONTOSO, 240, 20)) == list(range(241, 261))
    assert numbers(await feeds.feed.read(CONTOSO, 500, 1000)) == list(range(501, 1501))


async def test_read_beyond_the_head_or_of_an_unknown_tenant_is_empty(feeds: Feeds) -> None:
    await feeds.feed.append(CONTOSO, [change(1), change(2)])

    assert await feeds.feed.read(CONTOSO, 2, 10) == []
    assert await feeds.feed.read(CONTOSO, 99, 10) == []
    assert await feeds.feed.read("fabrikam.example", 0, 10) == []


async def test_tenants_have_their_own_sequences(feeds: Feeds) -> None:
    await feeds.feed.append(CONTOSO, [change(1), change(2)])
    other = await feeds.feed.append(CONTOSO_NET, [Change("tenant.connected", CONTOSO_NET, {}, T0)])

    assert numbers(other) == [1]
    assert [c.type for c in await feeds.feed.read(CONTOSO_NET, 0, 10)] == ["tenant.connected"]
    assert numbers(await feeds.feed.read(CONTOSO, 0, 10)) == [1, 2]


async def test_two_workers_appending_at_once_never_share_a_number_nor_leave_a_gap(feeds: Feeds) -> None:
    workers = [feeds.worker(), feeds.worker(), feeds.feed]

    async def append(worker: ChangeFeed, w: int, i: int) -> list[Change]:
        return await worker.append(CONTOSO, [change(1000 * w + i, staff=f"w{w}"), change(1000 * w + i + 500)])

    results = await asyncio.gather(
        *(append(worker, w, i) for i in range(8) for w, worker in enumerate(workers))
    )

    assert sorted(n for appended in results for n in numbers(appended)) == list(range(1, 49))
    for appended in results:  # each append's changes are consecutive
        assert numbers(appended)[1] == numbers(appended)[0] + 1
    read = await feeds.feed.read(CONTOSO, 0, 1000)
    assert numbers(read) == list(range(1, 49))
    written = {c.sequence: c.data for appended in results for c in appended}
    assert {c.sequence: c.data for c in read} == written


async def test_regression_a_worker_whose_remembered_head_is_stale_appends_after_the_others(
    feeds: Feeds,
) -> None:
    one, two = feeds.feed, feeds.worker()
    await one.append(CONTOSO, [change(1)])
    await two.append(CONTOSO, [change(2), change(3)])

    appended = await one.append(CONTOSO, [change(4)])

    assert numbers(appended) == [4]
    assert numbers(await two.read(CONTOSO, 0, 10)) == [1, 2, 3, 4]


async def test_delete_tenant_empties_the_feed_and_numbering_starts_again(feeds: Feeds) -> None:
    other_worker = feeds.worker()
    await feeds.feed.append(CONTOSO, [change(n) for n in range(1, 120)])
    await other_worker.append(CONTOSO, [change(120)])
    await feeds.feed.append(CONTOSO_NET, [change(1)])

    await feeds.feed.delete_tenant(CONTOSO)
    await feeds.feed.delete_tenant(CONTOSO)  # idempotent

    assert await feeds.feed.read(CONTOSO, 0, 1000) == []
    assert numbers(await feeds.feed.read(CONTOSO_NET, 0, 10)) == [1]
    assert numbers(await other_worker.append(CONTOSO, [change(1)])) == [1]  # it remembered the old head
    assert numbers(await feeds.feed.append(CONTOSO, [change(2)])) == [2]


async def test_many_appends_at_once_in_one_worker_each_get_consecutive_numbers_in_order(feeds: Feeds) -> None:
    async def append(caller: int) -> list[Change]:
        return await feeds.feed.append(
            CONTOSO, [change(100 * caller + i, staff=f"c{caller}") for i in range(3)]
        )

    results = await asyncio.gather(*(append(caller) for caller in range(40)))

    for appended in results:
        first = numbers(appended)[0]
        assert numbers(appended) == [first, first + 1, first + 2]
    assert sorted(n for appended in results for n in numbers(appended)) == list(range(1, 121))
    stored = {c.sequence: (c.staff_id, c.data) for c in await feeds.feed.read(CONTOSO, 0, 1000)}
    assert stored == {c.sequence: (c.staff_id, c.data) for appended in results for c in appended}


class _RefusingFeed(TableChangeFeed):
    """The Table feed on Azurite, where the service refuses any transaction holding a marked change (as Azure
    refuses an entity over 1 MiB; Azurite does not enforce that limit)."""

    async def _append_rows(
        self, tenant_id: str, rows: list[list[str]], at: datetime, keys: Sequence[Any] = ()
    ) -> int:
        if any("REFUSED" in text for row in rows for text in row):
            raise ValueError("the service refused the transaction")
        return await super()._append_rows(tenant_id, rows, at, keys)


async def test_regression_an_append_the_service_refuses_fails_alone_not_the_appends_sharing_its_round(
    azurite: Any,
) -> None:
    async with fresh_storage(azurite, "feed") as storage:
        feed = _RefusingFeed(storage)
        bad = Change("event.created", CONTOSO, {"event": {"id": "REFUSED"}}, T0, "anna")
        batches = [[change(n)] for n in range(1, 6)]
        batches.insert(2, [bad])

        results = await asyncio.gather(*(feed.append(CONTOSO, b) for b in batches), return_exceptions=True)

        assert isinstance(results[2], ValueError)
        good = [r for i, r in enumerate(results) if i != 2]
        assert sorted(n for appended in good for n in numbers(appended)) == [1, 2, 3, 4, 5]  # type: ignore[arg-type]
        assert [c.data["event"]["id"] for c in await feed.read(CONTOSO, 0, 10)] == [
            f"AAMk-{n}" for n in range(1, 6)
        ]


def published(n: int, at: datetime) -> Change:
    return replace(change(n), occurred_at=at)


async def test_pruning_deletes_what_is_older_than_the_retention_and_an_older_cursor_is_refused(
    feeds: Feeds,
) -> None:
    early, late = T0, T0 + timedelta(days=40)
    await feeds.feed.append(CONTOSO, [published(n, early) for n in range(1, 51)])
    await feeds.worker().append(CONTOSO, [published(n, late) for n in range(51, 61)])
    await feeds.feed.append(CONTOSO_NET, [published(1, early)])

    assert await feeds.feed.prune(CONTOSO, T0 + timedelta(days=30)) == 50
    assert await feeds.feed.prune(CONTOSO, T0 + timedelta(days=30)) == 0  # idempotent

    for cursor in (0, 17, 49):
        with pytest.raises(ChangesPruned) as pruned:
            await feeds.feed.read(CONTOSO, cursor, 10)
        assert pruned.value.oldest == 50
    with pytest.raises(ChangesPruned):
        await feeds.feed.read_json(CONTOSO, 0, 10)
    assert numbers(await feeds.feed.read(CONTOSO, 50, 100)) == list(range(51, 61))
    assert numbers(await feeds.feed.read(CONTOSO, 55, 2)) == [56, 57]
    assert numbers(await feeds.feed.read(CONTOSO_NET, 0, 10)) == [1]  # another tenant's feed untouched
    # Everything is old now: the newest row stays, so an older cursor still learns it was pruned.
    assert await feeds.feed.prune(CONTOSO, late + timedelta(days=31)) >= 0
    with pytest.raises(ChangesPruned):
        await feeds.feed.read(CONTOSO, 0, 10)
    assert numbers(await feeds.feed.read(CONTOSO, 59, 10)) == [60]
    assert await feeds.feed.read(CONTOSO, 60, 10) == []
    assert numbers(await feeds.feed.append(CONTOSO, [change(61)])) == [61]


async def test_clear_deletes_every_change_and_the_numbering_goes_on(feeds: Feeds) -> None:
    other_worker = feeds.worker()
    await feeds.feed.append(CONTOSO, [change(n) for n in range(1, 120)])
    await other_worker.append(CONTOSO, [change(120)])
    await feeds.feed.append(CONTOSO_NET, [change(1)])

    await feeds.feed.clear(CONTOSO)
    await feeds.feed.clear(CONTOSO)  # idempotent

    for cursor in (0, 60, 119):
        with pytest.raises(ChangesPruned) as pruned:
            await feeds.feed.read(CONTOSO, cursor, 1000)
        assert pruned.value.oldest == 120
    assert await feeds.feed.read(CONTOSO, 120, 1000) == []
    assert numbers(await other_worker.append(CONTOSO, [change(121)])) == [121]
    assert numbers(await feeds.feed.read(CONTOSO, 120, 10)) == [121]
    assert numbers(await feeds.feed.read(CONTOSO_NET, 0, 10)) == [1]
    await feeds.feed.clear("never.example")  # a tenant without a feed: nothing to do
    assert await feeds.feed.read("never.example", 0, 10) == []


async def test_the_head_is_the_last_sequence_appended(feeds: Feeds) -> None:
    assert await feeds.feed.head(CONTOSO) == 0
    await feeds.feed.append(CONTOSO, [change(n) for n in range(1, 4)])
    assert await feeds.worker().head(CONTOSO) == 3  # another worker reads it from the table


# --- keyed appends (a sync run's announcement, published again after a crash) ---------------------


async def test_a_keyed_append_is_appended_once_and_a_repeat_answers_its_first_numbers(feeds: Feeds) -> None:
    first = await feeds.feed.append(CONTOSO, [change(1), change(2)], key="run-1")
    await feeds.feed.append(CONTOSO, [change(3)])
    again = await feeds.worker().append(CONTOSO, [change(1), change(2)], key="run-1")  # another worker

    assert numbers(first) == numbers(again) == [1, 2]
    assert [c.data["event"]["id"] for c in await feeds.feed.read(CONTOSO, 0, 10)] == [
        "AAMk-1",
        "AAMk-2",
        "AAMk-3",
    ]
    assert numbers(await feeds.feed.append(CONTOSO, [change(4)], key="run-2")) == [4]
    assert numbers(await feeds.feed.append(CONTOSO_NET, [change(1)], key="run-1")) == [1]  # per tenant


async def test_a_repeated_key_in_a_round_of_appends_leaves_the_others_appended_in_order(feeds: Feeds) -> None:
    await feeds.feed.append(CONTOSO, [change(1)], key="done")
    results = await asyncio.gather(
        feeds.feed.append(CONTOSO, [change(2)], key="new"),
        feeds.feed.append(CONTOSO, [change(1)], key="done"),
        feeds.feed.append(CONTOSO, [change(3)]),
        *(feeds.feed.append(CONTOSO, [change(n)], key=f"k{n}") for n in range(4, 50)),
    )

    assert numbers(results[1]) == [1]
    stored = await feeds.feed.read(CONTOSO, 0, 100)
    assert numbers(stored) == list(range(1, 50))
    assert sorted(c.data["event"]["id"] for c in stored) == sorted(f"AAMk-{n}" for n in range(1, 50))
    assert await feeds.feed.read(CONTOSO, 49, 10) == []  # the key rows are never read as changes


async def test_a_keyed_append_larger_than_one_transaction_is_appended_once(feeds: Feeds) -> None:
    big = [change(n, size=20_000) for n in range(1, 251)]  # ~5 MB: several transactions
    first = await feeds.feed.append(CONTOSO, big, key="migration")
    again = await feeds.worker().append(CONTOSO, big, key="migration")

    assert numbers(first) == numbers(again) == list(range(1, 251))
    assert await feeds.feed.head(CONTOSO) == 250
