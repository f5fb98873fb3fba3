"""The ports the handlers need, as Protocols named by role, one module a role. Adapters implement them;
tests fake them. The records they speak are in `shared.service.records`, the errors they raise in
`shared.service.errors`.

- `clock`: the time.
- `tenancy`: tenants, their staff (users) and the consent links.
- `secret_store`: Key Vault's secrets.
- `graph`: Microsoft 365 through Graph: the directory, customer apps, calendar reads, subscriptions.
- `sync_storage`: what the Outlook-to-host sync keeps: item statuses, leases, the subscription index.
- `feed`: the change feed and its delivery to the host (the webhook, dead letters).
- `appointments`: host to Outlook: the host's appointments and the calendar writes.
- here: the queued work (`Job`, `JobQueue`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Job:
    """A unit of queued work."""

    queue: str
    kind: str
    tenant_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    delay_seconds: int = 0  # invisible on the queue this long (a backoff, a Retry-After)


class JobQueue(Protocol):
    async def enqueue(self, jobs: Iterable[Job]) -> None: ...
