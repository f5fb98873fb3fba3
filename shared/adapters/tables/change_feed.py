"""The `changes` table: the gapless, ordered change feed of each tenant (`ChangeFeed`)."""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters.storage import TenantStorage
from shared.adapters.tables.rows import (
    as_utc,
    delete_partition,
    delete_rows,
    etag_of,
    required_utc,
    sequence_key,
)
from shared.adapters.tables.transactions import (
    Delete,
    Insert,
    Operation,
    Replace,
    TransactionFailed,
    in_transactions,
    submit,
)
from shared.service.change_json import check_change_sizes, encoded_change, stored_change_json
from shared.service.errors import ChangesPruned, StaleWrite
from shared.service.records import Change

CHANGES: Final = "changes"
FEED_HEAD: Final = "head"
FEED_ROW_CHARS: Final = 30_000  # a row's changes, as ASCII JSON (one string property holds 32K UTF-16 units)
FEED_FIRST_PAGE_ROWS: Final = 4  # the first page of a read; later pages are sized from the rows seen
FEED_PRUNE_PAGE: Final = 200  # rows a pruning reads at a time (keys and times only)
KEY_PREFIX: Final = "k"  # a keyed append's row: this and the key (after `head`: no read of changes sees it)
KEYED_PER_ROUND: Final = 40  # keyed appends committed together (their rows share a transaction)


def _pack(encoded: Sequence[str]) -> list[list[str]]:
    """Consecutive changes grouped into rows of at most `FEED_ROW_CHARS` (a bigger change: a row alone)."""
    rows: list[list[str]] = []
    size = 0
    for text in encoded:
        if rows and size + len(text) + 1 <= FEED_ROW_CHARS:
            rows[-1].append(text)
            size += len(text) + 1
        else:
            rows.append([text])
            size = len(text) + 2
    return rows


def _row_chars(row: list[str]) -> int:
    return sum(len(text) + 1 for text in row)


@dataclass
class _Append:
    """One caller's changes waiting for the tenant's writer, and where their sequence numbers go."""

    encoded: list[str]
    done: asyncio.Future[list[int]]
    at: datetime  # the latest `occurred_at` of its changes (when they were published)
    key: str | None = None  # appended once (see `TableChangeFeed`)


@dataclass(frozen=True)
class _Keyed:
    """A keyed append's row in a transaction: its changes are `first`..`last` after the head."""

    key: str
    first: int
    last: int


class _Repeated(Exception):
    """Keys the feed holds already (a transaction naming them failed): their numbers."""

    def __init__(self, found: dict[str, range]) -> None:
        super().__init__(f"keys appended already: {sorted(found)}")
        self.found = found


def _key_row(key: str) -> str:
    return f"{KEY_PREFIX}{key}"


def _settle(entries: Sequence[_Append], error: BaseException) -> None:
    for entry in entries:
        if not entry.done.done():
            entry.done.set_exception(error)


class TableChangeFeed:
    """A gapless, ordered feed per tenant.

    The partition holds a head row (the last sequence number) and rows of consecutive changes, packed up to
    `FEED_ROW_CHARS` and keyed by the last sequence they hold (`First` is the first), so `RowKey gt
    cursor` finds the row holding the change after any cursor. A write puts the head (If-Match) and its
    rows in one entity-group transaction, so readers never see a gap and two writers never share a
    number; the loser of a race re-reads the head and tries again.

    In a worker, one writer per tenant commits for every caller (group commit): appends that arrive while
    a transaction is on its way wait and go together in the next one, in arrival order. Many jobs of one
    tenant finishing at once so cost one transaction per round trip, not one each in turn (a lock held
    across each caller's round trip made them queue behind each other). The writer remembers the head and
    its etag, so a round is one transaction unless another worker wrote in between.

    An append with a key (a sync run's announcement) is appended once: a row `k` + key, holding the
    numbers its changes were given, goes in the transaction that writes them (Insert: a second one fails
    it); a transaction that fails so reads the rows of its keys, answers the repeats with their numbers
    and commits the rest again. A round of several transactions commits its keyed appends one by one,
    each looking for its key before it writes. Key rows sort after `head`: reads and pruning never see
    them; they go with the partition (`delete_tenant`) and are pruned with the changes (`prune`).
    """

    def __init__(self, storage: TenantStorage) -> None:
        self._storage = storage
        self._waiting: dict[str, list[_Append]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}
        self._heads: dict[str, tuple[int, str | None]] = {}  # tenant -> (last sequence, head etag)

    async def _table(self, tenant_id: str) -> TableClient:
        return await (await self._storage.for_tenant(tenant_id)).table(CHANGES)

    async def append(
        self, tenant_id: str, changes: Sequence[Change], *, key: str | None = None
    ) -> list[Change]:
        if not changes:
            return []
        encoded = [encoded_change(c) for c in changes]
        check_change_sizes(encoded, changes)
        at = max(c.occurred_at for c in changes)
        entry = _Append(encoded, asyncio.get_running_loop().create_future(), at, key)
        self._waiting.setdefault(tenant_id, []).append(entry)
        if tenant_id not in self._writers:
            self._writers[tenant_id] = asyncio.create_task(self._write(tenant_id), name=f"feed:{tenant_id}")
        sequences = await asyncio.shield(entry.done)
        return [replace(c, sequence=n) for c, n in zip(changes, sequences, strict=True)]

    async def _write(self, tenant_id: str) -> None:
        """Commit what waits, round after round, until nothing does (then this writer ends)."""
        try:
            while waiting := self._waiting.pop(tenant_id, []):
                now, later = _round(waiting)
                if later:  # first in the next round, before what arrives meanwhile
                    self._waiting[tenant_id] = later + self._waiting.get(tenant_id, [])
                await self._commit(tenant_id, now)  # errors go to its callers, not here
        finally:
            self._writers.pop(tenant_id, None)
            # Left waiting only when the writer itself was cancelled (the worker is stopping).
            _settle(
                self._waiting.pop(tenant_id, []),
                StaleWrite(f"change feed of {tenant_id}: the writer stopped"),
            )

    async def _commit(self, tenant_id: str, entries: list[_Append], *, looked: bool = False) -> None:
        """Write the entries' changes in order; each caller gets its sequence numbers, or the error."""
        encoded = [text for entry in entries for text in entry.encoded]
        at = max(entry.at for entry in entries)
        keyed = [entry for entry in entries if entry.key is not None]
        groups = in_transactions(_pack(encoded), _row_chars, reserved=1 + len(keyed))  # the head, the keys
        if keyed and len(groups) > 1 and not looked:
            await self._apart(tenant_id, entries)
            return
        spans: list[_Keyed] = []
        offset = 0
        for entry in entries:
            if entry.key is not None:
                spans.append(_Keyed(entry.key, offset + 1, offset + len(entry.encoded)))
            offset += len(entry.encoded)
        sequences: list[int] = []
        try:
            for number, rows in enumerate(groups):
                count = sum(len(row) for row in rows)
                keys = spans if number == len(groups) - 1 else []  # one group but for a lone append
                base = len(sequences)
                keys = [_Keyed(k.key, k.first - base, k.last - base) for k in keys]
                last = await self._append_rows(tenant_id, rows, at, keys)
                sequences += range(last - count + 1, last + 1)
        except _Repeated as repeated:
            await self._repeats(tenant_id, entries, repeated.found)
            return
        except Exception as error:
            if len(entries) > 1 and not sequences:
                # Nothing was written: one bad append (a change too large, say) must not fail its round-mates.
                for entry in entries:
                    await self._commit(tenant_id, [entry])
                return
            _settle(entries, error)
            return
        except BaseException:
            _settle(entries, StaleWrite(f"change feed of {tenant_id}: the writer stopped"))
            raise
        offset = 0
        for entry in entries:
            if not entry.done.done():
                entry.done.set_result(sequences[offset : offset + len(entry.encoded)])
            offset += len(entry.encoded)

    async def _apart(self, tenant_id: str, entries: list[_Append]) -> None:
        """A round too large for one transaction, with keyed appends: one by one, each keyed one looking
        for its key before it writes (its key row goes with its last transaction)."""
        for entry in entries:
            if entry.key is not None and (found := await self._numbered(tenant_id, [entry.key])):
                entry.done.set_result(list(found[entry.key]))
                continue
            await self._commit(tenant_id, [entry], looked=True)

    async def _repeats(self, tenant_id: str, entries: list[_Append], found: dict[str, range]) -> None:
        """The repeated keys answered with their numbers; the rest committed again."""
        rest = [entry for entry in entries if entry.key not in found]
        for entry in entries:
            if entry.key in found and not entry.done.done():
                entry.done.set_result(list(found[entry.key]))
        if rest:
            await self._commit(tenant_id, rest)

    async def head(self, tenant_id: str) -> int:
        """The last sequence number appended (read from the head row, never the cache); 0 for none."""
        try:
            head = await (await self._table(tenant_id)).get_entity(tenant_id, FEED_HEAD)
        except ResourceNotFoundError:
            return 0
        return int(head["Last"])

    async def _head(self, table: TableClient, tenant_id: str) -> tuple[int, str | None]:
        cached = self._heads.get(tenant_id)
        if cached is not None:
            return cached
        try:
            head = await table.get_entity(tenant_id, FEED_HEAD)
        except ResourceNotFoundError:
            return 0, None
        return int(head["Last"]), etag_of(head)

    async def _numbered(self, tenant_id: str, keys: Sequence[str]) -> dict[str, range]:
        """The numbers given to the keys the feed holds."""
        table = await self._table(tenant_id)

        async def numbers(key: str) -> tuple[str, range | None]:
            try:
                row = await table.get_entity(tenant_id, _key_row(key))
            except ResourceNotFoundError:
                return key, None
            return key, range(int(row["First"]), int(row["Last"]) + 1)

        found = await asyncio.gather(*(numbers(key) for key in keys))
        return {key: numbered for key, numbered in found if numbered is not None}

    async def _append_rows(
        self, tenant_id: str, rows: list[list[str]], at: datetime, keys: Sequence[_Keyed] = ()
    ) -> int:
        """Write the rows after the head in one transaction, with the rows of the keys; the last
        sequence written. `_Repeated` when the feed holds one of the keys."""
        table = await self._table(tenant_id)
        for attempt in range(100):
            last, etag = await self._head(table, tenant_id)
            operations: list[Operation] = []
            sequence = last
            for row in rows:
                first, sequence = sequence + 1, sequence + len(row)
                operations.append(Insert(self._row(tenant_id, first, sequence, row, at)))
            for keyed in keys:
                entity = {
                    "PartitionKey": tenant_id,
                    "RowKey": _key_row(keyed.key),
                    "First": last + keyed.first,
                    "Last": last + keyed.last,
                    "At": at,
                }
                operations.append(Insert(entity))
            head_entity = {"PartitionKey": tenant_id, "RowKey": FEED_HEAD, "Last": sequence}
            operations.insert(0, Insert(head_entity) if etag is None else Replace(head_entity, etag))
            try:
                etags = await submit(table, operations)
            except TransactionFailed as error:
                if not error.lost_race:
                    raise
                self._heads.pop(tenant_id, None)
                if keys and (found := await self._numbered(tenant_id, [k.key for k in keys])):
                    raise _Repeated(found) from error
                # Another writer moved the head first: forget ours, back off a little (jittered), try again.
                await asyncio.sleep(random.uniform(0, 0.005 * min(attempt + 1, 10)))  # noqa: S311
                continue
            except BaseException:
                self._heads.pop(tenant_id, None)  # the outcome is unknown: read the head next time
                raise
            new_etag = etags[0]
            if new_etag:
                self._heads[tenant_id] = (sequence, new_etag)
            else:
                self._heads.pop(tenant_id, None)
            return sequence
        raise StaleWrite(f"change feed of {tenant_id}: too much contention")

    @staticmethod
    def _row(tenant_id: str, first: int, last: int, encoded: Sequence[str], at: datetime) -> dict[str, Any]:
        text = "\n".join(encoded)  # a line per change: a reader decodes only the changes it wants
        entity: dict[str, Any] = {
            "PartitionKey": tenant_id,
            "RowKey": sequence_key(last),
            "First": first,
            "At": at,  # when its changes were published: the retention prunes by it
        }
        for i in range(0, len(text), FEED_ROW_CHARS):  # only a single oversized change spills over
            entity[f"Changes{i // FEED_ROW_CHARS}"] = text[i : i + FEED_ROW_CHARS]
        return entity

    @staticmethod
    def _lines_of(entity: Any, after: int, until: int) -> list[tuple[int, str]]:
        """The row's stored changes numbered after `after` up to `until`, with their numbers."""
        parts: list[str] = []
        while (part := entity.get(f"Changes{len(parts)}")) is not None:
            parts.append(part)
        if not parts:
            return []  # the floor row a clear leaves: no changes, only where the feed now starts
        lines = "".join(parts).split("\n")
        first = int(entity["First"])
        numbers = range(max(first, after + 1), min(first + len(lines) - 1, until) + 1)
        return [(sequence, lines[sequence - first]) for sequence in numbers]

    async def _stored(self, tenant_id: str, after: int, limit: int) -> list[tuple[int, str]]:
        """Up to `limit` stored changes after `after`. A row may hold one change or hundreds: the first
        page is a few rows, later pages are sized from the changes per row seen so far."""
        table = await self._table(tenant_id)
        found: list[tuple[int, str]] = []
        key = sequence_key(after)
        until = after + limit
        rows_wanted = max(1, min(limit, FEED_FIRST_PAGE_ROWS))
        rows_read = 0
        while len(found) < limit:
            pages = table.query_entities(
                "PartitionKey eq @pk and RowKey gt @after and RowKey lt @head",
                parameters={"pk": tenant_id, "after": key, "head": FEED_HEAD},
                results_per_page=rows_wanted,
            ).by_page()
            try:
                page = [e async for e in await pages.__anext__()]
            except StopAsyncIteration:
                break
            for entity in page:
                if not found and int(entity["First"]) > after + 1:
                    # The feed is gapless: what came between the cursor and this row was pruned.
                    raise ChangesPruned(tenant_id, after, int(entity["First"]) - 1)
                found += self._lines_of(entity, after, until)
            rows_read += len(page)
            if not page or getattr(pages, "continuation_token", None) is None:
                break
            key = page[-1]["RowKey"]
            per_row = max(1.0, len(found) / rows_read)
            rows_wanted = max(1, min(1000, math.ceil((limit - len(found)) / per_row)))
        return found[:limit]

    async def read(self, tenant_id: str, after: int, limit: int) -> list[Change]:
        changes: list[Change] = []
        for sequence, line in await self._stored(tenant_id, after, limit):
            entry = json.loads(line)
            changes.append(
                Change(
                    type=entry["type"],
                    tenant_id=tenant_id,
                    data=entry["data"],
                    occurred_at=required_utc(entry["occurred_at"]),
                    staff_id=entry["staff_id"],
                    sequence=sequence,
                )
            )
        return changes

    async def read_json(self, tenant_id: str, after: int, limit: int) -> list[tuple[int, str]]:
        stored = await self._stored(tenant_id, after, limit)
        return [(sequence, stored_change_json(tenant_id, sequence, line)) for sequence, line in stored]

    async def prune(self, tenant_id: str, before: datetime) -> int:
        """Delete the rows whose changes were all published before `before`, oldest first, never the
        newest row (it tells a reader with an older cursor that the feed moved on); answers how many
        changes went. Rows are in sequence order and published in that order, so the scan stops at the
        first row to keep: a day's pruning reads what it deletes and one row more, and deletes 100 rows a
        transaction."""
        table = await self._table(tenant_id)
        old: list[Any] = []  # rows old enough (keys and times only), oldest first
        pages = table.query_entities(
            "PartitionKey eq @pk and RowKey lt @head",
            parameters={"pk": tenant_id, "head": FEED_HEAD},
            select=["RowKey", "First", "At", "Timestamp"],
            results_per_page=FEED_PRUNE_PAGE,
        ).by_page()
        young = False
        async for page in pages:
            async for entity in page:
                # Rows written before `At` existed (and a clear's floor row) go by their write time.
                at = as_utc(entity.get("At")) or as_utc(entity.metadata.get("timestamp"))
                if at is None or at >= before:
                    young = True
                    break
                old.append(entity)
            if young:
                break
        gone = old if young else old[:-1]  # the newest row stays
        await delete_rows(table, [Delete(tenant_id, e["RowKey"]) for e in gone])  # 100 a transaction
        await self._prune_keys(table, tenant_id, before)
        return sum(int(e["RowKey"]) - int(e["First"]) + 1 for e in gone)

    @staticmethod
    async def _prune_keys(table: TableClient, tenant_id: str, before: datetime) -> None:
        """Key rows go with the retention too (an announcement is published again within minutes)."""
        keys = table.query_entities(
            "PartitionKey eq @pk and RowKey gt @first and RowKey lt @after",
            parameters={"pk": tenant_id, "first": KEY_PREFIX, "after": chr(ord(KEY_PREFIX) + 1)},
            select=["RowKey", "At"],
        )
        old = [e["RowKey"] async for e in keys if (as_utc(e.get("At")) or before) < before]
        await delete_rows(table, [Delete(tenant_id, row_key) for row_key in old])

    async def clear(self, tenant_id: str) -> None:
        """Delete every change, keeping the head (numbering goes on) and a floor row under the last
        sequence (no changes; a reader with an older cursor learns the feed moved on). Idempotent."""
        writer = self._writers.get(tenant_id)
        if writer is not None:  # this worker's appends land first
            await asyncio.wait({writer})
        table = await self._table(tenant_id)
        try:
            head = await table.get_entity(tenant_id, FEED_HEAD)
        except ResourceNotFoundError:
            return
        last = int(head["Last"])
        floor = {"PartitionKey": tenant_id, "RowKey": sequence_key(last), "First": last + 1}
        await table.upsert_entity(floor, mode=UpdateMode.REPLACE)
        rows = table.query_entities(
            "PartitionKey eq @pk and RowKey lt @floor",
            parameters={"pk": tenant_id, "floor": sequence_key(last)},
            select=["RowKey"],
        )
        await delete_rows(table, [Delete(tenant_id, e["RowKey"]) async for e in rows])

    async def delete_tenant(self, tenant_id: str) -> None:
        writer = self._writers.get(tenant_id)
        if writer is not None:  # let this worker's appends land first (they would survive the delete)
            await asyncio.wait({writer})
        self._heads.pop(tenant_id, None)
        await delete_partition(await self._table(tenant_id), tenant_id)
        self._heads.pop(tenant_id, None)


def _round(waiting: list[_Append]) -> tuple[list[_Append], list[_Append]]:
    """The appends one round commits (at most `KEYED_PER_ROUND` keyed ones), and those left for the next."""
    keyed = 0
    for index, entry in enumerate(waiting):
        keyed += entry.key is not None
        if keyed > KEYED_PER_ROUND:
            return waiting[:index], waiting[index:]
    return waiting, []
