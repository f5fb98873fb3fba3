"""The `mailboxclaims` table: which worker sends Graph requests to a mailbox (`MailboxClaims`, used by the
Graph adapter's `MailboxGate`). One row per mailbox being worked on, in a partition of its own (no
tenant's or mailbox's load shares a partition), deleted when its worker lets go; a claim a dead worker
left lapses at `ExpiresAt`.

A worker's burst of requests on a mailbox costs two writes: the claiming insert and the releasing
delete If-Match the ETag that insert answered; a burst longer than half the claim's lifetime renews it
(a replace If-Match). Meeting another worker's claim costs a read per look."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables.aio import TableClient

from shared.adapters.storage import StorageClients
from shared.adapters.tables.rows import (
    RACE_ATTEMPTS,
    escape_key,
    etag_of,
    insert_entity,
    read_entity,
    replace_entity,
    required_utc,
)
from shared.service.errors import AlreadyExists, StaleWrite

MAILBOX_CLAIMS: Final = "mailboxclaims"
CLAIM_ROW: Final = "claim"


class TableMailboxClaims:
    """In the home account: a mailbox's claim is taken by the Graph adapter, which names the mailbox, not
    its tenant (one partition per mailbox, so the account's load, not a partition's, is what grows)."""

    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage
        self._held: dict[tuple[str, str], str] = {}  # (mailbox, worker) -> the row's ETag as written

    async def _table(self) -> TableClient:
        return await self._storage.table(MAILBOX_CLAIMS)

    @staticmethod
    def _entity(mailbox: str, worker: str, expires_at: datetime) -> dict[str, Any]:
        return {
            "PartitionKey": escape_key(mailbox),
            "RowKey": CLAIM_ROW,
            "Mailbox": mailbox,
            "Owner": worker,
            "ExpiresAt": expires_at,
        }

    async def claim(self, mailbox: str, worker: str, ttl: float) -> float | None:
        table = await self._table()
        now = datetime.now(UTC)
        entity = self._entity(mailbox, worker, now + timedelta(seconds=ttl))
        held = self._held.get((mailbox, worker))
        for _ in range(RACE_ATTEMPTS):
            if held is not None:
                try:
                    self._remember(mailbox, worker, await replace_entity(table, entity, held))
                    return None
                except StaleWrite:
                    self._held.pop((mailbox, worker), None)  # lapsed and taken, or gone: look again
            try:
                self._remember(mailbox, worker, await insert_entity(table, entity))
                return None
            except AlreadyExists:
                row = await read_entity(table, escape_key(mailbox), CLAIM_ROW)
            if row is None:
                held = None
                continue
            expires = required_utc(row["ExpiresAt"])
            if row["Owner"] != worker and expires > now:
                return (expires - now).total_seconds()
            held = etag_of(row)  # ours from before, or lapsed: take it over If-Match
            if held is None:
                continue
        raise StaleWrite(f"mailbox claim {mailbox}: too much contention")

    async def release(self, mailbox: str, worker: str) -> None:
        etag = self._held.pop((mailbox, worker), None)
        if etag is None:
            return
        table = await self._table()
        try:
            await table.delete_entity(
                escape_key(mailbox), CLAIM_ROW, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceNotFoundError:
            return
        except (ResourceExistsError, HttpResponseError) as error:
            if getattr(error, "status_code", None) in (404, 409, 412):
                return  # lapsed and taken over by another worker: theirs now
            raise

    def _remember(self, mailbox: str, worker: str, etag: str | None) -> None:
        if etag:
            self._held[(mailbox, worker)] = etag
