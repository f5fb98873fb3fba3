"""The message monitor: every message in both directions and every delivery to the host, kept a number of
days (`shared/service/monitor.py` says what a message is)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from shared.service.monitor import MessagePage, MessageQuery, MonitoredMessage


class MessageLog(Protocol):
    async def record(self, messages: Sequence[MonitoredMessage]) -> None:
        """Store each message under its `message_id` (a blind insert; messages of one tenant and day go
        in one entity-group transaction)."""
        ...

    async def list(self, tenant_id: str, query: MessageQuery) -> MessagePage:
        """Newest first, from `query.cursor` (exclusive) or the newest, down to `query.since`."""
        ...

    async def get(self, tenant_id: str, message_id: str) -> MonitoredMessage | None: ...

    async def prune(self, tenant_id: str, before: datetime) -> int:
        """Delete the tenant's messages recorded before `before`; how many."""
        ...

    async def delete_staff(self, tenant_id: str, staff_id: str) -> None:
        """Delete a staff member's messages (their deletion leaves nothing of them)."""
        ...

    async def delete_tenant(self, tenant_id: str) -> None: ...
