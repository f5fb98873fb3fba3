"""The `outlookitems` table: every Outlook item's status, packed into pages (`ItemStatusRepository`).

A mailbox holds tens to thousands of items, and the sync reads all of a user's statuses on every run
that plans anything. One row per item made a migration write a row per event (every row a separate
entity to index and store); packed, a typical mailbox is one row and the largest a few dozen.

Each item belongs to a hash slot (`slot`: 16 hex digits of its Graph id's BLAKE2b). A page holds the
items whose slot starts with its prefix and is stored as one row, `p` + prefix, holding the statuses
as compact JSON lines split over string properties of `PART_CHARS`. A user's pages always cover every
slot exactly once: there is none (nothing stored yet), or the root page alone, or the pages a split
left. A page over `PAGE_CHARS` splits into all sixteen children (empty ones too) in the transaction that
deletes it, so every page is created either as the first root or by such a split, and each is guarded
(Insert fails on an existing row, Replace and Delete on a changed one): concurrent writers never
break the cover, they lose a race and read again.

A user's partition is `escape_key(tenant id)` `|` `escape_key(staff id)`; besides the pages it holds
notes (`n` + escaped Graph id), a marker row (`~`) and, between a run's `apply` and its `announced`, the
announcement it publishes (`a0`, `a1`, ...: its key and its changes as the feed encodes them, one per
line): see `TableItemStatuses`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient

from shared.adapters.storage import TenantStorage
from shared.adapters.tables.rows import (
    RACE_ATTEMPTS,
    TableAdapter,
    delete_partition,
    delete_rows,
    escape_key,
    etag_of,
    unescape_key,
)
from shared.adapters.tables.transactions import (
    MAX_OPERATIONS,
    MAX_TRANSACTION_CHARS,
    Delete,
    Insert,
    Operation,
    Replace,
    TransactionFailed,
    Upsert,
    in_transactions,
    submit,
)
from shared.domain.planner import ItemStatus
from shared.service.change_json import decoded_change, encoded_change
from shared.service.errors import StaleWrite
from shared.service.records import Announcement

OUTLOOK_ITEMS: Final = "outlookitems"
ITEMS_MARKER: Final = "~"  # a user's outlookitems partition holds statuses only if it holds this row
ANNOUNCEMENT_PREFIX: Final = "a"  # an announcement's rows: this and their number from 0
NOTE_PREFIX: Final = "n"  # a note's RowKey: this and the escaped Graph id (a page's starts with `p`)
USER_SEPARATOR: Final = "|"  # never produced by escape_key, so tenant|staff splits one way only
ROUND_ITEMS: Final = 500  # statuses written per round of an apply (a round's page splits fit a transaction)
REMEMBERED_USERS: Final = 64  # users whose loaded pages a worker keeps for the apply that follows
PAGE_KEY: Final = "p"  # a page's RowKey is this and its slot prefix
PART_CHARS: Final = 30_000  # characters per string property (one holds 32K UTF-16 units)
PAGE_CHARS: Final = 240_000  # a page over this splits: 480 KB as stored (UTF-16), half an entity's 1 MiB
SLOT_DIGITS: Final = 16
HEX: Final = "0123456789abcdef"
_AFTER_SEPARATOR: Final = chr(ord(USER_SEPARATOR) + 1)
_AFTER_ANNOUNCEMENT: Final = chr(ord(ANNOUNCEMENT_PREFIX) + 1)
OUTBOX_ROWS_WITH_PAGES: Final = 20  # an announcement of more rows goes in a transaction of its own


def user_partition(tenant_id: str, staff_id: str) -> str:
    return f"{escape_key(tenant_id)}{USER_SEPARATOR}{escape_key(staff_id)}"


def slot(graph_id: str) -> str:
    return hashlib.blake2b(graph_id.encode(), digest_size=SLOT_DIGITS // 2).hexdigest()


def page_key(prefix: str) -> str:
    return f"{PAGE_KEY}{prefix}"


def is_page_key(row_key: str) -> bool:
    return row_key.startswith(PAGE_KEY) and all(c in HEX for c in row_key[len(PAGE_KEY) :])


def encode_status(status: ItemStatus) -> str:
    """One status as a compact ASCII JSON array (its length is what is stored); trailing empties left off."""
    fields: list[Any] = [
        status.graph_id,
        status.change_key,
        status.ical_uid,
        status.content_hash,
        status.ends_at.astimezone(UTC).isoformat(),
        int(status.admitted),
        status.appointment_id,
        status.series_master_id,
        int(status.written),
        int(status.master),
        status.original_start.astimezone(UTC).isoformat() if status.original_start else None,
        int(status.cancelled),
        int(status.organised_meeting),
        status.response,
    ]
    while fields[-1] in (None, 0):
        fields.pop()
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True)


def decode_status(line: str) -> ItemStatus:
    fields: list[Any] = json.loads(line)
    fields += [None] * (14 - len(fields))
    graph_id, change_key, ical_uid, content_hash, ends_at, admitted, appointment_id, master_id = fields[:8]
    return ItemStatus(
        graph_id=graph_id,
        change_key=change_key,
        ical_uid=ical_uid,
        content_hash=content_hash,
        ends_at=datetime.fromisoformat(ends_at),
        admitted=bool(admitted),
        appointment_id=appointment_id,
        series_master_id=master_id,
        written=bool(fields[8]),
        master=bool(fields[9]),
        original_start=datetime.fromisoformat(fields[10]) if fields[10] else None,
        cancelled=bool(fields[11]),
        organised_meeting=bool(fields[12]),
        response=fields[13],
    )


@dataclass
class Page:
    """One stored (or about to be stored) page: its slot prefix, its row's ETag (None: not stored),
    and its items' encoded lines by Graph id."""

    prefix: str
    etag: str | None = None
    lines: dict[str, str] = field(default_factory=dict)

    @property
    def chars(self) -> int:
        return sum(len(line) + 1 for line in self.lines.values())

    def statuses(self) -> Iterable[ItemStatus]:
        return (decode_status(line) for line in self.lines.values())


def page_entity(partition: str, page: Page) -> dict[str, Any]:
    text = "\n".join(page.lines[graph_id] for graph_id in sorted(page.lines))
    entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": page_key(page.prefix)}
    for start in range(0, len(text), PART_CHARS):
        entity[f"Items{start // PART_CHARS}"] = text[start : start + PART_CHARS]
    return entity


def page_from_entity(entity: Mapping[str, Any], etag: str | None) -> Page:
    parts: list[str] = []
    while (part := entity.get(f"Items{len(parts)}")) is not None:
        parts.append(part)
    text = "".join(parts)
    page = Page(str(entity["RowKey"])[len(PAGE_KEY) :], etag)
    for line in text.split("\n") if text else ():
        graph_id = json.loads(line)[0]  # a few hundred per page at most; decoded fully on load
        page.lines[graph_id] = line
    return page


def leaf(pages: Mapping[str, Page], item_slot: str) -> str:
    """The prefix of the page that holds a slot (pages cover every slot once; none: the root, new)."""
    for length in range(SLOT_DIGITS + 1):
        if item_slot[:length] in pages:
            return item_slot[:length]
    if pages:
        raise ValueError(f"the pages do not cover slot {item_slot}")
    return ""


@dataclass(frozen=True)
class Unit:
    """Writes that must commit together: a page rewritten or created, or a page split into its children
    (the page deleted and the children inserted in one transaction)."""

    stored: Page | None  # the stored page this rewrites or splits; None: a page created where none was
    pages: tuple[Page, ...]  # the pages there after it

    @property
    def split(self) -> bool:
        stored = self.stored
        return len(self.pages) != 1 or (stored is not None and stored.prefix != self.pages[0].prefix)

    @property
    def creates(self) -> bool:
        """A page row appears (the partition's marker goes along in the same transaction)."""
        return self.stored is None or self.split

    @property
    def chars(self) -> int:
        return sum(page.chars for page in self.pages)

    @property
    def operation_count(self) -> int:
        return len(self.pages) + (1 if self.split and self.stored is not None else 0)

    def operations(self, partition: str) -> list[Operation]:
        """The unit's operations; those that store a page (Insert, Replace) come in `pages` order."""
        if not self.split:
            entity = page_entity(partition, self.pages[0])
            return [Insert(entity) if self.stored is None else Replace(entity, self._etag())]
        inserts: list[Operation] = [Insert(page_entity(partition, page)) for page in self.pages]
        if self.stored is None:
            return inserts
        return [Delete(partition, page_key(self.stored.prefix), self._etag()), *inserts]

    def _etag(self) -> str:
        assert self.stored is not None and self.stored.etag is not None
        return self.stored.etag


def changed_pages(
    pages: Mapping[str, Page], upserts: Sequence[ItemStatus], deletes: Sequence[str]
) -> list[Unit]:
    """The writes that apply `deletes`, then `upserts` (the last of an id wins), to `pages`: one unit per
    page whose content changes, a split where a page outgrows `PAGE_CHARS`. `pages` is not modified."""
    touched: dict[str, Page] = {}

    def page_for(graph_id: str) -> Page:
        prefix = leaf(pages, slot(graph_id))
        if prefix not in touched:
            stored = pages.get(prefix)
            touched[prefix] = Page(prefix, None, dict(stored.lines)) if stored else Page(prefix)
        return touched[prefix]

    for graph_id in deletes:
        page_for(graph_id).lines.pop(graph_id, None)
    for status in upserts:
        page_for(status.graph_id).lines[status.graph_id] = encode_status(status)
    units: list[Unit] = []
    for prefix, page in touched.items():
        stored = pages.get(prefix)
        if stored is not None and stored.lines == page.lines:
            continue  # already so (a redelivered job)
        if stored is None and not page.lines:
            continue  # deletes of ids never stored
        grown = page.chars > PAGE_CHARS and len(prefix) < SLOT_DIGITS
        units.append(Unit(stored, tuple(_split(page)) if grown else (page,)))
    return units


def _split(page: Page) -> list[Page]:
    """All sixteen children, each split again while still too large."""
    children = {digit: Page(page.prefix + digit) for digit in HEX}
    for graph_id, line in page.lines.items():
        children[slot(graph_id)[len(page.prefix)]].lines[graph_id] = line
    leaves: list[Page] = []
    for child in children.values():
        if child.chars > PAGE_CHARS and len(child.prefix) < SLOT_DIGITS:
            leaves += _split(child)
        else:
            leaves.append(child)
    return leaves


@dataclass(frozen=True, slots=True)
class _Note:
    """A status noted from outside the user's sync run (or its removal: `status` None)."""

    graph_id: str
    etag: str
    status: ItemStatus | None


@dataclass(slots=True)
class _Stored:
    """A user's partition as read: its pages, its notes (by Graph id) and an announcement's rows."""

    pages: dict[str, Page] = field(default_factory=dict)
    notes: dict[str, _Note] = field(default_factory=dict)
    announcement: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # row key -> entity

    def pending(self, tenant_id: str) -> Announcement | None:
        return announcement_of(tenant_id, list(self.announcement.values()))

    def statuses(self) -> dict[str, ItemStatus]:
        merged = {status.graph_id: status for page in self.pages.values() for status in page.statuses()}
        for graph_id, note in self.notes.items():  # a note is newer than any page
            if note.status is None:
                merged.pop(graph_id, None)
            else:
                merged[graph_id] = note.status
        return merged


class TableItemStatuses(TableAdapter):
    """`ItemStatusRepository`: one partition per user, its statuses packed into pages (see above), and
    notes from outside the user's sync run.

    The user's sync run (one at a time, under its lease) writes the pages. Others (the write side,
    storing the events it wrote) put a note row per item, `n` + escaped Graph id, without reading:
    `load` lays the notes over the pages, and the run's next `apply` folds the notes it read into the
    pages, then deletes them If-Match, so a note written meanwhile stays and still counts.

    Every transaction that creates a page or a note also puts a marker row (`ITEMS_MARKER`) in the
    partition, so a partition without the marker holds no statuses. A first migration (`probably_empty`)
    reads the marker by key and skips the partition query when it is absent: a point read costs the same
    everywhere, while a query costs a scan of the whole table on Azurite.

    An `apply` needs the pages and their ETags: `load` leaves what it read for the `apply` of the same
    user that follows in the same run (a few users' worth, in this worker only); otherwise `apply` reads
    the partition first. Stale knowledge only costs a lost race: every page write is guarded, and the
    loser reads again and recomputes.
    """

    def __init__(self, storage: TenantStorage) -> None:
        super().__init__(storage, OUTLOOK_ITEMS)
        self._loaded: OrderedDict[str, _Stored] = OrderedDict()  # partition -> as read, newest last
        self._pending: OrderedDict[str, Announcement | None] = OrderedDict()  # partition -> as `load` read
        self._outbox: dict[str, tuple[str, list[str]]] = {}  # partition -> (key, row keys) last seen

    async def load(
        self, tenant_id: str, staff_id: str, *, probably_empty: bool = False
    ) -> dict[str, ItemStatus]:
        table = await self._table(tenant_id)
        partition = user_partition(tenant_id, staff_id)
        stored: _Stored | None = None
        if probably_empty:
            try:
                await table.get_entity(partition, ITEMS_MARKER, select=["RowKey"])
            except ResourceNotFoundError:
                stored = _Stored()
        if stored is None:
            stored = await self._read(table, partition)
        self._remember(partition, stored)
        self._pending.pop(partition, None)
        self._pending[partition] = pending = stored.pending(tenant_id)
        while len(self._pending) > REMEMBERED_USERS:
            self._pending.popitem(last=False)
        if pending is not None:
            self._outbox[partition] = (pending.key, sorted(stored.announcement))
        return stored.statuses()

    async def pending(self, tenant_id: str, staff_id: str) -> Announcement | None:
        partition = user_partition(tenant_id, staff_id)
        if partition in self._pending:
            return self._pending[partition]
        table = await self._table(tenant_id)
        return (await self._read(table, partition, announcement_only=True)).pending(tenant_id)

    async def announced(self, tenant_id: str, staff_id: str, key: str) -> None:
        """Its rows deleted: those this worker wrote or read (one transaction), else those a read finds
        holding `key`."""
        partition = user_partition(tenant_id, staff_id)
        self._pending.pop(partition, None)
        table = await self._table(tenant_id)
        known = self._outbox.pop(partition, None)
        if known is not None and known[0] == key:
            row_keys = known[1]
        else:
            rows = (await self._read(table, partition, announcement_only=True)).announcement
            if any(row.get("Key") != key for row in rows.values()):
                return  # another announcement's (never removed here)
            row_keys = list(rows)
        await delete_rows(table, [Delete(partition, row_key) for row_key in row_keys])

    async def apply(
        self,
        tenant_id: str,
        staff_id: str,
        upserts: Sequence[ItemStatus],
        deletes: Sequence[str],
        *,
        announcing: Announcement | None = None,
    ) -> None:
        """The notes read, then deletes, then upserts (a later upsert of an id wins), written page by
        page; then the folded notes are deleted.

        Up to `ROUND_ITEMS` upserts are written at a time, so that a page split stays one transaction
        whatever the mailbox's size. Each transaction leaves a whole, consistent set of pages; a crash
        between them leaves part of the plan applied, and applying it again finishes it. The
        announcement's rows go in the first transaction (with the pages when they fit, else before them):
        a crash after it leaves the announcement for the next run, which publishes it first.
        """
        partition = user_partition(tenant_id, staff_id)
        table = await self._table(tenant_id)
        self._pending.pop(partition, None)
        stored = self._loaded.pop(partition, None)
        outbox = announcement_rows(partition, announcing) if announcing is not None else []
        if announcing is not None:
            self._outbox[partition] = (announcing.key, [str(row.entity["RowKey"]) for row in outbox])
        for _ in range(RACE_ATTEMPTS):
            if stored is None:
                stored = await self._read(table, partition)
            effects = {g: note.status for g, note in stored.notes.items()} | _effects(upserts, deletes)
            items = [status for status in effects.values() if status is not None]
            gone = [graph_id for graph_id, status in effects.items() if status is None]
            try:
                for start in range(0, max(len(items), 1), ROUND_ITEMS):
                    chunk, dropped = items[start : start + ROUND_ITEMS], gone if start == 0 else []
                    first = outbox if start == 0 else []
                    await self._write(table, partition, stored.pages, chunk, dropped, first)
                break
            except TransactionFailed as error:
                if not error.lost_race:
                    raise
                stored = None  # another writer was first: read again and recompute
                await asyncio.sleep(random.uniform(0, 0.01))  # noqa: S311 (jitter, not a secret)
        else:
            raise StaleWrite(f"statuses of {staff_id}: too much contention")
        # The folded notes go If-Match: one noted again meanwhile stays (it is newer than the pages).
        await delete_rows(
            table, [Delete(partition, _note_key(n.graph_id), n.etag) for n in stored.notes.values()]
        )

    async def note(
        self, tenant_id: str, staff_id: str, upserts: Sequence[ItemStatus], deletes: Sequence[str]
    ) -> None:
        partition = user_partition(tenant_id, staff_id)
        rows = [_note_entity(partition, g, status) for g, status in _effects(upserts, deletes).items()]
        table = await self._table(tenant_id)
        for start in range(0, len(rows), MAX_OPERATIONS - 1):  # the marker goes with them (see the class)
            await submit(
                table,
                [_marker(partition), *(Upsert(row) for row in rows[start : start + MAX_OPERATIONS - 1])],
            )

    @staticmethod
    async def _write(  # noqa: PLR0917 (the pages, the plan and the outbox)
        table: TableClient,
        partition: str,
        pages: dict[str, Page],
        upserts: Sequence[ItemStatus],
        deletes: Sequence[str],
        outbox: Sequence[Upsert] = (),
    ) -> None:
        """Commit the changed pages, units grouped into transactions; `pages` follows each commit. The
        `outbox` rows go first, in the first transaction (alone, with the marker, when the pages would
        not leave them room)."""
        units = changed_pages(pages, upserts, deletes)
        outbox_chars = sum(_chars(row.entity) for row in outbox)
        together = len(outbox) <= OUTBOX_ROWS_WITH_PAGES and outbox_chars <= MAX_TRANSACTION_CHARS // 2
        if outbox and (not together or not units):
            await submit(table, [_marker(partition), *outbox])
            outbox = ()
        groups = in_transactions(
            units,
            lambda u: u.chars,
            lambda u: u.operation_count,
            reserved=1 + len(outbox),
            max_chars=MAX_TRANSACTION_CHARS - outbox_chars,
        )
        for number, group in enumerate(groups):  # each with room for the marker (and the outbox)
            first = list(outbox) if number == 0 else []
            marked = bool(first) or any(unit.creates for unit in group)
            operations: list[Operation] = []
            if marked:  # the marker goes with the first page (see the class)
                operations.append(_marker(partition))
            operations += first
            for unit in group:
                operations += unit.operations(partition)
            etags = iter(await submit(table, operations))
            if marked:
                next(etags)  # the marker's
            for _ in first:
                next(etags)
            for unit in group:
                if unit.stored is not None:
                    pages.pop(unit.stored.prefix, None)
                if unit.split and unit.stored is not None:
                    next(etags)  # the deleted page's
                for page in unit.pages:
                    page.etag = next(etags) or "*"
                    pages[page.prefix] = page

    @staticmethod
    async def _read(table: TableClient, partition: str, *, announcement_only: bool = False) -> _Stored:
        if announcement_only:
            query = table.query_entities(
                "PartitionKey eq @pk and RowKey ge @first and RowKey lt @after",
                parameters={"pk": partition, "first": ANNOUNCEMENT_PREFIX, "after": _AFTER_ANNOUNCEMENT},
            )
        else:
            query = table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": partition}, results_per_page=1000
            )
        stored = _Stored()
        async for entity in query:
            row_key = str(entity["RowKey"])
            if row_key.startswith(ANNOUNCEMENT_PREFIX):
                stored.announcement[row_key] = entity
            elif is_page_key(row_key):
                page = page_from_entity(entity, etag_of(entity))
                stored.pages[page.prefix] = page
            elif row_key.startswith(NOTE_PREFIX):
                graph_id = unescape_key(row_key[len(NOTE_PREFIX) :])
                line = entity.get("Status")
                status = decode_status(line) if line else None
                stored.notes[graph_id] = _Note(graph_id, etag_of(entity) or "*", status)
        return stored

    def _remember(self, partition: str, stored: _Stored) -> None:
        self._loaded.pop(partition, None)
        self._loaded[partition] = stored
        while len(self._loaded) > REMEMBERED_USERS:
            self._loaded.popitem(last=False)

    async def delete_user(self, tenant_id: str, staff_id: str) -> None:
        partition = user_partition(tenant_id, staff_id)
        self._loaded.pop(partition, None)
        self._pending.pop(partition, None)
        self._outbox.pop(partition, None)
        await delete_partition(await self._table(tenant_id), partition)

    async def delete_tenant(self, tenant_id: str) -> None:
        table = await self._table(tenant_id)
        first = f"{escape_key(tenant_id)}{USER_SEPARATOR}"
        for partition in [p for p in self._loaded if p.startswith(first)]:
            del self._loaded[partition]
        for partition in [p for p in self._pending if p.startswith(first)]:
            del self._pending[partition]
        for partition in [p for p in self._outbox if p.startswith(first)]:
            del self._outbox[partition]
        query = table.query_entities(
            "PartitionKey ge @first and PartitionKey lt @after",
            parameters={"first": first, "after": f"{escape_key(tenant_id)}{_AFTER_SEPARATOR}"},
            select=["PartitionKey", "RowKey"],
            results_per_page=1000,
        )
        await delete_rows(table, [Delete(e["PartitionKey"], e["RowKey"]) async for e in query])


def _effects(upserts: Sequence[ItemStatus], deletes: Sequence[str]) -> dict[str, ItemStatus | None]:
    """What a plan leaves of each id it names: deletes first, so an upsert of the same id wins (None:
    dropped)."""
    return dict.fromkeys(deletes, None) | {status.graph_id: status for status in upserts}


def _marker(partition: str) -> Upsert:
    return Upsert({"PartitionKey": partition, "RowKey": ITEMS_MARKER})


def _note_key(graph_id: str) -> str:
    return f"{NOTE_PREFIX}{escape_key(graph_id)}"


def _note_entity(partition: str, graph_id: str, status: ItemStatus | None) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": partition, "RowKey": _note_key(graph_id)}
    if status is not None:
        entity["Status"] = encode_status(status)  # absent: the status was dropped
    return entity


def announcement_rows(partition: str, announcement: Announcement) -> list[Upsert]:
    """The announcement as rows of at most `PAGE_CHARS` of changes, each `PART_CHARS` a property."""
    chunks: list[list[str]] = [[]]
    size = 0
    for change in announcement.changes:
        text = encoded_change(change)
        if chunks[-1] and size + len(text) + 1 > PAGE_CHARS:
            chunks.append([])
            size = 0
        chunks[-1].append(text)
        size += len(text) + 1
    rows: list[Upsert] = []
    for number, chunk in enumerate(chunks):
        text = "\n".join(chunk)
        entity: dict[str, Any] = {
            "PartitionKey": partition,
            "RowKey": f"{ANNOUNCEMENT_PREFIX}{number}",
            "Key": announcement.key,
            "Rows": len(chunks),
        }
        for start in range(0, len(text), PART_CHARS):
            entity[f"Changes{start // PART_CHARS}"] = text[start : start + PART_CHARS]
        rows.append(Upsert(entity))
    return rows


def announcement_of(tenant_id: str, rows: Sequence[Mapping[str, Any]]) -> Announcement | None:
    """The announcement the rows hold (None: none, or not all of its rows there)."""
    if not rows:
        return None
    key = str(rows[0].get("Key", ""))
    ordered = sorted(rows, key=lambda row: int(str(row["RowKey"])[len(ANNOUNCEMENT_PREFIX) :]))
    if any(row.get("Key") != key or row.get("Rows") != len(rows) for row in ordered):
        return None  # rows of two announcements: cannot be (one at a time, each cleared before the next)
    changes = []
    for row in ordered:
        parts: list[str] = []
        while (part := row.get(f"Changes{len(parts)}")) is not None:
            parts.append(part)
        changes += [decoded_change(tenant_id, line) for line in "".join(parts).split("\n") if line]
    return Announcement(key, tuple(changes))


def _chars(entity: Mapping[str, Any]) -> int:
    return sum(len(value) for value in entity.values() if isinstance(value, str))
