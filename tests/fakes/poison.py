"""The poison queues in memory."""

from __future__ import annotations

import itertools

from shared.service.ports.poison import PoisonMessage


class FakePoisonQueues:
    def __init__(self) -> None:
        self.queues: dict[str, list[PoisonMessage]] = {}
        self._ids = itertools.count(1)

    async def put(self, queue: str, body: str) -> None:
        self.queues.setdefault(queue, []).append(PoisonMessage(queue, f"p{next(self._ids)}", None, body))

    async def peek(self, queue: str) -> list[PoisonMessage]:
        return list(self.queues.get(queue, []))[:32]

    async def count(self, queue: str) -> int:
        return len(self.queues.get(queue, []))

    async def take(self, queue: str, message_id: str) -> PoisonMessage | None:
        held = self.queues.get(queue, [])
        for message in held:
            if message.message_id == message_id:
                held.remove(message)
                return message
        return None
