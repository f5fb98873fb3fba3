"""The queues and the jobs that travel on them."""

from __future__ import annotations

import json
from typing import Any, Final

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


def sync_user(
    tenant_id: str,
    staff_id: str,
    reason: str = "notified",
    *,
    kind: str = "sync",
    delay_seconds: int = 0,
    **extra: Any,
) -> Job:
    """One user's calendar: `sync` catches up through delta; `resync` reads the whole window and renews the
    subscription (recreating it when Graph lost it); `renew` renews (or recreates) it and catches up
    through delta; `resubscribe` recreates it and catches up."""
    payload = {"staff_id": staff_id, "reason": reason, **extra}
    return Job(SYNC_QUEUE, kind, tenant_id, payload, delay_seconds=delay_seconds)


def write_appointment(
    tenant_id: str, appointment_id: str, reason: str = "changed", *, delay_seconds: int = 0, **extra: Any
) -> Job:
    """Bring every staff calendar to the appointment's current revision. `recheck` (staff ids): copies a
    delta read saw changed in Outlook, to be checked (and, by the tenant's policy, put back)."""
    payload = {"appointment_id": appointment_id, "reason": reason, **extra}
    return Job(WRITE_QUEUE, "write", tenant_id, payload, delay_seconds=delay_seconds)


def notified(directory_id: str, subscription_id: str, graph_user_id: str) -> Job:
    """Graph notified a change in a mailbox; the worker finds the user through the subscription index."""
    return Job(
        SYNC_QUEUE,
        "notified",
        directory_id,
        {"subscription_id": subscription_id, "graph_user_id": graph_user_id},
    )


def renew_tenant(tenant_id: str) -> Job:
    """Renew the tenant's subscriptions that expire soon, recreate missing ones, check silent ones."""
    return Job(TENANT_QUEUE, "renew_subscriptions", tenant_id)


def nightly(tenant_id: str) -> Job:
    """The nightly pass over a tenant: credential expiry, directory changes, a resync of every user."""
    return Job(TENANT_QUEUE, "nightly", tenant_id)


def deliver(
    tenant_id: str, first_sequence: int, last_sequence: int, attempt: int = 0, delay_seconds: int = 0
) -> Job:
    """Post the feed's changes first..last (inclusive) to the host's webhook, signed."""
    return Job(
        DELIVERY_QUEUE,
        "deliver",
        tenant_id,
        {"first": first_sequence, "last": last_sequence, "attempt": attempt},
        delay_seconds=delay_seconds,
    )


def job_to_message(job: Job) -> str:
    return json.dumps({"kind": job.kind, "tenant_id": job.tenant_id, **job.payload}, separators=(",", ":"))


def job_from_message(queue: str, body: bytes | str) -> Job:
    """The inverse of `job_to_message`; ValueError for anything else (the trigger drops it)."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError("not JSON") from error
    if not isinstance(data, dict):
        raise ValueError("not a job message")
    kind, tenant_id = data.pop("kind", None), data.pop("tenant_id", None)
    if not isinstance(kind, str) or not isinstance(tenant_id, str):
        raise ValueError("not a job message")
    return Job(queue, kind, tenant_id, data)
