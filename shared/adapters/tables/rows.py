"""What every table adapter shares: keys, entity values, guarded writes and deletes, the table client.

Optimistic concurrency everywhere two workers can race: replace with `If-Match: <etag>`, so a lost race
surfaces as `StaleWrite` instead of a silent overwrite. Keys are validated by the domain (no `/ \\ # ?`).

Keys that come from outside (Graph ids, lease keys, staff ids) go through `escape_key`: letters, digits,
`.`, `_` and `-` stay as they are, every other character becomes `!` and the hex of its UTF-8 bytes. The
result never holds a character Table Storage refuses (`/ \\ # ?`, control characters) nor one that some
services and Azurite mishandle (`%`, `'`), it decodes uniquely, and it keeps prefixes: the key of a string
starting with `p` starts with `escape_key(p)`, so a prefix becomes a RowKey range. The raw value is kept
as a property where a reader needs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
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
from shared.adapters.tables.transactions import MAX_OPERATIONS, Delete, TransactionFailed, submit
from shared.service.errors import AlreadyExists, StaleWrite

ESCAPE: Final = "!"
RACE_ATTEMPTS: Final = 50  # re-read and decide again at most this often before giving up

_SAFE: Final = re.compile(r"[A-Za-z0-9._-]")
_ESCAPED: Final = re.compile(r"!([0-9A-F]{2})|([A-Za-z0-9._-])")
# The successor of the largest character escape_key produces ('z'): a range's exclusive upper bound.
AFTER_ESCAPED: Final = "{"


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


def sequence_key(sequence: int) -> str:
    return f"{sequence:016d}"


def as_utc(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def required_utc(value: Any) -> datetime:
    parsed = as_utc(value)
    if parsed is None:
        raise ValueError("a required timestamp is missing")
    return parsed


def etag_of(entity: Any) -> str | None:
    metadata = getattr(entity, "metadata", None) or {}
    return metadata.get("etag") if isinstance(metadata, dict) else None


def without_none(entity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if v is not None}


async def replace_entity(table: TableClient, entity: dict[str, Any], etag: str | None) -> str | None:
    """Replace guarded by the etag; StaleWrite when someone wrote in between (or it is gone)."""
    if etag is None:
        raise StaleWrite(entity["RowKey"])
    try:
        result = await table.update_entity(
            entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
        )
    except (ResourceModifiedError, ResourceNotFoundError):
        raise StaleWrite(entity["RowKey"]) from None
    except HttpResponseError as error:
        if error.status_code == 412:
            raise StaleWrite(entity["RowKey"]) from None
        raise
    return str(result.get("etag")) if result.get("etag") else None


async def insert_entity(table: TableClient, entity: dict[str, Any]) -> str | None:
    try:
        result = await table.create_entity(entity)
    except ResourceExistsError:
        raise AlreadyExists(entity["RowKey"]) from None
    return str(result.get("etag")) if result.get("etag") else None


async def delete_rows(table: TableClient, deletes: Iterable[Delete]) -> None:
    """Delete rows, grouped by partition, 100 per transaction. A row already gone, or changed since the
    ETag a delete names (a newer version, which stays), fails its transaction: its rows then go one by
    one, and those are skipped."""
    by_partition: dict[str, list[Delete]] = {}
    for delete in deletes:
        by_partition.setdefault(delete.partition_key, []).append(delete)
    for partition_deletes in by_partition.values():
        for start in range(0, len(partition_deletes), MAX_OPERATIONS):
            chunk = partition_deletes[start : start + MAX_OPERATIONS]
            try:
                await submit(table, chunk)
            except TransactionFailed as error:
                if not error.lost_race:
                    raise
                for delete in chunk:
                    try:
                        await submit(table, [delete])
                    except TransactionFailed as one:
                        if not one.lost_race:
                            raise


async def read_entity(table: TableClient, partition: str, row: str) -> dict[str, Any] | None:
    """One row by its keys (already escaped), or None."""
    try:
        entity: dict[str, Any] = await table.get_entity(partition, row)
    except ResourceNotFoundError:
        return None
    return entity


async def write_entity(table: TableClient, entity: dict[str, Any], etag: str | None) -> str | None:
    """A record's row: inserted when it has no etag yet (`AlreadyExists` if one is there), else replaced
    If-Match (`StaleWrite` when it changed since it was read); its new etag."""
    if etag is None:
        return await insert_entity(table, entity)
    return await replace_entity(table, entity, etag)


async def delete_partition(table: TableClient, partition: str) -> None:
    """Delete every row of a partition, 100 per transaction; idempotent."""
    query = table.query_entities("PartitionKey eq @pk", parameters={"pk": partition}, select="RowKey")
    await delete_rows(table, [Delete(partition, e["RowKey"]) async for e in query])


class TableAdapter:
    """A repository over one per-tenant table: the client of the account holding the tenant (resolved on
    use, the table created once per worker and account)."""

    def __init__(self, storage: TenantStorage, name: str) -> None:
        self._storage = storage
        self._name = name

    async def _table(self, tenant_id: str) -> TableClient:
        return await (await self._storage.for_tenant(tenant_id)).table(self._name)
