"""Graph subscriptions on users' events: create, renew, recreate, remove; and their index.

Each subscription's clientState is an HMAC of the directory id and the Graph user id under the current
version of the notification key, naming that version (`shared/domain/signing.py`), so the webhook checks
a notification without reading a table, whichever worker made the subscription. The index
(`SubscriptionIndex`) maps a subscription id to the user it serves, for the sync job and the timers.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final, Protocol

from shared.domain.signing import client_state
from shared.domain.tenants import Tenant
from shared.domain.users import UserRecord
from shared.observability import get_logger
from shared.service.context import UsesClock, UsesKeys, UsesSubscriptionIndex, UsesSubscriptions
from shared.service.errors import SubscriptionGone
from shared.service.follow_ups import unmarked_since
from shared.service.keys import NOTIFICATION_KEY, KeyRing, SigningKey
from shared.service.ports.sync_storage import SubscriptionIndex
from shared.service.records import VERSION_NOT_KNOWN, GraphSubscription, SubscriptionRecord

log = get_logger("subscriptions")


class UnsubscribePorts(UsesSubscriptions, UsesSubscriptionIndex, Protocol):
    """Graph's subscriptions and the connector's index of them."""


class SubscribePorts(UnsubscribePorts, UsesClock, UsesKeys, Protocol):
    """Creating and renewing: the clock, and the key that signs each subscription's clientState."""


# What the connector asks for: Graph allows events "under 7 days", 10,080 minutes, and has been seen to
# enforce 10,070 (graph-contract §5.2). Renewed within `RENEW_BEFORE` of expiry: about every 6 days.
LIFETIME: Final = timedelta(minutes=10_000)
RENEW_BEFORE: Final = timedelta(hours=24)  # the renewal timer renews anything expiring sooner
SILENT_AFTER: Final = timedelta(hours=24)  # no notification for this long: catch up with delta, check it
NOTIFIED_GRANULARITY: Final = timedelta(hours=1)  # the nightly run marks what it checks, if marked longer ago


def renewal_due(expires_at: datetime | None, now: datetime) -> bool:
    """A subscription the renewal timer would renew now: expiring within `RENEW_BEFORE` (or not known)."""
    return expires_at is None or expires_at - now < RENEW_BEFORE


async def ensure_subscription(
    services: SubscribePorts, tenant: Tenant, user: UserRecord, *, force_new: bool
) -> UserRecord:
    """The user's subscription, alive for another `LIFETIME`: renewed when it exists, else created (and an
    older one removed). Answers the user with the subscription fields set (not saved)."""
    assert user.graph_user_id is not None
    now = services.clock.now()
    expires = now + LIFETIME
    key = await services.keys.signing(NOTIFICATION_KEY, fresh=force_new)
    if user.subscription_id and not force_new:
        recorded = await services.subscription_index.get(user.subscription_id)
        key, force_new = await signing_key(services.keys, recorded.key_version if recorded else None)
        if force_new:  # its clientState names another version (or none recorded): a new one, signed now
            log.info("subscription %s signed with another key version; recreating it", user.subscription_id)
        else:
            try:
                renewed = await services.subscriptions.renew(tenant, user.subscription_id, expires)
            except SubscriptionGone:
                log.info("subscription %s is gone; creating a new one", user.subscription_id)
            else:
                await _index(services.subscription_index, user, user.subscription_id, renewed, now, recorded)
                return replace(user, subscription_expires_at=renewed)
    if user.subscription_id and force_new:
        # Graph refuses a second subscription on the same resource (409 Conflict, graph-contract §5.1),
        # and adopting the one it holds would keep its clientState: the old one goes first. The run's
        # delta read, after this, covers the moment between.
        await _forget(services, tenant, user.subscription_id)
    state = client_state(key.secret, key.version, tenant.directory_id, user.graph_user_id)
    created = await services.subscriptions.create(tenant, user.graph_user_id, state, expires)
    if user.subscription_id and user.subscription_id != created.id:
        await _forget(services, tenant, user.subscription_id)
    version = signed_with(created, key)
    await _index(services.subscription_index, user, created.id, created.expires_at, now, None, version)
    log.info("subscription %s created, expires %s", created.id, created.expires_at.isoformat())
    return replace(user, subscription_id=created.id, subscription_expires_at=created.expires_at)


def signed_with(created: GraphSubscription, key: SigningKey) -> str:
    """The key version a subscription just made names: the key's, or not known when Graph already held it
    (adopted after a lost run's 409, its clientState signed then)."""
    return VERSION_NOT_KNOWN if created.adopted else key.version


async def signing_key(keys: KeyRing, recorded: str | None) -> tuple[SigningKey, bool]:
    """The notification key to sign with, and whether a subscription whose clientState names the
    `recorded` version must be re-signed (recreated): that version is not the current one (or none was
    recorded). A mismatch is checked against Key Vault afresh, so a worker whose cached version is older
    than another's never moves subscriptions back to it."""
    key = await keys.signing(NOTIFICATION_KEY)
    if recorded == key.version:
        return key, False
    key = await keys.signing(NOTIFICATION_KEY, fresh=True)
    return key, recorded != key.version


async def _index(  # noqa: PLR0917 (the index row's fields, in order)
    index: SubscriptionIndex,
    user: UserRecord,
    subscription_id: str,
    expires: datetime,
    now: datetime,
    existing: SubscriptionRecord | None,
    key_version: str | None = None,
) -> None:
    """Index the subscription for the webhook and the renewal timer. A new one's silence is counted from
    now, its first notification still queuing a catch-up, and its row names the key version that signed
    it; a renewed one keeps its last notification and its version."""
    assert user.graph_user_id is not None
    await index.put(
        SubscriptionRecord(
            subscription_id,
            user.tenant_id,
            user.staff_id,
            user.graph_user_id,
            expires,
            last_notified_at=existing.last_notified_at if existing else unmarked_since(now),
            key_version=key_version or (existing.key_version if existing else None),
        )
    )


async def _forget(services: UnsubscribePorts, tenant: Tenant, subscription_id: str) -> None:
    await services.subscriptions.delete(tenant, subscription_id)
    await services.subscription_index.delete(subscription_id)


async def remove_user_subscription(
    services: UnsubscribePorts, tenant: Tenant, user: UserRecord
) -> UserRecord:
    if user.subscription_id:
        await _forget(services, tenant, user.subscription_id)
    return replace(user, subscription_id=None, subscription_expires_at=None)


async def remove_tenant_subscriptions(services: UnsubscribePorts, tenant: Tenant) -> int:
    """Every subscription the connector holds in the tenant: the indexed ones, and any Graph still lists
    (a crash between Graph's create and the index write). Best effort against Graph when consent is gone:
    Graph drops a revoked app's subscriptions itself."""
    indexed = await services.subscription_index.for_tenant(tenant.tenant_id)
    ids = {r.subscription_id for r in indexed}
    try:
        ids |= {s.id for s in await services.subscriptions.list(tenant)}
    except Exception as error:  # consent revoked or Graph down: the index still goes
        log.warning("could not list the tenant's subscriptions in Graph: %s", type(error).__name__)
    semaphore = asyncio.Semaphore(8)

    async def remove(subscription_id: str) -> None:
        async with semaphore:
            try:
                await services.subscriptions.delete(tenant, subscription_id)
            except Exception as error:  # as above
                log.warning("could not delete subscription %s: %s", subscription_id, type(error).__name__)
            await services.subscription_index.delete(subscription_id)

    await asyncio.gather(*(remove(i) for i in sorted(ids)))
    return len(ids)
