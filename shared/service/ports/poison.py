"""The poison queues (`<queue>-poison`): the jobs that failed every delivery of their message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PoisonMessage:
    queue: str  # the job's own queue (without `-poison`)
    message_id: str
    inserted_at: datetime | None
    body: str  # what `poison.poisoned_body` wrote, or the job's message as the host moved it


class PoisonQueues(Protocol):
    async def put(self, queue: str, body: str) -> None:
        """Add a message to `<queue>-poison`."""
        ...

    async def peek(self, queue: str) -> list[PoisonMessage]:
        """The first messages of `<queue>-poison` (32 at most: Storage's peek), without hiding them."""
        ...

    async def count(self, queue: str) -> int:
        """How many messages `<queue>-poison` holds, every tenant's (Storage's approximate count)."""
        ...

    async def take(self, queue: str, message_id: str) -> PoisonMessage | None:
        """Remove one message of `<queue>-poison` by id; None when it is not there (any more)."""
        ...
