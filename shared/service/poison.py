"""The poison queues in the console: the jobs that failed every try, with the reason, redelivered or dropped.

A job that fails on its last try (`jobs.MAX_DEQUEUE`, the host's `maxDequeueCount`) is parked on
`<queue>-poison` by the queue trigger itself, its message wrapped with the reason, the time and the tries
(`park`), and the trigger then returns, so the host deletes the original. A message the host moved itself
is the bare job: no try ended in a failure the trigger saw, so each ended with the worker (it stopped, ran
out of memory or passed the function timeout): its reason says so, its tries are the host's
`maxDequeueCount` and its time is when it reached the poison queue. Each tenant's console sees only its own
jobs (the tenant's id; Graph's notifications by the tenant's directory id).

Storage peeks at most the first 32 messages of a queue, and receiving more would hide them and count a try
on each: the listing looks at those 32 and says how many the queue holds (every tenant's), so the console
can say that more wait behind them (they show as the first are redelivered or dropped).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from shared.domain.tenants import Tenant
from shared.observability import get_logger
from shared.service import jobs
from shared.service.context import UsesClock, UsesJobs, UsesPoison
from shared.service.errors import InvalidInput, NotFound
from shared.service.job_codec import MalformedJob, decode
from shared.service.jobs import Job, Notified
from shared.service.ports.poison import PoisonMessage
from shared.service.tenants import TenantPorts, get_tenant

log = get_logger("jobs")

HOST_MOVED: Final = (
    f"moved by the Functions host after {jobs.MAX_DEQUEUE} tries, none of which failed in the job: each ended"
    " with its worker (stopped, out of memory, or past host.json's functionTimeout); the log has its"
    " message id"
)
MAX_REASON: Final = 1000


class ParkPorts(UsesPoison, UsesClock, Protocol): ...


class PoisonPorts(TenantPorts, UsesPoison, UsesJobs, Protocol):
    """The console's view of the poison queues: the tenant, the queues, the job queue to redeliver on."""


@dataclass(frozen=True, slots=True)
class PoisonEntry:
    queue: str
    message_id: str
    kind: str
    reason: str
    failed_at: datetime | None
    attempts: int | None
    job: dict[str, Any]  # the job's members (ids only: tenant, staff, appointment, range)


async def park(services: ParkPorts, queue: str, body: bytes | str, error: BaseException, tries: int) -> None:
    """Put a job that failed its last try on `<queue>-poison`, with why."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    reason = f"{type(error).__name__}: {error}"[:MAX_REASON]
    wrapped = {
        "poisoned": {"reason": reason, "failed_at": services.clock.now().isoformat(), "attempts": tries},
        "message": text,
    }
    await services.poison.put(queue, json.dumps(wrapped, separators=(",", ":")))
    log.error("job on %s failed on its last try (%d): parked on %s-poison: %s", queue, tries, queue, reason)


def _unwrapped(message: PoisonMessage) -> tuple[str, str, datetime | None, int | None]:
    """The job's message, the reason, when and after how many tries."""
    try:
        data = json.loads(message.body)
    except ValueError:
        data = None
    if (
        isinstance(data, dict)
        and isinstance(data.get("poisoned"), dict)
        and isinstance(data.get("message"), str)
    ):
        about = data["poisoned"]
        failed = about.get("failed_at")
        return (
            data["message"],
            str(about.get("reason") or HOST_MOVED),
            datetime.fromisoformat(failed) if isinstance(failed, str) else None,
            about.get("attempts") if isinstance(about.get("attempts"), int) else None,
        )
    return message.body, HOST_MOVED, message.inserted_at, jobs.MAX_DEQUEUE


def _entry(message: PoisonMessage, tenant: Tenant) -> tuple[PoisonEntry, Job] | None:
    """The message as the console shows it, when it is a job of this tenant."""
    text, reason, failed_at, attempts = _unwrapped(message)
    try:
        job = decode(message.queue, text)
    except MalformedJob:
        return None  # names no tenant: never shown to one
    owner = job.directory_id if isinstance(job, Notified) else job.tenant_id
    if owner not in (tenant.tenant_id, tenant.directory_id):
        return None
    members = json.loads(text)
    members.pop("kind", None)
    entry = PoisonEntry(
        message.queue, message.message_id, str(job.kind), reason, failed_at, attempts, members
    )
    return entry, job


def _queue(queue: str) -> str:
    if queue not in jobs.QUEUES:
        raise InvalidInput("queue", f"must be one of: {', '.join(jobs.QUEUES)}")
    return queue


@dataclass(frozen=True, slots=True)
class PoisonQueueCount:
    queue: str
    messages: int  # what `<queue>-poison` holds, every tenant's (approximate)
    looked_at: int  # the first ones, peeked (at most 32): the tenant's among them are listed


@dataclass(frozen=True, slots=True)
class PoisonListing:
    entries: list[PoisonEntry]
    queues: list[PoisonQueueCount]  # the queues holding any message

    @property
    def complete(self) -> bool:
        """Every message of every poison queue was looked at."""
        return all(q.looked_at >= q.messages for q in self.queues)


async def list_poison(services: PoisonPorts, tenant_id: str) -> PoisonListing:
    tenant = await get_tenant(services, tenant_id)
    found: list[PoisonEntry] = []
    counts: list[PoisonQueueCount] = []
    for queue in jobs.QUEUES:
        peeked = await services.poison.peek(queue)
        if not peeked:
            continue
        held = max(len(peeked), await services.poison.count(queue))
        counts.append(PoisonQueueCount(queue, held, len(peeked)))
        for message in peeked:
            shown = _entry(message, tenant)
            if shown is not None:
                found.append(shown[0])
    return PoisonListing(found, counts)


async def _take(
    services: PoisonPorts, tenant_id: str, queue: str, message_id: str
) -> tuple[PoisonEntry, Job]:
    """The tenant's poison message, removed from its queue (NotFound when not this tenant's or gone)."""
    tenant = await get_tenant(services, tenant_id)
    queue = _queue(queue)
    listed = {m.message_id: m for m in await services.poison.peek(queue)}
    if message_id not in listed or _entry(listed[message_id], tenant) is None:
        raise NotFound("poison message", message_id, "poison_id")
    taken = await services.poison.take(queue, message_id)
    shown = _entry(taken, tenant) if taken is not None else None
    if shown is None:
        raise NotFound("poison message", message_id, "poison_id")
    return shown


async def redeliver_poison(services: PoisonPorts, tenant_id: str, queue: str, message_id: str) -> PoisonEntry:
    """Put the job back on its queue (it runs again from the start) and off the poison queue."""
    entry, job = await _take(services, tenant_id, queue, message_id)
    await services.jobs.enqueue([job])
    log.info("poison message %s of %s redelivered (%s)", message_id, queue, entry.kind)
    return entry


async def drop_poison(services: PoisonPorts, tenant_id: str, queue: str, message_id: str) -> PoisonEntry:
    entry, _ = await _take(services, tenant_id, queue, message_id)
    log.info("poison message %s of %s dropped (%s)", message_id, queue, entry.kind)
    return entry
