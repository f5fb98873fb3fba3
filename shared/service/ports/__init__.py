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
- `todo`: Microsoft To Do: the host's tasks (`TaskRepository`) and the staff's lists (`TodoGateway`).
- here: the queue the handlers put work on (`JobQueue`; the jobs themselves are `shared.service.jobs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from shared.service.jobs import Job


class JobQueue(Protocol):
    async def enqueue(self, jobs: Iterable[Job]) -> None: ...

    async def enqueue_off_home(self, jobs: Sequence[Job]) -> list[Job]:
        """Queue the jobs whose tenant's queues are in another storage account than the home one (a
        sharded tenant); return the others, for the caller's queue output binding (the home account)."""
        ...
