"""The queues and the jobs that travel on them."""

from __future__ import annotations

from typing import Final

from shared.service.ports import Job

SYNC_QUEUE: Final = "sync-jobs"  # per-user work: migrate, sync, resync, renew
TENANT_QUEUE: Final = "tenant-jobs"  # per-tenant work: discover, rematch, disconnect, fan-out
DELIVERY_QUEUE: Final = "host-deliveries"  # signed webhooks to the host
WRITE_QUEUE: Final = "outlook-writes"  # host appointments written to Outlook
QUEUES: Final = (SYNC_QUEUE, TENANT_QUEUE, DELIVERY_QUEUE, WRITE_QUEUE)


def discover(tenant_id: str) -> Job:
    """Match every staff member (or list every mailbox, for the all-users scope)."""
    return Job(TENANT_QUEUE, "discover", tenant_id)


def rematch(tenant_id: str) -> Job:
    return Job(TENANT_QUEUE, "rematch", tenant_id)


def disconnect(tenant_id: str) -> Job:
    return Job(TENANT_QUEUE, "disconnect", tenant_id)


def migrate_user(tenant_id: str, staff_id: str) -> Job:
    return Job(SYNC_QUEUE, "migrate", tenant_id, {"staff_id": staff_id})
