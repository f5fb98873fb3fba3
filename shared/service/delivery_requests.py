"""Delivery jobs for what this worker appended to a feed, merged while one is being queued.

Every publish of changes asks for a delivery of its range. Jobs that finish together (the feed writes
their changes in one transaction, so their ranges are contiguous) would each queue a delivery of a few
changes; here the first request is queued at once, and requests arriving meanwhile wait for that
round trip and go out together, contiguous ranges as one job. Nothing waits longer than one enqueue in
progress. Ranges with a gap between them (another worker's changes) stay separate jobs, so nothing is
delivered twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from shared.service import jobs
from shared.service.ports import JobQueue

MAX_MERGED: Final = 1000  # changes per merged job (a job posts them `max_batch` at a time, in order)


@dataclass
class _Request:
    first: int
    last: int
    done: asyncio.Future[None]


class DeliveryRequests:
    def __init__(self, queue: JobQueue) -> None:
        self._queue = queue
        self._waiting: dict[str, list[_Request]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}

    async def request(self, tenant_id: str, first: int, last: int) -> None:
        """Returns once a delivery job covering first..last is queued (raises what the queue raised)."""
        request = _Request(first, last, asyncio.get_running_loop().create_future())
        self._waiting.setdefault(tenant_id, []).append(request)
        if tenant_id not in self._senders:
            self._senders[tenant_id] = asyncio.create_task(self._send(tenant_id), name=f"deliver:{tenant_id}")
        await asyncio.shield(request.done)

    async def _send(self, tenant_id: str) -> None:
        try:
            while waiting := self._waiting.pop(tenant_id, []):
                ranges = merged(sorted((r.first, r.last) for r in waiting))
                try:
                    await self._queue.enqueue(
                        [jobs.deliver(tenant_id, first, last) for first, last in ranges]
                    )
                except Exception as error:  # each caller gets it: publish is at least once, its job retries
                    for request in waiting:
                        request.done.set_exception(error)
                    continue
                for request in waiting:
                    request.done.set_result(None)
        finally:
            self._senders.pop(tenant_id, None)
            for request in self._waiting.pop(tenant_id, []):  # only when this task itself was cancelled
                request.done.cancel()


def merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted ranges with adjacent ones joined (up to `MAX_MERGED` changes each); gaps stay."""
    out: list[tuple[int, int]] = []
    for first, last in ranges:
        if out and first == out[-1][1] + 1 and last - out[-1][0] < MAX_MERGED:
            out[-1] = (out[-1][0], last)
        else:
            out.append((first, last))
    return out
