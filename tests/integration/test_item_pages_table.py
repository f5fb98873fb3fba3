"""Item statuses packed into pages on Azurite (shared/adapters/tables/item_statuses.TableItemStatuses): the
rows they take, and writers in two workers racing on one user's pages."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.adapters.storage import StorageClients
from shared.adapters.tables import item_statuses
from shared.adapters.tables.item_statuses import (
    ITEMS_MARKER,
    OUTLOOK_ITEMS,
    TableItemStatuses,
    is_page_key,
    user_partition,
)
from tests.fakes.statuses import item_status as status
from tests.fixtures.azurite import fresh_storage

pytestmark = pytest.mark.integration

TENANT = "contoso.example"


@pytest.fixture
async def storage(azurite: Any) -> AsyncIterator[StorageClients]:
    async with fresh_storage(azurite, "pages") as clients:
        yield clients


async def rows(storage: StorageClients, staff_id: str) -> dict[str, str]:
    """RowKey -> ETag of the user's partition."""
    table = await storage.table(OUTLOOK_ITEMS)
    query = table.query_entities("PartitionKey eq @pk", parameters={"pk": user_partition(TENANT, staff_id)})
    return {e["RowKey"]: str(e.metadata["etag"]) async for e in query}


async def test_a_mailbox_is_one_row_and_the_marker(storage: StorageClients) -> None:
    statuses = TableItemStatuses(storage)
    await statuses.apply(TENANT, "anna", [status(f"AAMk{n}=", n) for n in range(80)], [])
    assert set(await rows(storage, "anna")) == {ITEMS_MARKER, "p"}


async def test_the_same_plan_again_rewrites_no_row(storage: StorageClients) -> None:
    statuses = TableItemStatuses(storage)
    plan = ([status(f"AAMk{n}=", n) for n in range(80)], ["AAMk3="])
    await statuses.apply(TENANT, "anna", *plan)
    before = await rows(storage, "anna")
    await TableItemStatuses(storage).apply(TENANT, "anna", *plan)  # a redelivered job, another worker
    assert await rows(storage, "anna") == before


async def test_notes_are_rows_of_their_own_until_the_run_folds_them(storage: StorageClients) -> None:
    run, write_side = TableItemStatuses(storage), TableItemStatuses(storage)
    await run.apply(TENANT, "anna", [status(f"AAMk{n}=", n) for n in range(80)], [])
    page_etag = (await rows(storage, "anna"))["p"]

    await write_side.note(TENANT, "anna", [status("AAMk-written=", 1)], ["AAMk3="])

    after_notes = await rows(storage, "anna")
    assert after_notes["p"] == page_etag  # the page is the run's alone
    assert set(after_notes) == {ITEMS_MARKER, "p", "nAAMk-written!3D", "nAAMk3!3D"}
    statuses = await run.load(TENANT, "anna")
    await run.apply(TENANT, "anna", [], [])
    assert set(await rows(storage, "anna")) == {ITEMS_MARKER, "p"}
    assert await run.load(TENANT, "anna") == statuses
    assert "AAMk3=" not in statuses and statuses["AAMk-written="] == status("AAMk-written=", 1)


async def test_a_large_mailbox_takes_pages_under_the_limit(storage: StorageClients) -> None:
    statuses = TableItemStatuses(storage)
    mailbox = [status(f"AAMkAGI2NGVhZTVlLTI1OGMtNDI4My1iZmE1LTI5OTg0Y{n:06d}=", n) for n in range(3000)]
    await statuses.apply(TENANT, "anna", mailbox, [])
    keys = set(await rows(storage, "anna"))
    pages = keys - {ITEMS_MARKER}
    assert ITEMS_MARKER in keys and all(is_page_key(k) for k in pages)
    assert 16 <= len(pages) <= 40  # split, and packed: 3,000 items in a few dozen rows
    loaded = await TableItemStatuses(storage).load(TENANT, "anna")
    assert loaded == {s.graph_id: s for s in mailbox}


async def test_a_writer_with_stale_pages_reads_again_and_loses_nothing(storage: StorageClients) -> None:
    first, second = TableItemStatuses(storage), TableItemStatuses(storage)  # two workers
    await first.apply(TENANT, "anna", [status(f"AAMk{n}=", n) for n in range(10)], [])
    await first.load(TENANT, "anna")  # remembers the pages for its next apply
    await second.apply(TENANT, "anna", [status("AAMk-written=", 1)], ["AAMk0="])  # a run elsewhere

    await first.apply(TENANT, "anna", [status("AAMk1=", 99)], [])  # on stale pages: a lost race, then again

    loaded = await second.load(TENANT, "anna")
    assert loaded["AAMk1="] == status("AAMk1=", 99)
    assert loaded["AAMk-written="] == status("AAMk-written=", 1)
    assert "AAMk0=" not in loaded and len(loaded) == 10


async def test_concurrent_writers_splitting_one_page_keep_every_status(
    storage: StorageClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_statuses, "PAGE_CHARS", 4_000)
    workers = [TableItemStatuses(storage) for _ in range(4)]
    await workers[0].apply(TENANT, "anna", [status(f"AAMk{n}=", n) for n in range(20)], [])
    for worker in workers:
        await worker.load(TENANT, "anna")

    batches = [[status(f"AAMk-{w}-{n}=", n) for n in range(40)] for w in range(len(workers))]
    await asyncio.gather(
        *(w.apply(TENANT, "anna", batch, []) for w, batch in zip(workers, batches, strict=True))
    )

    loaded = await TableItemStatuses(storage).load(TENANT, "anna")
    assert len(loaded) == 20 + 40 * len(workers)
    prefixes = sorted(k[1:] for k in await rows(storage, "anna") if k != ITEMS_MARKER)
    assert sum(16.0 ** -len(p) for p in prefixes) == 1.0  # every slot in exactly one page
    assert not any(b.startswith(a) for a, b in itertools.pairwise(prefixes))
