"""The poison queues on Storage (`PoisonQueues`): `<queue>-poison`, base64 text as the Functions host
writes it.

The connector parks a job in the home account's poison queue; the Functions host moves a message that
failed its last try to the poison queue of the account it came from, a storage shard's too, so `peek` and
`take` look in every account.

Storage deletes a message only with the pop receipt of a receive, so `take` receives a batch (hidden for a
few seconds), deletes the one asked for and makes the others visible again at once."""

from __future__ import annotations

import contextlib
from typing import Final

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from shared.adapters.storage import StorageClients, StorageRouter
from shared.service.ports.poison import PoisonMessage

POISON_SUFFIX: Final = "-poison"
PEEK_MAX: Final = 32  # Storage's limit per peek and per receive
HIDE_SECONDS: Final = 10  # how long a `take` hides the messages it looks through (put back at once)


def _text(content: object) -> str:
    return content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)


class StoragePoisonQueues:
    def __init__(self, storage: StorageClients | StorageRouter) -> None:
        self._home = storage.home if isinstance(storage, StorageRouter) else storage
        self._accounts = list(storage.accounts.values()) if isinstance(storage, StorageRouter) else [storage]

    async def put(self, queue: str, body: str) -> None:
        await (await self._home.queue(queue + POISON_SUFFIX)).send_message(body)

    async def peek(self, queue: str) -> list[PoisonMessage]:
        found: list[PoisonMessage] = []
        for account in self._accounts:
            client = await account.queue(queue + POISON_SUFFIX)
            peeked = await client.peek_messages(max_messages=PEEK_MAX)
            found += [PoisonMessage(queue, m.id, m.inserted_on, _text(m.content)) for m in peeked]
        return found

    async def count(self, queue: str) -> int:
        """Every account's messages in the queue (Storage's approximate count)."""
        total = 0
        for account in self._accounts:
            client = await account.queue(queue + POISON_SUFFIX)
            total += int((await client.get_queue_properties()).approximate_message_count or 0)
        return total

    async def take(self, queue: str, message_id: str) -> PoisonMessage | None:
        for account in self._accounts:
            found = await self._take(await account.queue(queue + POISON_SUFFIX), queue, message_id)
            if found is not None:
                return found
        return None

    @staticmethod
    async def _take(client: QueueClient, queue: str, message_id: str) -> PoisonMessage | None:
        found: PoisonMessage | None = None
        others = []
        async for message in client.receive_messages(
            messages_per_page=PEEK_MAX, max_messages=PEEK_MAX, visibility_timeout=HIDE_SECONDS
        ):
            if message.id == message_id and found is None:
                found = PoisonMessage(queue, message.id, message.inserted_on, _text(message.content))
                await client.delete_message(message.id, message.pop_receipt)
            else:
                others.append(message)
        for message in others:  # back at once, not after HIDE_SECONDS
            with contextlib.suppress(ResourceNotFoundError):
                await client.update_message(message.id, message.pop_receipt, visibility_timeout=0)
        return found
