"""Outlook to host for To Do: a staff member's task list read through tasks delta, and the change
notifications on it. (The list itself, found by name or made, and the host's task writes are the
`todo` port's.)"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Protocol, TypeAlias

from shared.domain.tenants import Tenant
from shared.service.records import GraphSubscription, TaskDeltaRead

# The user's IANA zone for a read's due dates: known (or None: the days as answered), or an awaitable
# answering it (a migration's, from the working hours the calendar's run reads meanwhile).
ZoneOfRead: TypeAlias = str | Awaitable[str | None] | None


class TaskChangesGateway(Protocol):
    """One To Do list through Graph: its tasks delta and its `todoTask` subscription."""

    async def read_tasks_delta(
        self,
        tenant: Tenant,
        graph_user_id: str,
        list_id: str,
        delta_link: str | None,
        zone: ZoneOfRead = None,
    ) -> TaskDeltaRead:
        """Follow `delta_link` (or read the whole list) to its next delta link, every task with its
        linked resources, due and start dates as days in `zone` (the user's IANA zone). A `zone` still to
        come is awaited once the pages are in, so the read's requests never wait for it. Raises
        DeltaTokenRejected (an expired or unreadable link), MailboxUnavailable (the list or mailbox is
        gone), RateLimited, TenantAccessError."""
        ...

    async def subscribe_tasks(
        self, tenant: Tenant, graph_user_id: str, list_id: str, client_state: str, expires_at: datetime
    ) -> GraphSubscription:
        """`created,updated,deleted` on the list's tasks, notification and lifecycle URLs set (an existing
        identical subscription of the connector's is adopted and renewed). Renewing, deleting and listing
        are the `SubscriptionGateway`'s, as for events."""
        ...
