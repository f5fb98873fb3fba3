"""One run per key across workers (a user's calendar, an appointment): the lease loop both executors share.

A run takes the lease or, when another worker holds it, sets its 'run again' flag (the holder runs once
more before letting go) and answers False; the caller then schedules one check-back after the lease's
lifetime, in case that holder died. The check-backs' count is the waiting of one message: a message the
queue delivers again (its earlier delivery may have taken the lease and died with it) waits afresh, so
a dead holder's work is taken over even when the job that died was itself a check-back. Passes are
numbered: pass 0 is the job itself, later ones catch up on what was asked for while the earlier pass ran.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
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
# The jobs that give up waiting after `MAX_CHECK_BACKS` (a staff member's clean-up goes ahead instead).
_CHECKS_BACK: Final = (SyncUser, SyncTasks, WriteAppointment, SendMail, WriteTask)


async def run_leased(
    leases: LeaseStore, clock: Clock, key: str, ttl: timedelta, run_pass: Callable[[int], Awaitable[None]]
) -> bool:
    """Run passes under the lease until nobody asked for another; False when the lease was taken."""
    owner = uuid.uuid4().hex
    if await leases.acquire(key, owner, ttl, clock.now()) is LeaseOutcome.DEFERRED:
        return False
    number = 0
    try:
        while True:
            await run_pass(number)
            if not await leases.release(key, owner):
                return True
            number += 1
    except BaseException:
        # Let go even if someone asked for another pass: this run failed, and the queue retries it.
        while await leases.release(key, owner):
            continue
        raise


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
