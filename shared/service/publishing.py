"""Publishing changes: append to the tenant's feed, then queue their delivery to the host's webhook."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.service.context import UsesConfig, UsesDeliveryRequests, UsesFeed
from shared.service.records import Change


class PublishPorts(UsesFeed, UsesConfig, UsesDeliveryRequests, Protocol): ...


async def publish(services: PublishPorts, tenant_id: str, changes: Sequence[Change]) -> list[Change]:
    """At least once: a crash after the append and before the delivery job leaves the changes in the
    pull feed (and the next delivery of the tenant does not cover them; the feed is the record)."""
    if not changes:
        return []
    numbered = await services.feed.append(tenant_id, changes)
    if services.config.host_webhook_url and numbered:
        first, last = numbered[0].sequence, numbered[-1].sequence
        assert first is not None and last is not None
        await services.delivery_requests.request(tenant_id, first, last)
    return numbered
