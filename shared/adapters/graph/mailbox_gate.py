"""At most four Graph requests at once per mailbox in this worker, whatever asks: Exchange answers a fifth
concurrent request on one mailbox with 429 (MailboxConcurrency). The calendar's sync and writes and the
mail's sends all go through `TenantGraph`, which holds the gate of the mailbox a request's path names
(`/users/{id}/...`) for the request's duration."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final
from urllib.parse import unquote

MAILBOX_CONCURRENCY: Final = 4
_MAILBOX: Final = re.compile(r"/users/([^/?]+)")


def mailbox_of(path: str) -> str | None:
    """The mailbox a request's path names (a Graph user id or UPN), lower-cased; None for other requests."""
    found = _MAILBOX.search(path)
    return unquote(found[1]).casefold() if found else None


class MailboxGate:
    """A semaphore per mailbox, dropped when nobody holds or waits for it."""

    def __init__(self, limit: int = MAILBOX_CONCURRENCY) -> None:
        self.limit = limit
        self._gates: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}
        self.peak = 0  # the most requests seen at once on one mailbox (for tests and benchmarks)

    @asynccontextmanager
    async def hold(self, path: str) -> AsyncIterator[None]:
        mailbox = mailbox_of(path)
        if mailbox is None:
            yield
            return
        gate, users = self._gates.setdefault(mailbox, (asyncio.Semaphore(self.limit), [0]))
        users[0] += 1
        try:
            async with gate:
                self.peak = max(self.peak, self.limit - gate._value)
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._gates[mailbox]
