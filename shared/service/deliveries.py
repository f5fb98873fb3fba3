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
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final, Protocol

from shared.domain.signing import SIGNATURE_HEADER, sign_delivery
from shared.domain.tenants import DeliveryHold, ReleasedRange, Tenant
from shared.observability import get_logger
from shared.service import jobs, monitor
from shared.service.context import (
    UsesClock,
    UsesConfig,
    UsesDeadLetters,
    UsesFeed,
    UsesJobs,
    UsesKeys,
    UsesMessages,
    UsesWebhook,
)
from shared.service.delivery_policy import DeliveryPolicy
from shared.service.errors import ChangesPruned, Conflict, DeliveryFailed, NotFound
from shared.service.jobs import Deliver
from shared.service.keys import HOST_WEBHOOK_SECRET
from shared.service.monitor import Direction, MessageStatus
from shared.service.ports.clock import Clock
from shared.service.ports.feed import DeadLetterRepository
from shared.service.records import DeadLetter
from shared.service.tenants import TenantPorts, get_tenant, save_tenant_change

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


class DeliveryPorts(
    RedeliverPorts, TenantPorts, UsesFeed, UsesClock, UsesWebhook, UsesKeys, UsesMessages, Protocol
):
    """A delivery job: the feed's range, signed and posted, retried or dead-lettered, each post in the
    message monitor."""


class HoldPorts(TenantPorts, UsesJobs, UsesConfig, UsesClock, UsesFeed, Protocol):
    """Holding and releasing a tenant's delivery to the host."""


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
    if tenant.delivery_hold is not None and await _held_back(services, tenant, span):
        return
    released = tenant.released
    if span.attempt == 0 and released is not None and released.covers(span.first, span.last):
        log.info("changes %d-%d of %s go with the release's delivery", span.first, span.last, tenant_id)
        return
    try:
        await _post_range(services, policy, url, tenant_id, span)
    finally:
        if released is not None and (span.first, span.last) == (released.first, released.last):
            await _forget_release(services, tenant_id, released)  # the release's own delivery has run


async def _forget_release(services: DeliveryPorts, tenant_id: str, released: ReleasedRange) -> None:
    """Deliveries queued later (a dead letter redelivered, say) go as usual again."""

    def forget(current: Tenant) -> Tenant | None:
        return replace(current, released=None) if current.released == released else None

    await save_tenant_change(services, tenant_id, forget)


async def _post_range(
    services: DeliveryPorts, policy: DeliveryPolicy, url: str, tenant_id: str, span: _Range
) -> None:
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
        now = services.clock.now()
        entry = monitor.message(
            tenant_id,
            Direction.DELIVERY,
            "deliver",
            MessageStatus.FAILED,
            delivery_id(tenant_id, span.first, span.last),
            started_at=now,
            at=now,
            attempts=span.attempt + 1,
            first_sequence=span.first,
            last_sequence=span.last,
            error=MISSING_SECRET_REASON,
        )
        await monitor.record(services.messages, [entry])
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
        started, clock_start = services.clock.now(), time.perf_counter()
        try:
            status = await services.webhook.post(url, body, headers)
        except DeliveryFailed as failure:
            latency = time.perf_counter() - clock_start
            posted = _Range(start, span.last, span.attempt)
            final = await _retry_or_dead_letter(services, policy, tenant_id, posted, failure)
            outcome = MessageStatus.FAILED if final else MessageStatus.RETRYING
            await _monitor(
                services,
                tenant_id,
                changes,
                started=started,
                latency=latency,
                attempt=span.attempt,
                status=outcome,
                answer=failure,
            )
            return
        latency = time.perf_counter() - clock_start
        await _monitor(
            services,
            tenant_id,
            changes,
            started=started,
            latency=latency,
            attempt=span.attempt,
            status=MessageStatus.OK,
            answer=status,
        )
        start = changes[-1][0] + 1


async def list_dead_letters(services: DeadLetterPorts, tenant_id: str) -> list[DeadLetter]:
    return await services.dead_letters.list(tenant_id)


async def drop_dead_letter(services: DeadLetterPorts, tenant_id: str, first_sequence: int) -> DeadLetter:
    """Forget a dead letter (its changes stay in the pull feed); NotFound when there is none."""
    for letter in await services.dead_letters.list(tenant_id):
        if letter.first_sequence == first_sequence:
            await services.dead_letters.delete(tenant_id, first_sequence)
            log.info(
                "dead letter %d-%d of tenant %s dropped",
                letter.first_sequence,
                letter.last_sequence,
                tenant_id,
            )
            return letter
    raise NotFound("dead letter", str(first_sequence), "first_sequence")


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
        DELIVERY_HEADER: delivery_id(tenant_id, changes[0][0], changes[-1][0]),
        ATTEMPT_HEADER: str(attempt),
    }
    return body, headers


async def _retry_or_dead_letter(
    services: DeliveryPorts, policy: DeliveryPolicy, tenant_id: str, rest: _Range, failure: DeliveryFailed
) -> bool:
    """Queued again (False), or dead-lettered (True)."""
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
        return True
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
    return False


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


def delivery_id(tenant_id: str, first: int, last: int) -> str:
    return f"{tenant_id}:{first}-{last}"


async def _monitor(
    services: DeliveryPorts,
    tenant_id: str,
    changes: list[tuple[int, str]],
    *,
    started: datetime,
    latency: float,
    attempt: int,
    status: MessageStatus,
    answer: int | DeliveryFailed,
) -> None:
    """The post in the message monitor: a `delivery`, keyed by its delivery id."""
    first, last = changes[0][0], changes[-1][0]
    failure = answer if isinstance(answer, DeliveryFailed) else None
    entry = monitor.message(
        tenant_id,
        Direction.DELIVERY,
        "deliver",
        status,
        delivery_id(tenant_id, first, last),
        started_at=started,
        at=services.clock.now(),
        attempts=attempt + 1,
        first_sequence=first,
        last_sequence=last,
        status_code=failure.status if failure else answer,
        latency_ms=round(latency * 1000, 1),
        error=failure.reason if failure else None,
    )
    await monitor.record(services.messages, [entry])


# --- hold and release -------------------------------------------------------------------------------


async def _held_back(services: DeliveryPorts, tenant: Tenant, span: _Range) -> bool:
    """Under a hold, the range is left for the release (its first sequence kept on the tenant's hold):
    True. Released in the meantime: False, and the job delivers."""

    def leave(current: Tenant) -> Tenant | None:
        hold = current.delivery_hold
        if hold is None:
            return None
        held = hold.holding(span.first)
        return None if held == hold else replace(current, delivery_hold=held)

    latest, _ = await save_tenant_change(services, tenant.tenant_id, leave)
    if latest.delivery_hold is None:
        return False
    now = services.clock.now()
    entry = monitor.message(
        tenant.tenant_id,
        Direction.DELIVERY,
        "deliver",
        MessageStatus.HELD,
        delivery_id(tenant.tenant_id, span.first, span.last),
        started_at=now,
        at=now,
        attempts=span.attempt + 1,
        first_sequence=span.first,
        last_sequence=span.last,
    )
    await monitor.record(services.messages, [entry])
    log.info("delivery of changes %d-%d of tenant %s held", span.first, span.last, tenant.tenant_id)
    return True


@dataclass(frozen=True, slots=True)
class HoldState:
    held: bool
    held_at: datetime | None
    backlog: int  # changes on the feed not delivered because of the hold
    from_sequence: int | None


async def hold_state(services: HoldPorts, tenant: Tenant) -> HoldState:
    hold = tenant.delivery_hold
    if hold is None:
        return HoldState(False, None, 0, None)
    backlog = 0
    if hold.from_sequence is not None:
        head = await services.feed.head(tenant.tenant_id)
        backlog = max(0, head - hold.from_sequence + 1)
    return HoldState(True, hold.held_at, backlog, hold.from_sequence)


async def hold_delivery(services: HoldPorts, tenant_id: str) -> Tenant:
    """Hold delivery to the host's webhook for a connected tenant (409 otherwise); the changes keep going on
    the feed. Holding a held tenant changes nothing."""
    if services.config.host_webhook_url is None:
        raise Conflict(
            "tenant_id", "the connector delivers to no webhook (the pull feed only): nothing to hold"
        )

    def held(current: Tenant) -> Tenant | None:
        if not current.state.connected:
            raise Conflict(
                "tenant_id", f"the tenant is {current.state.value}, not connected: nothing to hold"
            )
        if current.delivery_hold is not None:
            return None
        return replace(current, delivery_hold=DeliveryHold(services.clock.now()))

    tenant, saved = await save_tenant_change(services, tenant_id, held)
    if saved:
        log.info("delivery to the host held for tenant %s", tenant_id)
    return tenant


async def release_delivery(services: HoldPorts, tenant_id: str) -> tuple[Tenant, int]:
    """Release the hold: one delivery job from the first change the hold kept back to the feed's head, so
    the host gets them in order. Answers the tenant and how many changes were queued (0 when not held)."""
    await get_tenant(services, tenant_id)
    released: list[DeliveryHold] = []

    # The head before the hold is lifted: the delivery jobs of those changes that have not run yet leave them
    # to the release's one job. Read again after: a change appended meanwhile may have been held back too.
    head = await services.feed.head(tenant_id)

    def release(current: Tenant) -> Tenant | None:
        released.clear()
        if current.delivery_hold is None:
            return None
        released.append(current.delivery_hold)
        first = current.delivery_hold.from_sequence
        queued = ReleasedRange(first, head) if first is not None and first <= head else current.released
        return replace(current, delivery_hold=None, released=queued)

    tenant, saved = await save_tenant_change(services, tenant_id, release)
    if not saved or not released or released[0].from_sequence is None:
        return tenant, 0
    first = released[0].from_sequence
    head = max(head, await services.feed.head(tenant_id))
    if head < first:
        return tenant, 0
    await services.jobs.enqueue([jobs.deliver(tenant_id, first, head)])
    log.info("delivery to the host released for tenant %s: changes %d-%d queued", tenant_id, first, head)
    return tenant, head - first + 1
