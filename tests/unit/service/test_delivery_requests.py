"""Delivery jobs merged while one is being queued (shared/service/delivery_requests.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest

from shared.service import jobs
from shared.service.delivery_requests import MAX_MERGED, DeliveryRequests, merged
from shared.service.jobs import Job
from tests.fakes.storage import FakeJobs

TENANT = "contoso.example"


class GatedJobs(FakeJobs):
    """A queue whose enqueues wait at a gate; the first `failures` of them fail."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.calls = 0
        self.failures = failures

    async def enqueue(self, jobs: Iterable[Job]) -> None:
        self.calls += 1
        await self.gate.wait()
        if self.calls <= self.failures:
            raise ConnectionError("queue unavailable")
        await super().enqueue(jobs)


def ranges(queued: list[Job]) -> list[tuple[str, int, int]]:
    return [(j.tenant_id, j.first, j.last) for j in queued]


def test_adjacent_ranges_join_and_gaps_stay() -> None:
    assert merged([(1, 3), (4, 6), (7, 7), (9, 10), (11, 12)]) == [(1, 7), (9, 12)]
    assert merged([(1, MAX_MERGED - 1), (MAX_MERGED, MAX_MERGED + 5)]) == [
        (1, MAX_MERGED - 1),
        (MAX_MERGED, MAX_MERGED + 5),
    ]  # no job grows past MAX_MERGED changes


async def test_requests_arriving_while_one_is_queued_go_out_together() -> None:
    queue = GatedJobs()
    requests = DeliveryRequests(queue)
    first = asyncio.create_task(requests.request(TENANT, 1, 3))
    await asyncio.sleep(0)
    later = [
        asyncio.create_task(requests.request(TENANT, 7, 9)),  # out of order
        asyncio.create_task(requests.request(TENANT, 4, 6)),
        asyncio.create_task(requests.request(TENANT, 12, 13)),  # 10-11 were another worker's
        asyncio.create_task(requests.request("fabrikam.example", 1, 2)),
    ]
    await asyncio.sleep(0)
    assert not first.done() and not any(t.done() for t in later)

    queue.gate.set()
    await asyncio.gather(first, *later)

    assert sorted(ranges(queue.queued)) == [
        ("contoso.example", 1, 3),
        ("contoso.example", 4, 9),
        ("contoso.example", 12, 13),
        ("fabrikam.example", 1, 2),
    ]
    assert all(j.queue == jobs.DELIVERY_QUEUE and j.attempt == 0 for j in queue.queued)


async def test_a_failed_enqueue_fails_its_callers_and_the_next_round_still_goes() -> None:
    queue = GatedJobs(failures=1)
    requests = DeliveryRequests(queue)
    failing = asyncio.create_task(requests.request(TENANT, 1, 3))
    await asyncio.sleep(0)
    following = asyncio.create_task(requests.request(TENANT, 4, 5))
    queue.gate.set()

    with pytest.raises(ConnectionError):
        await failing
    await following

    assert ranges(queue.queued) == [(TENANT, 4, 5)]
    await requests.request(TENANT, 6, 6)  # nothing left running: queued at once
    assert ranges(queue.queued)[-1] == (TENANT, 6, 6)
