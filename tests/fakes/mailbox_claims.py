"""`MailboxClaims` in memory, as the table holds them: one owner per mailbox until it lets go or its
claim lapses (wall-clock time, as the table adapter's); shared by the gates of several fake workers."""

from __future__ import annotations

import time


class FakeMailboxClaims:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, float]] = {}  # mailbox -> (worker, lapses at)
        self.writes = 0  # claims, renewals and releases: the table operations they would cost

    async def claim(self, mailbox: str, worker: str, ttl: float) -> float | None:
        now = time.time()
        held = self.rows.get(mailbox)
        if held is not None and held[0] != worker and held[1] > now:
            return held[1] - now
        self.rows[mailbox] = (worker, now + ttl)
        self.writes += 1
        return None

    async def release(self, mailbox: str, worker: str) -> None:
        held = self.rows.get(mailbox)
        if held is not None and held[0] == worker:
            del self.rows[mailbox]
            self.writes += 1
