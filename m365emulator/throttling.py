"""Outlook-style throttling per app + mailbox: concurrent requests and a request budget per window.

Contract §6.1: 4 concurrent requests and 10,000 requests per 10 minutes per app ID and mailbox.
The window runs on the emulator clock, so advancing the clock refills the budget.
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

    def reset(self) -> None:
        self._in_flight.clear()
        self._history.clear()

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
