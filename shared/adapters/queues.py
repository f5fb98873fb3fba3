"""Jobs onto Storage queues (base64 JSON, as the queue trigger expects), each on the queues of the storage
account holding its tenant (`StorageRouter`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from shared import telemetry
from shared.adapters.storage import StorageClients, StorageRouter
from shared.service.job_codec import encode
from shared.service.jobs import Job, Notified
from shared.settings import STORAGE_CONNECTION


class StorageJobQueue:
    def __init__(self, storage: StorageClients | StorageRouter) -> None:
        self._router = (
            storage
            if isinstance(storage, StorageRouter)
            else StorageRouter(storage, {}, [STORAGE_CONNECTION])
        )

    async def account(self, job: Job) -> StorageClients:
        """The account whose queues carry the job: its tenant's (a notification names the directory)."""
        if isinstance(job, Notified):
            return await self._router.for_directory(job.directory_id)
        return await self._router.for_tenant(job.tenant_id)

    async def enqueue(self, jobs: Iterable[Job]) -> None:
        trace = telemetry.carrier()  # the jobs continue the trace of the work that queues them
        by_queue: dict[tuple[int, str], tuple[StorageClients, list[Job]]] = {}
        for job in jobs:
            account = await self.account(job)
            by_queue.setdefault((id(account), job.queue), (account, []))[1].append(job)
        for (_, queue), (account, items) in by_queue.items():
            client = await account.queue(queue)
            for start in range(0, len(items), 32):
                await asyncio.gather(
                    *(
                        client.send_message(encode(j, trace), visibility_timeout=j.delay_seconds or None)
                        for j in items[start : start + 32]
                    )
                )

    async def enqueue_off_home(self, jobs: Sequence[Job]) -> list[Job]:
        """Queue the jobs whose tenant is in another account than the home one; the others are returned,
        for the caller's queue output binding (which writes to the home account)."""
        home: list[Job] = []
        elsewhere: list[Job] = []
        for job in jobs:
            (home if await self.account(job) is self._router.home else elsewhere).append(job)
        if elsewhere:
            await self.enqueue(elsewhere)
        return home
