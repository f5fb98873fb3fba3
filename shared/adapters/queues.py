"""Jobs onto Storage queues (base64 JSON, as the queue trigger expects)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from shared import telemetry
from shared.adapters.storage import StorageClients
from shared.service.job_codec import encode
from shared.service.jobs import Job


class StorageJobQueue:
    def __init__(self, storage: StorageClients) -> None:
        self._storage = storage

    async def enqueue(self, jobs: Iterable[Job]) -> None:
        trace = telemetry.carrier()  # the jobs continue the trace of the work that queues them
        by_queue: dict[str, list[Job]] = {}
        for job in jobs:
            by_queue.setdefault(job.queue, []).append(job)
        for queue, items in by_queue.items():
            client = await self._storage.queue(queue)
            for start in range(0, len(items), 32):
                await asyncio.gather(
                    *(
                        client.send_message(encode(j, trace), visibility_timeout=j.delay_seconds or None)
                        for j in items[start : start + 32]
                    )
                )
