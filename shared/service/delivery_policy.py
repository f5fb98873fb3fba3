"""How hard the connector tries to deliver the change feed to the host's webhook: posts per range before a
dead letter, the backoff between them, and the changes per post (`deliveries` applies it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard to try. With the defaults a refused range gets 8 posts over about an hour (30 s, 1, 2, 4, 8,
    16 and 32 min apart) before it is dead-lettered."""

    max_attempts: int = 8  # posts in all, the first included
    base_delay_seconds: int = 30  # the wait after the first failure; doubled after each further one
    max_delay_seconds: int = 3600  # the cap on one wait (a queue message may stay invisible 7 days)
    max_batch: int = 100  # changes per post

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_batch < 1:
            raise ValueError("max_attempts and max_batch must be at least 1")
        if self.base_delay_seconds < 0 or self.max_delay_seconds < self.base_delay_seconds:
            raise ValueError("need 0 <= base_delay_seconds <= max_delay_seconds")

    def delay_after(self, failures: int) -> int:
        """The wait before the next try, after `failures` failed tries (1, 2, ...)."""
        exponent = min(max(failures - 1, 0), 30)
        return min(self.base_delay_seconds * (1 << exponent), self.max_delay_seconds)
