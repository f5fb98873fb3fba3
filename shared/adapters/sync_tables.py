"""Table Storage for the calendar sync: item statuses, leases, the subscription index, dead letters.

| table | partition / row | what |
|---|---|---|
| `outlookitems` | tenant id `|` staff id / Graph event id | the stored status of every Outlook item |
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

import re
from collections.abc import Iterable, Sequence
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

from shared.adapters.storage import StorageClients
from shared.adapters.table_batch import Delete, Operation, TransactionFailed, Upsert, submit
from shared.adapters.tables import MAX_BATCH, as_utc, delete_partition, etag_of, required_utc
from shared.domain.planner import ItemStatus
from shared.service.ports import DeadLetter, LeaseOutcome, StaleWrite, SubscriptionRecord

OUTLOOK_ITEMS: Final = "outlookitems"
LEASES: Final = "leases"
SUBSCRIPTIONS: Final = "subscriptions"
DELIVERIES: Final = "deliveries"
TABLES: Final = (OUTLOOK_ITEMS, LEASES, SUBSCRIPTIONS, DELIVERIES)

ITEMS_MARKER: Final = "~"  # a user's outlookitems partition holds statuses only if it holds this row
LEASE_PARTITION: Final = "lease"
USER_SEPARATOR: Final = "|"  # never produced by escape_key, so tenant|staff splits one way only
ESCAPE: Final = "!"
MAX_REASON: Final = 2000  # a dead letter's reason, in characters (a string property holds 64 KiB)
RACE_ATTEMPTS: Final = 50  # re-read and decide again at most this often before giving up

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


async def _delete_rows(table: TableClient, rows: Iterable[tuple[str, str]]) -> None:
    """Delete rows, grouped by partition, 100 per transaction; rows already gone are fine."""
    by_partition: dict[str, list[str]] = {}
    for partition, row in rows:
        by_partition.setdefault(partition, []).append(row)
    for partition, keys in by_partition.items():
        for start in range(0, len(keys), MAX_BATCH):
            chunk = keys[start : start + MAX_BATCH]
            try:
                await submit(table, [Delete(partition, key) for key in chunk])
            except TransactionFailed:
                # Someone deleted a row first: one by one (the SDK's delete of a missing row is a no-op).
                for key in chunk:
                    await table.delete_entity(partition, key)


class _Tables:
    def __init__(self, storage: StorageClients, name: str) -> None:
        self._storage = storage
        self._name = name

    async def _table(self) -> TableClient:
        return await self._storage.table(self._name)


# --- outlookitems --------------------------------------------------------------------------------


def status_to_entity(partition: str, status: ItemStatus) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": partition,
        "RowKey": escape_key(status.graph_id),
        "GraphId": status.graph_id,
        "ChangeKey": status.change_key,
        "ICalUId": status.ical_uid,
        "ContentHash": status.content_hash,
        "EndsAt": status.ends_at,
        "Admitted": status.admitted,
        "AppointmentId": status.appointment_id,
        "SeriesMasterId": status.series_master_id,
        "Written": status.written or None,
        "Master": status.master or None,
    }
    return {name: value for name, value in entity.items() if value is not None}


def status_from_entity(entity: Any) -> ItemStatus:
    return ItemStatus(
        graph_id=entity.get("GraphId") or unescape_key(entity["RowKey"]),
        change_key=entity.get("ChangeKey"),
        ical_uid=entity.get("ICalUId"),
        content_hash=entity["ContentHash"],
        ends_at=required_utc(entity["EndsAt"]),
        admitted=bool(entity["Admitted"]),
        appointment_id=entity.get("AppointmentId"),
        series_master_id=entity.get("SeriesMasterId"),
        written=bool(entity.get("Written")),
        master=bool(entity.get("Master")),
    )


class TableItemStatuses(_Tables):
    """`ItemStatusRepository`: one partition per user, one row per Outlook item.

    Every write of statuses also puts a marker row (`ITEMS_MARKER`) in the partition, in the same
    transaction as its first rows, so a partition without the marker holds no statuses. A first migration
    (`probably_empty`) reads the marker by key and skips the partition query when it is absent: a point
    read costs the same everywhere, while a query over an empty partition costs a scan of the whole table
    on Azurite (its queries do not use the partition key), the dominant storage cost of migrating a large
    tenant locally.
    """

    def __init__(self, storage: StorageClients) -> None:
        super().__init__(storage, OUTLOOK_ITEMS)

    async def load(
        self, tenant_id: str, staff_id: str, *, probably_empty: bool = False
    ) -> dict[str, ItemStatus]:
        table = await self._table()
        partition = user_partition(tenant_id, staff_id)
        if probably_empty:
            try:
                await table.get_entity(partition, ITEMS_MARKER, select=["RowKey"])
            except ResourceNotFoundError:
                return {}
        query = table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": partition}, results_per_page=1000
        )
        statuses = [status_from_entity(e) async for e in query if e["RowKey"] != ITEMS_MARKER]
        return {status.graph_id: status for status in statuses}

    async def apply(
        self, tenant_id: str, staff_id: str, upserts: Sequence[ItemStatus], deletes: Sequence[str]
    ) -> None:
        """Upserts and deletes together, 100 per entity-group transaction.

        A transaction may not name a row twice: a later upsert of the same id wins, and an id both
        deleted and upserted is upserted (deletes apply first). A delete of a row that is already gone
        fails its whole transaction, so on a 404 the partition's keys are read once and such deletes
        dropped: applying the same plan twice changes nothing the second time.
        """
        partition = user_partition(tenant_id, staff_id)
        latest = {status.graph_id: status for status in upserts}
        gone = [graph_id for graph_id in dict.fromkeys(deletes) if graph_id not in latest]
        operations: list[Operation] = [Upsert(status_to_entity(partition, s)) for s in latest.values()]
        if operations:  # the marker goes with the first rows (see the class)
            operations.insert(0, Upsert({"PartitionKey": partition, "RowKey": ITEMS_MARKER}))
        operations += [Delete(partition, escape_key(graph_id)) for graph_id in gone]
        table = await self._table()
        present: set[str] | None = None
        for start in range(0, len(operations), MAX_BATCH):
            chunk = operations[start : start + MAX_BATCH]
            for _ in range(3):
                if present is not None:
                    known = present
                    chunk = [op for op in chunk if not isinstance(op, Delete) or op.row_key in known]
                if not chunk:
                    break
                try:
                    await submit(table, chunk)
                    break
                except TransactionFailed as error:
                    if error.status != 404:
                        raise
                    present = await self._row_keys(table, partition)
            else:
                await self._one_by_one(table, chunk)

    @staticmethod
    async def _row_keys(table: TableClient, partition: str) -> set[str]:
        query = table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": partition}, select="RowKey", results_per_page=1000
        )
        return {entity["RowKey"] async for entity in query}

    @staticmethod
    async def _one_by_one(table: TableClient, operations: Sequence[Operation]) -> None:
        """The last resort when rows keep vanishing under the transaction (another writer deletes)."""
        for operation in operations:
            if isinstance(operation, Delete):
                await table.delete_entity(operation.partition_key, operation.row_key)
            elif isinstance(operation, Upsert):
                await table.upsert_entity(dict(operation.entity), mode=UpdateMode.REPLACE)

    async def delete_user(self, tenant_id: str, staff_id: str) -> None:
        await delete_partition(await self._table(), user_partition(tenant_id, staff_id))

    async def delete_tenant(self, tenant_id: str) -> None:
        table = await self._table()
        first = f"{escape_key(tenant_id)}{USER_SEPARATOR}"
        query = table.query_entities(
            "PartitionKey ge @first and PartitionKey lt @after",
            parameters={"first": first, "after": f"{escape_key(tenant_id)}{_AFTER_SEPARATOR}"},
            select=["PartitionKey", "RowKey"],
            results_per_page=1000,
        )
        await _delete_rows(table, [(e["PartitionKey"], e["RowKey"]) async for e in query])


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
        await _delete_rows(table, [(LEASE_PARTITION, e["RowKey"]) async for e in query])


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
