"""A request budget per tenant in this worker: a token bucket whose rate halves whenever Graph throttles
the tenant and climbs back while it does not, so a tenant's bulk work slows down instead of failing.

Graph's limits are per app and mailbox (Outlook: 10,000 requests per 10 minutes, 4 at once) and per app
and tenant for several services (contract §6.1; Microsoft's "throttling limits" page: "Any request can be
evaluated against multiple limits ... per app per tenant"); the numbers for a tenant are not all
published, so the bucket learns them: it starts at `ceiling` requests a second (no wait at all for a
tenant Graph never throttles); on a throttled answer it falls to half of what the tenant actually sent
over the last `OBSERVED` seconds (or half its rate, if lower; to an eighth of its rate when it sent too
few requests to measure; never below `floor`; at most once per `calm` seconds, as one burst of 429s is
one signal); while
no 429 comes it gains `recovery` of the rate it had before that fall each second, so it is back there
after 1/`recovery` seconds and probes on slowly (additive increase, multiplicative decrease).

A 429 that Graph says applies to the whole tenant (`x-ms-throttle-scope` `Tenant_Application/...` or
`Tenant/...`) pauses every request of the tenant in this worker for its Retry-After; one about a mailbox
(MailboxConcurrency, a mailbox's budget) only lowers the rate. Interactive requests (a write, a mail, a
notification's sync: `shared.service.work_priority`) take their token at once, going into debt if
need be, and wait only for such a pause; bulk requests wait for a token, so the debt is paid by bulk work.
Nothing fails for the budget's sake: it only ever waits.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from shared.service.work_priority import Priority

CEILING: Final = 1000.0  # requests a second per tenant per worker before Graph has said anything: no limit
FLOOR: Final = 0.5
RECOVERY: Final = 0.05  # of the ceiling, gained per second without a 429
CALM: Final = 1.0  # seconds in which further 429s do not halve the rate again
MAX_DEBT: Final = 50.0  # tokens interactive work may borrow
OBSERVED: Final = 10.0  # seconds of sent requests the rate after a 429 is measured over
MEASURABLE: Final = 8  # requests sent in those seconds below which the rate is not measured


def tenant_wide(scope: str | None) -> bool:
    """Graph's `x-ms-throttle-scope` (`<Scope>/<Limit>/<ApplicationId>/<TenantId|...>`) naming a scope
    that covers the whole tenant for this app."""
    if not scope:
        return False
    return scope.split("/", 1)[0].casefold() in ("tenant_application", "tenant")


class TenantBudget:
    def __init__(
        self,
        ceiling: float = CEILING,
        *,
        floor: float = FLOOR,
        recovery: float = RECOVERY,
        calm: float = CALM,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.ceiling = ceiling
        self.floor = floor
        self._recovery = recovery
        self._step = recovery * ceiling  # requests a second gained per second without a 429
        self._calm = calm
        self._clock = clock
        self._sleep = sleep
        self.rate = ceiling
        self._tokens = ceiling  # a second's worth to start with
        self._stamp = clock()
        self._last_halving = float("-inf")
        self.paused_until = float("-inf")
        self._sent: deque[float] = deque()  # when requests took their tokens, the last OBSERVED seconds
        self._since = self._stamp
        self.throttles = 0  # throttled answers seen (for logs and benchmarks)
        self.waited = 0.0  # seconds requests spent waiting here

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        if now - self._last_halving > self._calm:
            self.rate = min(self.ceiling, self.rate + self._step * elapsed)
        self._tokens = min(max(1.0, self.rate), self._tokens + self.rate * elapsed)

    async def take(self, priority: Priority) -> None:
        """Wait for this request's turn: a pause first (any priority), then a token (bulk work only)."""
        while True:
            now = self._clock()
            if self.paused_until > now:
                await self._wait(self.paused_until - now)
                continue
            self._refill()
            if priority is Priority.INTERACTIVE:
                self._tokens = max(-MAX_DEBT, self._tokens - 1)
                self._sent.append(now)
                return
            if self._tokens >= 1 - 1e-9:
                self._tokens -= 1
                self._sent.append(now)
                return
            await self._wait(max(0.001, (1 - self._tokens) / self.rate))

    async def _wait(self, seconds: float) -> None:
        self.waited += seconds
        await self._sleep(seconds)

    def sending(self, now: float) -> float:
        """Requests a second the tenant took tokens for over the last `OBSERVED` seconds."""
        while self._sent and self._sent[0] <= now - OBSERVED:
            self._sent.popleft()
        span = min(OBSERVED, max(now - self._since, 1.0))
        return len(self._sent) / span

    def throttled(self, retry_after: float, *, whole_tenant: bool) -> None:
        """Graph refused a request of the tenant with 429 (or 503 with Retry-After)."""
        now = self._clock()
        self.throttles += 1
        self._refill()
        if now - self._last_halving > self._calm:
            sent = self.sending(now)
            measured = sent if len(self._sent) >= MEASURABLE else self.rate / 4
            self.rate = max(self.floor, min(self.rate, measured) / 2)
            self._step = max(self.floor, 2 * self.rate) * self._recovery
            self._tokens = min(self._tokens, self.rate)
            self._last_halving = now
        if whole_tenant and retry_after > 0:
            self.paused_until = max(self.paused_until, now + retry_after)
