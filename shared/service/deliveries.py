"""The change feed delivered to the host's webhook: signed, in order, retried with backoff, dead-lettered.

A `deliver` job names a range of a tenant's gapless feed (first..last, inclusive). The changes are posted
in order, at most `max_batch` per post, each post signed over its timestamp and body with the operator's
`host-webhook-secret` and named by a delivery id (`{tenant}:{first}-{last}`) so that the host can
deduplicate a post it took whose answer was lost. A post the webhook refuses re-queues the rest of the
range with an exponential, capped delay; after `max_attempts` the rest becomes a dead letter, which the
operator can redeliver. The changes stay in the pull feed either way.

Retries live here and only here: the webhook adapter tries once, and the queue's own redelivery is left
for failures of our own dependencies (storage, Key Vault).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final, Protocol

from shared.domain.signing import SIGNATURE_HEADER, sign_delivery
from shared.observability import get_logger
from shared.service import jobs
from shared.service.context import (
    UsesClock,
    UsesConfig,
    UsesDeadLetters,
    UsesFeed,
    UsesJobs,
    UsesKeys,
    UsesWebhook,
)
from shared.service.delivery_policy import DeliveryPolicy
from shared.service.errors import ChangesPruned, DeliveryFailed
from shared.service.jobs import Deliver
from shared.service.keys import HOST_WEBHOOK_SECRET
from shared.service.ports.clock import Clock
from shared.service.ports.feed import DeadLetterRepository
from shared.service.records import DeadLetter
from shared.service.tenants import TenantPorts

DELIVERY_HEADER: Final = "X-Connector-Delivery"  # `{tenant}:{first}-{last}`, the same on every retry
ATTEMPT_HEADER: Final = "X-Connector-Delivery-Attempt"  # 1 on the first try
CONTENT_TYPE: Final = "application/json"
MISSING_SECRET_REASON: Final = (
    f"no {HOST_WEBHOOK_SECRET} in Key Vault: set the secret the host verifies signatures with, "
    "then redeliver the dead letters"
)

log = get_logger("deliveries")


class DeadLetterPorts(UsesDeadLetters, Protocol): ...


class RedeliverPorts(DeadLetterPorts, UsesJobs, UsesConfig, Protocol):
    """Redelivering dead letters: fresh delivery jobs, when there is a webhook to deliver to."""


class DeliveryPorts(RedeliverPorts, TenantPorts, UsesFeed, UsesClock, UsesWebhook, UsesKeys, Protocol):
    """A delivery job: the feed's range, signed and posted, retried or dead-lettered."""


DEFAULT_POLICY: Final = DeliveryPolicy()


@dataclass(frozen=True, slots=True)
class _Range:
    first: int
    last: int
    attempt: int  # failed tries so far (0 on the first)


async def deliver_changes(
    services: DeliveryPorts, job: Deliver, policy: DeliveryPolicy = DEFAULT_POLICY
) -> None:
    """Run a `deliver` job (see `jobs.deliver`)."""
    url = services.config.host_webhook_url
    if url is None:
        return  # the pull feed only
    span = _Range(job.first, job.last, job.attempt)
    tenant_id = job.tenant_id
    tenant = await services.tenants.get(tenant_id)
    if tenant is None or tenant.state.gone:
        return
    secret = await services.keys.key(HOST_WEBHOOK_SECRET, create=False)
    if secret is None:  # no retry: nothing changes until the operator acts
        await _dead_letter(
            services.dead_letters,
            services.clock,
            tenant_id,
            span.first,
            span.last,
            attempts=span.attempt + 1,
            reason=MISSING_SECRET_REASON,
        )
        return
    start = span.first
    while start <= span.last:
        end = min(start + policy.max_batch - 1, span.last)
        try:
            changes = await services.feed.read_json(tenant_id, start - 1, end - start + 1)
        except ChangesPruned as pruned:  # older than the retention, or deleted by a disconnect
            log.warning("changes %d..%d no longer kept; not delivered", start, pruned.oldest)
            start = pruned.oldest + 1
            continue
        if not changes:
            return  # beyond the feed's head, or the feed is gone
        body, headers = _signed_post(services.clock, secret, tenant_id, changes, span.attempt + 1)
        try:
            await services.webhook.post(url, body, headers)
        except DeliveryFailed as failure:
            await _retry_or_dead_letter(
                services, policy, tenant_id, _Range(start, span.last, span.attempt), failure
            )
            return
        start = changes[-1][0] + 1


async def list_dead_letters(services: DeadLetterPorts, tenant_id: str) -> list[DeadLetter]:
    return await services.dead_letters.list(tenant_id)


async def redeliver_dead_letters(services: RedeliverPorts, tenant_id: str) -> int:
    """Queue a fresh delivery (attempts from zero) for each dead letter and remove it; answers how many.

    Without a webhook URL there is nowhere to deliver: the letters stay and the answer is 0.
    """
    if services.config.host_webhook_url is None:
        return 0
    letters = await services.dead_letters.list(tenant_id)
    if not letters:
        return 0
    # Removed before queueing, so a redelivery that fails at once (say, still no secret) writes its new
    # letter after ours is gone; put back if the queue refuses.
    for letter in letters:
        await services.dead_letters.delete(tenant_id, letter.first_sequence)
    try:
        await services.jobs.enqueue(
            [jobs.deliver(tenant_id, letter.first_sequence, letter.last_sequence) for letter in letters]
        )
    except Exception:
        for letter in letters:
            await services.dead_letters.add(letter)
        raise
    return len(letters)


def _signed_post(
    clock: Clock, secret: bytes, tenant_id: str, changes: list[tuple[int, str]], attempt: int
) -> tuple[bytes, dict[str, str]]:
    """`{"tenant_id": ..., "changes": [...]}`, each change's JSON text as the feed holds it."""
    texts = ",".join(text for _, text in changes)
    body = f'{{"tenant_id":{json.dumps(tenant_id)},"changes":[{texts}]}}'.encode()
    timestamp = int(clock.now().timestamp())
    headers = {
        "Content-Type": CONTENT_TYPE,
        SIGNATURE_HEADER: sign_delivery(secret, timestamp, body),
        DELIVERY_HEADER: f"{tenant_id}:{changes[0][0]}-{changes[-1][0]}",
        ATTEMPT_HEADER: str(attempt),
    }
    return body, headers


async def _retry_or_dead_letter(
    services: DeliveryPorts, policy: DeliveryPolicy, tenant_id: str, rest: _Range, failure: DeliveryFailed
) -> None:
    failures = rest.attempt + 1
    if not failure.retryable or policy.exhausted(failures):
        await _dead_letter(
            services.dead_letters,
            services.clock,
            tenant_id,
            rest.first,
            rest.last,
            attempts=failures,
            reason=failure.reason,
        )
        return
    delay = policy.delay_after(failures)
    log.info(
        "host webhook did not take changes %d-%d of tenant %s (attempt %d of %d): %s; retrying in %d s",
        rest.first,
        rest.last,
        tenant_id,
        failures,
        policy.max_attempts,
        failure.reason,
        delay,
    )
    await services.jobs.enqueue([jobs.deliver(tenant_id, rest.first, rest.last, failures, delay)])


async def _dead_letter(
    dead_letters: DeadLetterRepository,
    clock: Clock,
    tenant_id: str,
    first: int,
    last: int,
    *,
    attempts: int,
    reason: str,
) -> None:
    await dead_letters.add(
        DeadLetter(tenant_id, first, last, attempts=attempts, reason=reason, failed_at=clock.now())
    )
    log.warning(
        "host webhook delivery of changes %d-%d of tenant %s dead-lettered after %d attempt(s): %s",
        first,
        last,
        tenant_id,
        attempts,
        reason,
    )
