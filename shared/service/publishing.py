"""Publishing changes: append to the tenant's feed, then queue their delivery to the host's webhook.

A sync run announces through an outbox (`announce`): the changes go into the user's status partition with
the statuses they follow from (`ItemStatusRepository.apply(..., announcing=...)`), then to the feed under
the announcement's key, then the announcement is cleared. A run that dies between any two of these
leaves either nothing (the next run plans the same changes again) or the announcement, which the next
run publishes first (`publish_pending`); the feed appends a key once, so publishing it again after a
crash that came after the append adds nothing. The host sees each change exactly once, and a change
stored as known (a created event) is always announced, so its later deletion is too.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.domain.planner import ItemStatus
from shared.observability import get_logger
from shared.service.context import UsesConfig, UsesDeliveryRequests, UsesFeed, UsesItemStatuses
from shared.service.records import Announcement, Change

log = get_logger("publishing")


class PublishPorts(UsesFeed, UsesConfig, UsesDeliveryRequests, Protocol): ...


class AnnouncePorts(PublishPorts, UsesItemStatuses, Protocol): ...


async def publish(
    services: PublishPorts, tenant_id: str, changes: Sequence[Change], *, key: str | None = None
) -> list[Change]:
    """At least once: a crash after the append and before the delivery job leaves the changes in the
    pull feed (and the next delivery of the tenant does not cover them; the feed is the record). With a
    `key` the feed appends them once; a repeat asks for their delivery again (the same range: the host
    deduplicates it by its delivery id)."""
    if not changes:
        return []
    numbered = await services.feed.append(tenant_id, changes, key=key)
    if services.config.host_webhook_url and numbered:
        first, last = numbered[0].sequence, numbered[-1].sequence
        assert first is not None and last is not None
        await services.delivery_requests.request(tenant_id, first, last)
    return numbered


async def publish_pending(services: AnnouncePorts, tenant_id: str, scope: str) -> Announcement | None:
    """What a run that died left announced but maybe unpublished in this status scope, published now
    (once, whatever the earlier run got to) and cleared; answers it (None: nothing was pending). Call it
    after the scope's `load` and before this run publishes anything."""
    pending = await services.item_statuses.pending(tenant_id, scope)
    if pending is None:
        return None
    log.info("publishing the %d changes a run stored and did not finish announcing", len(pending.changes))
    await publish_stored(services, tenant_id, Stored(scope, pending))
    return pending


def not_yet_announced(changes: Sequence[Change], pending: Announcement | None) -> list[Change]:
    """`changes` less those the pending announcement just published (an earlier run whose statuses were
    stored only in part plans them again from the same delta link)."""
    if pending is None:
        return list(changes)
    published = {_identity(c) for c in pending.changes}
    return [c for c in changes if _identity(c) not in published]


@dataclass(frozen=True, slots=True)
class Stored:
    """An announcement stored in a status scope and not yet published (`store`): another scope's run
    publishes it with its own (`announce_along`), or `publish_stored` alone."""

    scope: str
    announcement: Announcement


async def store(
    services: AnnouncePorts,
    tenant_id: str,
    scope: str,
    statuses: tuple[Sequence[ItemStatus], Sequence[str]],
    changes: Sequence[Change],
) -> Stored | None:
    """The first step of `announce` alone: the statuses stored with the changes they follow from (None
    when there are none: the statuses alone). Until it is published, the scope's next run publishes it
    (`publish_pending`), so a caller that dies first loses nothing."""
    upserts, deletes = statuses
    if not changes:
        await services.item_statuses.apply(tenant_id, scope, upserts, deletes)
        return None
    announcement = Announcement(uuid.uuid4().hex, tuple(changes))
    await services.item_statuses.apply(tenant_id, scope, upserts, deletes, announcing=announcement)
    return Stored(scope, announcement)


async def announce(
    services: AnnouncePorts,
    tenant_id: str,
    scope: str,
    statuses: tuple[Sequence[ItemStatus], Sequence[str]] | None,
    changes: Sequence[Change],
) -> list[Change]:
    """Store the statuses (upserts, deletes) with the changes they follow from, publish the changes,
    clear them: the host sees each change exactly once whatever fails in between (see the module).
    Answers the changes numbered. `statuses` None (a quiet run, which stores none): only published."""
    published, _ = await announce_along(services, tenant_id, scope, statuses, changes, ())
    return published


async def announce_along(  # noqa: PLR0917 (announce's, and what goes along)
    services: AnnouncePorts,
    tenant_id: str,
    scope: str,
    statuses: tuple[Sequence[ItemStatus], Sequence[str]] | None,
    changes: Sequence[Change],
    along: Sequence[Stored],
) -> tuple[list[Change], list[list[Change]]]:
    """`announce`, with announcements other scopes stored (`along`: a migration's To Do list) published in
    the same feed round, before these changes, and cleared with them. Answers these changes numbered,
    and each of `along`'s."""
    own = await store(services, tenant_id, scope, statuses, changes) if statuses is not None else None
    stored = [*along, *([own] if own is not None else [])]
    unkeyed = list(changes) if statuses is None else []
    # At once: the feed's writer takes them in this order, in one round as a rule (their sequences
    # contiguous, one delivery of the range).
    published = await asyncio.gather(
        *(publish_stored(services, tenant_id, s) for s in stored),
        *([publish(services, tenant_id, unkeyed)] if unkeyed else []),
    )
    mine = published[-1] if own is not None or unkeyed else []
    return mine, list(published[: len(along)])


async def publish_stored(services: AnnouncePorts, tenant_id: str, stored: Stored) -> list[Change]:
    """A stored announcement published (the feed appends its key once) and cleared; its changes numbered."""
    announcement = stored.announcement
    published = await publish(services, tenant_id, announcement.changes, key=announcement.key)
    await services.item_statuses.announced(tenant_id, stored.scope, announcement.key)
    return published


def _identity(change: Change) -> tuple[str, str | None, str]:
    return change.type, change.staff_id, json.dumps(change.data, sort_keys=True, default=str)
