"""The message monitor in memory, keyed and ordered as the table keys it (newest first by message id)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shared.service.monitor import MessagePage, MessageQuery, MonitoredMessage, message_time


class FakeMessages:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], MonitoredMessage] = {}

    async def record(self, messages: Sequence[MonitoredMessage]) -> None:
        for message in messages:
            assert message.message_id, "a message is recorded under its id"
            key = (message.tenant_id, message.message_id)
            assert key not in self.rows, "an insert: one row per id"
            self.rows[key] = message

    async def list(self, tenant_id: str, query: MessageQuery) -> MessagePage:
        ids = sorted(i for t, i in self.rows if t == tenant_id)
        found: list[MonitoredMessage] = []
        for message_id in ids:
            if query.cursor is not None and message_id <= query.cursor:
                continue
            if message_time(message_id) < query.since.replace(
                microsecond=query.since.microsecond // 1000 * 1000
            ):
                break
            message = self.rows[(tenant_id, message_id)]
            if query.admits(message):
                found.append(message)
                if len(found) >= query.limit:
                    return MessagePage(found, found[-1].message_id)
        return MessagePage(found, None)

    async def get(self, tenant_id: str, message_id: str) -> MonitoredMessage | None:
        return self.rows.get((tenant_id, message_id))

    async def prune(self, tenant_id: str, before: datetime) -> int:
        old = [k for k in self.rows if k[0] == tenant_id and message_time(k[1]) < before]
        for key in old:
            del self.rows[key]
        return len(old)

    async def delete_staff(self, tenant_id: str, staff_id: str) -> None:
        for key in [k for k, m in self.rows.items() if k[0] == tenant_id and m.staff_id == staff_id]:
            del self.rows[key]

    async def delete_tenant(self, tenant_id: str) -> None:
        for key in [k for k in self.rows if k[0] == tenant_id]:
            del self.rows[key]

    def of(self, tenant_id: str) -> list[MonitoredMessage]:
        """The tenant's messages, oldest first."""
        return [self.rows[k] for k in sorted((k for k in self.rows if k[0] == tenant_id), reverse=True)]
