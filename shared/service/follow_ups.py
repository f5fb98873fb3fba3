"""One delta catch-up a little after a mailbox's last notification: what a lost notification announced.

Graph may delay a change notification or drop it unrecoverably (an endpoint in the "drop" state, a
subscription's paused notifications; graph-contract §5.6 and the lifecycle table: "resync via delta"). A
notification's own run reads what changed up to then; a change made after
it whose notification was lost would otherwise wait for the next notification of that mailbox, the
silent-subscription check or the nightly run. So a notification marks the subscription's index record
(`last_notified_at`, at most every `MARK_EVERY`) and each mark queues one catch-up `FOLLOW_UP_AFTER`
later. Debounced: a catch-up finding a later mark stands down (that mark queued its own), so a burst of
notifications costs one read after its last one. A change lost within `FOLLOW_UP_AFTER - MARK_EVERY` of the
mailbox's last delivered notification heals within minutes; an isolated one, at the nightly run. An idle
mailbox (no notification) costs nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Protocol

from shared.observability import get_logger
from shared.service import jobs
from shared.service.context import UsesSubscriptionIndex, UsesUsers
from shared.service.jobs import SyncTasks, SyncUser
from shared.service.records import SubscriptionRecord, Watched

log = get_logger("follow_ups")

FOLLOW_UP_REASON: Final = "follow_up"
FOLLOW_UP_AFTER: Final = timedelta(minutes=2)  # the catch-up, this long after the mark that queued it
MARK_EVERY: Final = timedelta(seconds=30)  # a notification marks the index when the mark is older than this
# A catch-up stands down for a mark this much younger than its own (marks are `MARK_EVERY` apart or more).
_LATER_BY: Final = MARK_EVERY / 2


class FollowUpPorts(UsesUsers, UsesSubscriptionIndex, Protocol):
    """The user (which subscription is theirs) and the index's marks."""


def unmarked_since(now: datetime) -> datetime:
    """A new subscription's mark: its silence counted from now, yet its first notification still marks
    (and so queues a catch-up), as no catch-up is queued for this one."""
    return now - MARK_EVERY


def marks_now(record: SubscriptionRecord, now: datetime) -> bool:
    """A notification that marks the index now (and so queues a catch-up): the mark `MARK_EVERY` old."""
    return record.last_notified_at is None or now - record.last_notified_at >= MARK_EVERY


def follow_up(record: SubscriptionRecord) -> SyncUser | SyncTasks:
    """The catch-up a mark queues: the calendar's or the To Do list's delta, `FOLLOW_UP_AFTER` from now."""
    delay = int(FOLLOW_UP_AFTER.total_seconds())
    if record.watches is Watched.TASKS:
        return jobs.sync_tasks(record.tenant_id, record.staff_id, FOLLOW_UP_REASON, delay_seconds=delay)
    return jobs.sync_user(record.tenant_id, record.staff_id, FOLLOW_UP_REASON, delay_seconds=delay)


async def superseded(services: FollowUpPorts, job: SyncUser | SyncTasks, now: datetime) -> bool:
    """A catch-up whose mailbox was notified (marked) after the mark that queued it: the later mark's own
    catch-up comes after it, so this one stands down. A late catch-up may miss that and run: one read more."""
    if job.reason != FOLLOW_UP_REASON:
        return False
    user = await services.users.get(job.tenant_id, job.staff_id)
    if user is None:
        return False
    subscription_id = user.task_sync.subscription_id if isinstance(job, SyncTasks) else user.subscription_id
    if subscription_id is None:
        return False
    record = await services.subscription_index.get(subscription_id)
    if record is None or record.last_notified_at is None:
        return False
    if record.last_notified_at > now - FOLLOW_UP_AFTER + _LATER_BY:
        log.info("notified again since; the later catch-up reads it")
        return True
    return False
