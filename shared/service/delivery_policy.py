"""How hard the connector tries to deliver the change feed to the host's webhook: posts per range before a
dead letter, the backoff between them, and the changes per post (`deliveries` applies it)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.service.retries import Backoff


@dataclass(frozen=True, slots=True)
class DeliveryPolicy(Backoff):
    """How hard to try (the webhook names no Retry-After). With the defaults a refused range gets 8 posts
    over about an hour (30 s, 1, 2, 4, 8, 16 and 32 min apart) before it is dead-lettered."""

    max_attempts: int = 8  # posts in all, the first included
    base_delay_seconds: int = 30  # the wait after the first failure; doubled after each further one
    max_delay_seconds: int = 3600  # the cap on one wait (a queue message may stay invisible 7 days)
    max_batch: int = 100  # changes per post

    def __post_init__(self) -> None:
        Backoff.__post_init__(self)
        if self.max_batch < 1:
            raise ValueError("max_batch must be at least 1")
