"""Outlook-style throttling per app + mailbox: concurrent requests and a request budget per window;
and, when switched on, a request budget per app + tenant.

Contract §6.1: 4 concurrent requests and 10,000 requests per 10 minutes per app ID and mailbox.
The window runs on the emulator clock, so advancing the clock refills the budget.

Per app + tenant: "Any request can be evaluated against multiple limits, depending on the scope of the
limit (per app across all tenants, per tenant for all apps, per app per tenant, and so on)"
[D:concepts/throttling-limits.md]; Outlook documents no number for its own, so the budget is a setting
(`throttle_tenant_budget` requests per `throttle_tenant_window_s`, 0: off) for tests and benchmarks that
need a tenant throttled. Its 429 names the scope as Graph does, `x-ms-throttle-scope:
Tenant_Application/ReadWrite/{app id}/{tenant id}` [D:concepts/throttling-limits.md, "Throttled responses
requests"], and refused requests count against it: Graph "keeps counting usage while throttled"
[D:concepts/throttling.md].
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from m365emulator.clock import Clock
from m365emulator.settings import Settings

Key = tuple[str, str]  # (client id, mailbox or "-")


@dataclass
class Verdict:
    """Why a request is refused: 'concurrency' or 'budget', and the integer Retry-After."""

    reason: str
    retry_after: int


class Throttle:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._in_flight: dict[Key, int] = {}
        self._history: dict[Key, deque[float]] = {}
        self._tenant_history: dict[Key, deque[float]] = {}

    def reset(self) -> None:
        self._in_flight.clear()
        self._history.clear()
        self._tenant_history.clear()

    def in_flight(self, key: Key) -> int:
        """The requests admitted on this app + mailbox and not answered yet."""
        return self._in_flight.get(key, 0)

    def enter_tenant(self, key: Key) -> Verdict | None:
        """Count a request against its app + tenant budget (key: client id, tenant id), refused or not;
        None when the budget is off or not spent."""
        budget = self._settings.throttle_tenant_budget
        if budget <= 0:
            return None
        now = self._clock.now().timestamp()
        window = self._settings.throttle_tenant_window_s
        history = self._tenant_history.setdefault(key, deque())
        while history and history[0] <= now - window:
            history.popleft()
        history.append(now)
        if len(history) <= budget:
            return None
        retry = max(1, math.ceil(history[-budget - 1] + window - now))
        return Verdict("tenant", retry)

    def enter(self, key: Key) -> Verdict | None:
        """Admit a request (remember to `leave`) or say why not. Refused requests do not use the budget."""
        now = self._clock.now().timestamp()
        window = self._settings.throttle_window_s
        history = self._history.setdefault(key, deque())
        while history and history[0] <= now - window:
            history.popleft()
        if len(history) >= self._settings.throttle_budget:
            retry = max(1, math.ceil(history[0] + window - now))
            return Verdict("budget", retry)
        if self._in_flight.get(key, 0) >= self._settings.throttle_concurrency:
            return Verdict("concurrency", 1)
        history.append(now)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        return None

    def leave(self, key: Key) -> None:
        left = self._in_flight.get(key, 0) - 1
        if left <= 0:
            self._in_flight.pop(key, None)
        else:
            self._in_flight[key] = left
