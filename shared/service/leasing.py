"""One run per key across workers (a user's calendar, an appointment): the lease loop both executors share.

A run takes the lease or, when another worker holds it, sets its 'run again' flag (the holder runs once
more before letting go) and answers False; the caller then schedules one check-back after the lease's
lifetime, in case that holder died. A run lets go of its lease however it ends, retrying the release a
little when storage fails too (`RELEASE_TRIES`). A lease it could not let go of (storage gone, the
worker killed) does not wait out its lifetime for the run's own queue message: a run's owner names its
message and delivery (`delivery`, set by the queue trigger), and a later delivery of the same message
takes over at once what an earlier one holds. The check-backs' count is the waiting of one message: a
message the queue delivers again (its earlier delivery may have taken the lease and died with it) waits
afresh, so a dead holder's work is taken over even when the job that died was itself a check-back. Passes
are numbered: pass 0 is the job itself, later ones catch up on what was asked for while the earlier pass
ran; a later pass renews the lease first once a quarter of its lifetime went, so a run kept busy never
outlives it (a pass lasts well under three quarters of it).

A run that does a second key's work in its first pass (a migration reads the user's To Do list beside the
calendar) takes that key's lease with its own, one storage request for both, and lets go of both with one
more (`Rider`); work asked for under the rider's key meanwhile is caught up by the rider's own pass before
it lets go. When either lease has a row, the run takes its own alone and the second key's work takes its
lease itself (`holds` tells it which).
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Final

from shared.observability import get_logger
from shared.service.jobs import Job, SendMail, SyncTasks, SyncUser, WriteAppointment, WriteTask
from shared.service.ports import JobQueue
from shared.service.ports.clock import Clock
from shared.service.ports.sync_storage import LeaseStore
from shared.service.records import LeaseOutcome

log = get_logger("leasing")

MAX_CHECK_BACKS: Final = 3
RENEW_AFTER: Final = 0.25  # a run renews its lease before a later pass once this share of its lifetime went
RELEASE_TRIES: Final = 3  # a release that storage refuses is tried again this often, a little apart
RELEASE_PAUSE_SECONDS: Final = 0.5
_delivery: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar("delivery", default=None)
_riding: contextvars.ContextVar[str | None] = contextvars.ContextVar("riding", default=None)


@dataclass(frozen=True, slots=True)
class Rider:
    """A second key whose lease a run takes with its own, for the work its first pass does under that key
    too; `catch_up` is that key's own pass, run when a job for it was deferred meanwhile."""

    key: str
    catch_up: Callable[[], Awaitable[None]]


def holds(key: str) -> bool:
    """Whether the running run's first pass holds the lease of `key` as its rider (taken with its own)."""
    return _riding.get() == key


@contextmanager
def _riding_on(key: str | None) -> Iterator[None]:
    token = _riding.set(key)
    try:
        yield
    finally:
        _riding.reset(token)


@contextmanager
def delivery(message_id: str | None, tries: int) -> Iterator[None]:
    """The queue message being run (its id and dequeue count): leases taken meanwhile name it."""
    token = _delivery.set((message_id, max(tries, 1)) if message_id else None)
    try:
        yield
    finally:
        _delivery.reset(token)


def _owner() -> tuple[str, tuple[str, ...]]:
    """A new owner for a run, and the owners it succeeds: the earlier deliveries of its message."""
    current = _delivery.get()
    if current is None:
        return uuid.uuid4().hex, ()
    message_id, tries = current
    return f"{message_id}/{tries}/{uuid.uuid4().hex}", tuple(f"{message_id}/{t}/" for t in range(1, tries))


# The jobs that give up waiting after `MAX_CHECK_BACKS` (a staff member's clean-up goes ahead instead).
_CHECKS_BACK: Final = (SyncUser, SyncTasks, WriteAppointment, SendMail, WriteTask)


async def run_leased(
    leases: LeaseStore,
    clock: Clock,
    key: str,
    ttl: timedelta,
    run_pass: Callable[[int], Awaitable[None]],
    *,
    rider: Rider | None = None,
) -> bool:
    """Run passes under the lease until nobody asked for another; False when the lease was taken. With a
    `rider`, its lease is taken too when both are free, held through the first pass (`holds`)."""
    owner, succeeds = _owner()
    taken_at = clock.now()
    together = rider is not None and await leases.acquire_together([key, rider.key], owner, ttl, taken_at)
    riding = rider if together else None
    if riding is None:  # taken alone (a rider's work then takes its own lease)
        outcome = await leases.acquire(key, owner, ttl, taken_at, succeeds=succeeds)
        if outcome is LeaseOutcome.DEFERRED:
            return False
    number = 0
    try:
        while True:
            with _riding_on(riding.key if riding else None):
                await run_pass(number)
            if riding is not None:
                if await leases.release_together([key, riding.key], owner):
                    return True
                while await leases.release(riding.key, owner):
                    await riding.catch_up()  # a job for the rider's key came meanwhile, and waits for it
                riding = None
            if not await leases.release(key, owner):
                return True
            # Another pass was asked for: once a quarter of the lease's lifetime went, it starts again
            # (a run kept busy for longer than the lease lives would otherwise find its lease lapsed,
            # and a second run beside it); quick passes in a row cost no write.
            if clock.now() - taken_at >= ttl * RENEW_AFTER:
                taken_at = clock.now()
                renewed = await leases.acquire(key, owner, ttl, taken_at, succeeds=succeeds)
                if renewed is LeaseOutcome.DEFERRED:
                    return True  # it lapsed and was taken meanwhile: the taker runs
            number += 1
    except BaseException:
        # Let go even if someone asked for another pass: this run failed, and the queue retries it.
        if riding is not None:
            await _let_go(leases, riding.key, owner)
        await _let_go(leases, key, owner)
        raise


async def _let_go(leases: LeaseStore, key: str, owner: str) -> None:
    """Release whatever the flag says, tried again when storage fails too; given up quietly (the run's
    own error is what counts): the next delivery of its message takes the lease over."""
    for attempt in range(RELEASE_TRIES):
        try:
            while await leases.release(key, owner):
                continue
            return
        except Exception as error:
            if attempt + 1 == RELEASE_TRIES:
                log.warning(
                    "lease %s kept after the run failed (%s): its redelivery takes it over", key, error
                )
                return
            await asyncio.sleep(RELEASE_PAUSE_SECONDS * (attempt + 1))


async def check_back(
    queue: JobQueue, job: SyncUser | SyncTasks | WriteAppointment | SendMail | WriteTask, ttl: timedelta
) -> None:
    """Queue `job` again once the lease has surely lapsed (a dead holder's lease lapses unreleased): a
    cheap run if all is well. At most `MAX_CHECK_BACKS` times in a row."""
    checks = job.check_back
    if checks >= MAX_CHECK_BACKS:
        log.warning("the lease stayed taken through %d checks; the next schedule catches up", checks)
        return
    delay = int(ttl.total_seconds()) + 5
    await queue.enqueue([replace(job, check_back=checks + 1, delay_seconds=delay)])
    log.info("another worker holds the lease; it runs once more, and this is checked in %d s", delay)


def redelivered(job: Job) -> Job:
    """`job` as the queue delivers it again: its check-backs counted from none. Each delay of a check-back
    outlasts the lease, so a count reached means the lease was taken anew meanwhile; a delivery again
    means this message's earlier run may have been that taker, and died holding the lease."""
    if isinstance(job, _CHECKS_BACK) and job.check_back:
        return replace(job, check_back=0)
    return job
