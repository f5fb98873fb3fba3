"""The `leases` table: one sync run per user across workers, with a 'run again' flag (`LeaseStore`).

A lease lives in its tenant's partition: the key's first `/`-separated part (every key the connector
takes starts with the tenant id), escaped; the RowKey is the whole key, escaped. So one tenant's runs
never contend with another's partition, and a tenant's leases go with one partition query. Rows of the
single partition every lease shared before (`lease`) are only ever deleted (`delete_prefix`): a lease lives
minutes, so the ones an older version took lapse on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
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

from shared.adapters.storage import TenantStorage
from shared.adapters.tables.rows import (
    AFTER_ESCAPED,
    RACE_ATTEMPTS,
    TableAdapter,
    delete_rows,
    escape_key,
    etag_of,
    required_utc,
)
from shared.adapters.tables.transactions import Delete, Insert, TransactionFailed, submit
from shared.service.errors import StaleWrite
from shared.service.records import LeaseOutcome

LEASES: Final = "leases"
LEGACY_PARTITION: Final = "lease"  # every lease, before leases were partitioned by tenant
KEY_SEPARATOR: Final = "/"


def lease_partition(key: str) -> str:
    """The partition of a lease: its key's first part (the tenant), escaped."""
    return escape_key(tenant_of(key))


def _lost_race(error: HttpResponseError) -> bool:
    """An If-Match write that found the row changed or gone."""
    if isinstance(error, (ResourceModifiedError, ResourceNotFoundError)):
        return True
    return error.status_code in (404, 412)


def tenant_of(key: str) -> str:
    """The tenant a lease key (or a prefix of keys) belongs to: every key starts `{tenant}/`."""
    return key.partition(KEY_SEPARATOR)[0]


def _tenant_of_all(keys: Sequence[str]) -> str:
    """The one tenant of leases taken or let go together (one partition, one transaction)."""
    tenants = {tenant_of(key) for key in keys}
    if len(tenants) != 1:
        raise ValueError(f"leases taken together belong to one tenant, not {sorted(tenants)}")
    return tenants.pop()


class TableLeases(TableAdapter):
    """`LeaseStore`: one row per key; every change after the first insert is a replace with If-Match,
    and whoever loses a race re-reads the row and decides again.

    The usual run costs two writes: the acquiring insert, and the release's delete If-Match the ETag that
    insert answered (remembered per key and owner in this worker). Only when that delete finds the row
    changed (another worker asked to run again, or took over a lapsed lease) is the row read.
    """

    def __init__(self, storage: TenantStorage) -> None:
        super().__init__(storage, LEASES)
        self._held: dict[tuple[str, str], str] = {}  # (key, owner) -> the row's ETag as this worker wrote it

    @staticmethod
    def _entity(key: str, owner: str, expires_at: datetime, again: bool) -> dict[str, Any]:
        return {
            "PartitionKey": lease_partition(key),
            "RowKey": escape_key(key),
            "Key": key,
            "Owner": owner,
            "ExpiresAt": expires_at,
            "Again": again,
        }

    async def _read(self, table: TableClient, key: str) -> Any | None:
        try:
            return await table.get_entity(lease_partition(key), escape_key(key))
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

    async def acquire(
        self, key: str, owner: str, ttl: timedelta, now: datetime, *, succeeds: Sequence[str] = ()
    ) -> LeaseOutcome:
        table = await self._table(tenant_of(key))
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
            holder = str(held["Owner"])
            if (
                holder == owner
                or holder.startswith(tuple(succeeds))
                or required_utc(held["ExpiresAt"]) <= now
            ):
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
        table = await self._table(tenant_of(key))
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

    async def acquire_together(self, keys: Sequence[str], owner: str, ttl: timedelta, now: datetime) -> bool:
        """One transaction of inserts (the keys share their tenant's partition): as cheap as one lease."""
        table = await self._table(_tenant_of_all(keys))
        entities = [self._entity(key, owner, now + ttl, again=False) for key in keys]
        try:
            etags = await submit(table, [Insert(entity) for entity in entities])
        except TransactionFailed as failed:
            if failed.lost_race:  # one of them has a row: each is decided on its own
                return False
            raise
        for key, etag in zip(keys, etags, strict=True):
            self._remember(key, owner, etag)
        return True

    async def release_together(self, keys: Sequence[str], owner: str) -> bool:
        """One transaction of deletes, each If-Match the ETag this worker's `acquire_together` answered."""
        table = await self._table(_tenant_of_all(keys))
        etags = [self._held.get((key, owner)) for key in keys]
        if any(etag is None for etag in etags):
            return False  # not taken together here (or renewed since): one by one
        deletes = zip(keys, etags, strict=True)
        try:
            await submit(table, [Delete(lease_partition(k), escape_key(k), str(e)) for k, e in deletes])
        except TransactionFailed as failed:
            if failed.lost_race:  # a flag set, taken over or gone: `release` reads each
                return False
            raise
        for key in keys:
            del self._held[key, owner]
        return True

    def _remember(self, key: str, owner: str, etag: Any) -> None:
        if etag:
            self._held[(key, owner)] = str(etag)

    @staticmethod
    async def _delete(table: TableClient, key: str, etag: str | None) -> bool:
        """Delete If-Match; False when the row changed meanwhile (a vanished row counts as deleted)."""
        try:
            await table.delete_entity(
                lease_partition(key),
                escape_key(key),
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except HttpResponseError as error:
            if isinstance(error, ResourceNotFoundError) or error.status_code == 404:
                return True
            if _lost_race(error):
                return False
            raise
        return True

    async def delete_prefix(self, prefix: str) -> None:
        """Every lease whose key starts with `prefix`: a range of one partition when the prefix names the
        tenant (`tenant/`), else a range of partitions; and the same range of the legacy partition."""
        table = await self._table(tenant_of(prefix))
        first = escape_key(prefix)
        ranges = [(LEGACY_PARTITION, first)]
        if KEY_SEPARATOR in prefix:
            ranges.append((lease_partition(prefix), first))
        deletes: list[Delete] = []
        for partition, start in ranges:
            query = table.query_entities(
                "PartitionKey eq @pk and RowKey ge @first and RowKey lt @after",
                parameters={"pk": partition, "first": start, "after": f"{start}{AFTER_ESCAPED}"},
                select=["PartitionKey", "RowKey"],
                results_per_page=1000,
            )
            deletes += [Delete(e["PartitionKey"], e["RowKey"]) async for e in query]
        if KEY_SEPARATOR not in prefix:  # the prefix may end inside a tenant id: every such partition
            query = table.query_entities(
                "PartitionKey ge @first and PartitionKey lt @after",
                parameters={"first": first, "after": f"{first}{AFTER_ESCAPED}"},
                select=["PartitionKey", "RowKey"],
                results_per_page=1000,
            )
            deletes += [
                Delete(e["PartitionKey"], e["RowKey"]) async for e in query if e["RowKey"].startswith(first)
            ]
        await delete_rows(table, list(dict.fromkeys(deletes)))
