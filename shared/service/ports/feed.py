"""The tenant's change feed, and its delivery to the host: the host's webhook and the dead letters of what
it never took."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from shared.service.records import Change, DeadLetter


class ChangeFeed(Protocol):
    async def append(
        self, tenant_id: str, changes: Sequence[Change], *, key: str | None = None
    ) -> list[Change]:
        """Append in order, all or none; returns them with their sequence numbers. `ChangeTooLarge`
        when one is over `change_json.MAX_CHANGE_CHARS` encoded. With a `key`, once: a repeat of the
        key (an announcement published again after a crash) appends nothing and answers the changes
        with the numbers they were first given."""
        ...

    async def read(self, tenant_id: str, after: int, limit: int) -> list[Change]:
        """Up to `limit` changes after the cursor `after`, in order. `ChangesPruned` when the changes
        right after it are no longer kept (pruned or cleared)."""
        ...

    async def read_json(self, tenant_id: str, after: int, limit: int) -> list[tuple[int, str]]:
        """What `read` answers, as each change's sequence number and its `change_json` shape as JSON
        text (passed on as stored, not decoded)."""
        ...

    async def prune(self, tenant_id: str, before: datetime) -> int:
        """Delete the changes published before `before`, oldest first, keeping at least the newest
        stored row (packed changes go together); answers how many went."""
        ...

    async def clear(self, tenant_id: str) -> None:
        """Delete every change; the numbering goes on after the last one (a disconnect)."""
        ...

    async def head(self, tenant_id: str) -> int:
        """The last sequence number the feed holds (0 when empty)."""
        ...

    async def delete_tenant(self, tenant_id: str) -> None:
        """Everything, the numbering too (tests and tooling; the services clear instead)."""
        ...


class HostWebhook(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """The webhook's 2xx status; raises DeliveryFailed."""
        ...


class DeadLetterRepository(Protocol):
    async def add(self, letter: DeadLetter) -> None: ...
    async def list(self, tenant_id: str) -> list[DeadLetter]: ...
    async def delete(self, tenant_id: str, first_sequence: int) -> None: ...
    async def delete_tenant(self, tenant_id: str) -> None: ...
