"""Table Storage for the calendar sync: item statuses, leases, the subscription index, dead letters.

| table | partition / row | what |
|---|---|---|
| `outlookitems` | tenant id `|` staff id / `p` + slot prefix | every Outlook item's status, packed in pages |
| `leases` | `lease` / lease key | one holder per key, its expiry and the 'run again' flag |
| `subscriptions` | subscription id / "" | the Graph subscription's tenant, user, expiry, last notification |
| `deliveries` | tenant id / 16-digit first sequence | dead letters of the host webhook |

Keys that come from outside (Graph ids, lease keys, staff ids) go through `escape_key`: letters, digits,
`.`, `_` and `-` stay as they are, every other character becomes `!` and the hex of its UTF-8 bytes. The
result never holds a character Table Storage refuses (`/ \\ # ?`, control characters) nor one that some
services and Azurite mishandle (`%`, `'`), it decodes uniquely, and it keeps prefixes: the key of a string
starting with `p` starts with `escape_key(p)`, so a prefix becomes a RowKey range. The raw value is kept
as a property where a reader needs it.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters.item_pages import (
    Page,
    changed_pages,
    decode_status,
    encode_status,
    is_page_key,
    page_from_entity,
)
from shared.adapters.storage import StorageClients
from shared.adapters.table_batch import (
    Delete,
    Operation,
    TransactionFailed,
    Upsert,
    in_transactions,
    submit,
)
from shared.adapters.tables import MAX_BATCH, as_utc, delete_partition, delete_rows, etag_of, required_utc
from shared.domain.planner import ItemStatus
from shared.service.errors import StaleWrite
from shared.service.records import DeadLetter, LeaseOutcome, SubscriptionRecord

OUTLOOK_ITEMS: Final = "outlookitems"
LEASES: Final = "leases"
SUBSCRIPTIONS: Final = "subscriptions"
DELIVERIES: Final = "deliveries"
TABLES: Final = (OUTLOOK_ITEMS, LEASES, SUBSCRIPTIONS, DELIVERIES)

ITEMS_MARKER: Final = "~"  # a user's outlookitems partition holds statuses only if it holds this row
NOTE_PREFIX: Final = "n"  # a note's RowKey: this and the escaped Graph id (a page's starts with `p`)
LEASE_PARTITION: Final = "lease"
USER_SEPARATOR: Final = "|"  # never produced by escape_key, so tenant|staff splits one way only
ESCAPE: Final = "!"
MAX_REASON: Final = 2000  # a dead letter's reason, in characters (a string property holds 64 KiB)
RACE_ATTEMPTS: Final = 50  # re-read and decide again at most this often before giving up
ROUND_ITEMS: Final = 500  # statuses written per round of an apply (a round's page splits fit a transaction)
REMEMBERED_USERS: Final = 64  # users whose loaded pages a worker keeps for the apply that follows

_SAFE: Final = re.compile(r"[A-Za-z0-9._-]")
_ESCAPED: Final = re.compile(r"!([0-9A-F]{2})|([A-Za-z0-9._-])")
# The successor of the largest character escape_key produces ('z'): a range's exclusive upper bound.
_AFTER_ESCAPED: Final = "{"
_AFTER_SEPARATOR: Final = chr(ord(USER_SEPARATOR) + 1)


def escape_key(value: str) -> str:
    """A Table Storage key for any string; reversible (`unescape_key`) and prefix-preserving."""
    return "".join(
        char if _SAFE.fullmatch(char) else "".join(f"{ESCAPE}{byte:02X}" for byte in char.encode())
        for char in value
    )


def unescape_key(key: str) -> str:
    raw = bytearray()
    position = 0
    while position < len(key):
        match = _ESCAPED.match(key, position)
        if match is None:
            raise ValueError(f"not an escaped key: {key!r}")
        raw += bytes.fromhex(match[1]) if match[1] else match[2].encode()
        position = match.end()
    return raw.decode()


def user_partition(tenant_id: str, staff_id: str) -> str:
    return f"{escape_key(tenant_id)}{USER_SEPARATOR}{escape_key(staff_id)}"


def _sequence_key(sequence: int) -> str:
    return f"{sequence:016d}"


def _lost_race(error: HttpResponseError) -> bool:
    """An If-Match write that found the row changed or gone."""
    if isinstance(error, (ResourceModifiedError, ResourceNotFoundError)):
        return True
    return error.status_code in (404, 412)


class _Tables:
    def __init__(self, storage: StorageClients, name: str) -> None:
        self._storage = storage
        self._name = name

    async def _table(self) -> TableClient:
        return await self._storage.table(self._name)


# --- outlookitems --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Note:
    """A status noted from outside the user's sync run (or its removal: `status` None)."""

    graph_id: str
    etag: str
    status: ItemStatus | None


@dataclass(slots=True)
class _Stored:
    """A user's partition as read: its pages and its notes (by Graph id)."""

    pages: dict[str, Page] = field(default_factory=dict)
    notes: dict[str, _Note] = field(default_factory=dict)

    def statuses(self) -> dict[str, ItemStatus]:
        merged = {status.graph_id: status for page in self.pages.values() for status in page.statuses()}
        for graph_id, note in self.notes.items():  # a note is newer than any page
            if note.status is None:
                merged.pop(graph_id, None)
            else:
                merged[graph_id] = note.status
        return merged


class TableItemStatuses(_Tables):
    """`ItemStatusRepository`: one partition per user, its statuses packed into pages (see item_pages),
    and notes from outside the user's sync run.

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

    def __init__(self, storage: StorageClients) -> None:
        super().__init__(storage, OUTLOOK_ITEMS)
        self._loaded: OrderedDict[str, _Stored] = OrderedDict()  # partition -> as read, newest last

    async def load(
        self, tenant_id: str, staff_id: str, *, probably_empty: bool = False
    ) -> dict[str, ItemStatus]:
        table = await self._table()
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
        return stored.statuses()

    async def apply(
        self, tenant_id: str, staff_id: str, upserts: Sequence[ItemStatus], deletes: Sequence[str]
    ) -> None:
        """The notes read, then deletes, then upserts (a later upsert of an id wins), written page by
        page; then the folded notes are deleted.

        Up to `ROUND_ITEMS` upserts are written at a time, so that a page split stays one transaction
        whatever the mailbox's size. Each transaction leaves a whole, consistent set of pages; a crash
        between them leaves part of the plan applied, and applying it again finishes it.
        """
        partition = user_partition(tenant_id, staff_id)
        table = await self._table()
        stored = self._loaded.pop(partition, None)
        for _ in range(RACE_ATTEMPTS):
            if stored is None:
                stored = await self._read(table, partition)
            effects = {g: note.status for g, note in stored.notes.items()} | _effects(upserts, deletes)
            items = [status for status in effects.values() if status is not None]
            gone = [graph_id for graph_id, status in effects.items() if status is None]
            try:
                for start in range(0, max(len(items), 1), ROUND_ITEMS):
                    chunk, dropped = items[start : start + ROUND_ITEMS], gone if start == 0 else []
                    await self._write(table, partition, stored.pages, chunk, dropped)
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
        table = await self._table()
        for start in range(0, len(rows), MAX_BATCH - 1):  # the marker goes with them (see the class)
            await submit(
                table, [_marker(partition), *(Upsert(row) for row in rows[start : start + MAX_BATCH - 1])]
            )

    @staticmethod
    async def _write(
        table: TableClient,
        partition: str,
        pages: dict[str, Page],
        upserts: Sequence[ItemStatus],
        deletes: Sequence[str],
    ) -> None:
        """Commit the changed pages, units grouped into transactions; `pages` follows each commit."""
        units = changed_pages(pages, upserts, deletes)
        groups = in_transactions(units, lambda u: u.chars, lambda u: u.operation_count, reserved=1)
        for group in groups:  # each with room for the marker
            marked = any(unit.creates for unit in group)
            operations: list[Operation] = []
            if marked:  # the marker goes with the first page (see the class)
                operations.append(_marker(partition))
            for unit in group:
                operations += unit.operations(partition)
            etags = iter(await submit(table, operations))
            if marked:
                next(etags)  # the marker's
            for unit in group:
                if unit.stored is not None:
                    pages.pop(unit.stored.prefix, None)
                if unit.split and unit.stored is not None:
                    next(etags)  # the deleted page's
                for page in unit.pages:
                    page.etag = next(etags) or "*"
                    pages[page.prefix] = page

    @staticmethod
    async def _read(table: TableClient, partition: str) -> _Stored:
        query = table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": partition}, results_per_page=1000
        )
        stored = _Stored()
        async for entity in query:
            row_key = str(entity["RowKey"])
            if is_page_key(row_key):
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
        await delete_partition(await self._table(), partition)

    async def delete_tenant(self, tenant_id: str) -> None:
        table = await self._table()
        first = f"{escape_key(tenant_id)}{USER_SEPARATOR}"
        for partition in [p for p in self._loaded if p.startswith(first)]:
            del self._loaded[partition]
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


# --- leases --------------------------------------------------------------------------------------


class TableLeases(_Tables):
    """`LeaseStore`: one row per key; every change after the first insert is a replace with If-Match,
    and whoever loses a race re-reads the row and decides again.

    The usual run costs two writes: the acquiring insert, and the release's delete If-Match the ETag that
    insert answered (remembered per key and owner in this worker). Only when that delete finds the row
    changed (another worker asked to run again, or took over a lapsed lease) is the row read.
    """

    def __init__(self, storage: StorageClients) -> None:
        super().__init__(storage, LEASES)
        self._held: dict[tuple[str, str], str] = {}  # (key, owner) -> the row's ETag as this worker wrote it

    @staticmethod
    def _entity(key: str, owner: str, expires_at: datetime, again: bool) -> dict[str, Any]:
        return {
            "PartitionKey": LEASE_PARTITION,
            "RowKey": escape_key(key),
            "Key": key,
            "Owner": owner,
            "ExpiresAt": expires_at,
            "Again": again,
        }

    async def _read(self, table: TableClient, key: str) -> Any | None:
        try:
            return await table.get_entity(LEASE_PARTITION, escape_key(key))
        except ResourceNotFoundError:
            return None

    @staticmethod
    async def _guarded(table: TableClient, entity: dict[str, Any], etag: str | None) -> str | None:
        """Replace with If-Match; the new ETag, or None when the row changed or vanished since it was read."""
        try:
            written = await table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except HttpResponseError as error:
            if _lost_race(error):
                return None
            raise
        return str(written.get("etag") or "*")

    async def acquire(self, key: str, owner: str, ttl: timedelta, now: datetime) -> LeaseOutcome:
        table = await self._table()
        held: Any | None = None
        for attempt in range(RACE_ATTEMPTS):
            if attempt:
                held = await self._read(table, key)
            if held is None:
                try:
                    created = await table.create_entity(self._entity(key, owner, now + ttl, again=False))
                except ResourceExistsError:
                    continue
                self._remember(key, owner, created.get("etag"))
                return LeaseOutcome.ACQUIRED
            etag = etag_of(held)
            if held["Owner"] == owner or required_utc(held["ExpiresAt"]) <= now:
                taken = await self._guarded(table, self._entity(key, owner, now + ttl, again=False), etag)
                if taken is not None:
                    self._remember(key, owner, taken)
                    return LeaseOutcome.ACQUIRED
                continue
            if held.get("Again"):
                return LeaseOutcome.DEFERRED  # already asked; the holder runs once more
            again = self._entity(key, held["Owner"], required_utc(held["ExpiresAt"]), again=True)
            if await self._guarded(table, again, etag) is not None:
                return LeaseOutcome.DEFERRED
        raise StaleWrite(f"lease {key}: too much contention")

    async def release(self, key: str, owner: str) -> bool:
        table = await self._table()
        remembered = self._held.pop((key, owner), None)
        if remembered is not None and await self._delete(table, key, remembered):
            return False  # nobody asked for another run meanwhile: the usual case, one request
        for _ in range(RACE_ATTEMPTS):
            held = await self._read(table, key)
            if held is None or held["Owner"] != owner:
                return False
            etag = etag_of(held)
            if held.get("Again"):
                kept = self._entity(key, owner, required_utc(held["ExpiresAt"]), again=False)
                written = await self._guarded(table, kept, etag)
                if written is not None:
                    self._remember(key, owner, written)
                    return True
                continue
            if await self._delete(table, key, etag):
                return False
        raise StaleWrite(f"lease {key}: too much contention")

    def _remember(self, key: str, owner: str, etag: Any) -> None:
        if etag:
            self._held[(key, owner)] = str(etag)

    @staticmethod
    async def _delete(table: TableClient, key: str, etag: str | None) -> bool:
        """Delete If-Match; False when the row changed meanwhile (a vanished row counts as deleted)."""
        try:
            await table.delete_entity(
                LEASE_PARTITION, escape_key(key), etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except HttpResponseError as error:
            if isinstance(error, ResourceNotFoundError) or error.status_code == 404:
                return True
            if _lost_race(error):
                return False
            raise
        return True

    async def delete_prefix(self, prefix: str) -> None:
        table = await self._table()
        first = escape_key(prefix)
        query = table.query_entities(
            "PartitionKey eq @pk and RowKey ge @first and RowKey lt @after",
            parameters={"pk": LEASE_PARTITION, "first": first, "after": f"{first}{_AFTER_ESCAPED}"},
            select="RowKey",
            results_per_page=1000,
        )
        await delete_rows(table, [Delete(LEASE_PARTITION, e["RowKey"]) async for e in query])


# --- subscriptions -------------------------------------------------------------------------------


def subscription_to_entity(record: SubscriptionRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": escape_key(record.subscription_id),
        "RowKey": "",
        "SubscriptionId": record.subscription_id,
        "TenantId": record.tenant_id,
        "StaffId": record.staff_id,
        "GraphUserId": record.graph_user_id,
        "ExpiresAt": record.expires_at,
        "LastNotifiedAt": record.last_notified_at,
    }
    return {name: value for name, value in entity.items() if value is not None}


def subscription_from_entity(entity: Any) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=entity.get("SubscriptionId") or unescape_key(entity["PartitionKey"]),
        tenant_id=entity["TenantId"],
        staff_id=entity["StaffId"],
        graph_user_id=entity["GraphUserId"],
        expires_at=required_utc(entity["ExpiresAt"]),
        last_notified_at=as_utc(entity.get("LastNotifiedAt")),
        etag=etag_of(entity),
    )


class TableSubscriptionIndex(_Tables):
    """`SubscriptionIndex`: a point read by subscription id for the webhook; server-side filtered
    queries for the renewal timer (`expiring`) and the tenant purge (`for_tenant`)."""

    def __init__(self, storage: StorageClients) -> None:
        super().__init__(storage, SUBSCRIPTIONS)

    async def get(self, subscription_id: str) -> SubscriptionRecord | None:
        try:
            entity = await (await self._table()).get_entity(escape_key(subscription_id), "")
        except ResourceNotFoundError:
            return None
        return subscription_from_entity(entity)

    async def put(self, record: SubscriptionRecord) -> None:
        await (await self._table()).upsert_entity(subscription_to_entity(record), mode=UpdateMode.REPLACE)

    async def delete(self, subscription_id: str) -> None:
        await (await self._table()).delete_entity(escape_key(subscription_id), "")

    async def _query(self, where: str, parameters: dict[str, Any]) -> list[SubscriptionRecord]:
        table = await self._table()
        query = table.query_entities(where, parameters=parameters, results_per_page=1000)
        return [subscription_from_entity(entity) async for entity in query]

    async def expiring(self, before: datetime) -> list[SubscriptionRecord]:
        """Those expiring before `before`, soonest first."""
        records = await self._query("ExpiresAt lt @before", {"before": before})
        return sorted(records, key=lambda r: (r.expires_at, r.subscription_id))

    async def for_tenant(self, tenant_id: str) -> list[SubscriptionRecord]:
        """The tenant's subscriptions, by subscription id."""
        records = await self._query("TenantId eq @tenant", {"tenant": tenant_id})
        return sorted(records, key=lambda r: r.subscription_id)


# --- deliveries (dead letters) -------------------------------------------------------------------


class TableDeadLetters(_Tables):
    """`DeadLetterRepository`: one partition per tenant, rows in sequence order."""

    def __init__(self, storage: StorageClients) -> None:
        super().__init__(storage, DELIVERIES)

    async def add(self, letter: DeadLetter) -> None:
        entity = {
            "PartitionKey": letter.tenant_id,
            "RowKey": _sequence_key(letter.first_sequence),
            "LastSequence": letter.last_sequence,
            "Attempts": letter.attempts,
            "Reason": letter.reason[:MAX_REASON],
            "FailedAt": letter.failed_at,
        }
        await (await self._table()).upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def list(self, tenant_id: str) -> list[DeadLetter]:
        table = await self._table()
        query = table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": tenant_id}, results_per_page=1000
        )
        return [
            DeadLetter(
                tenant_id=tenant_id,
                first_sequence=int(e["RowKey"]),
                last_sequence=int(e["LastSequence"]),
                attempts=int(e["Attempts"]),
                reason=e.get("Reason") or "",
                failed_at=required_utc(e["FailedAt"]),
            )
            async for e in query
        ]

    async def delete(self, tenant_id: str, first_sequence: int) -> None:
        await (await self._table()).delete_entity(tenant_id, _sequence_key(first_sequence))

    async def delete_tenant(self, tenant_id: str) -> None:
        await delete_partition(await self._table(), tenant_id)
